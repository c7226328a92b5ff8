"""Transfer learning: a frozen pretrained backbone and the course's head.

Pretrained weights come only from a file the user names. Nothing here ever
asks keras for "imagenet" weights, which would download them: the project's
machines have no internet, and a training run must not depend on a hub.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sign_datasets.models.building import compile_classifier, raw_image_input


@dataclasses.dataclass(frozen=True)
class Backbone:
    name: str
    default_size: int
    min_size: int
    cut_at: str | None
    weights_file: str  # keras' own name for the no-top ImageNet weights, to tell users what to fetch


BACKBONES = {
    "mobilenet_v2": Backbone("mobilenet_v2", default_size=96, min_size=32, cut_at=None,
                             weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"),
    # The course's choice: InceptionV3 at 150x150, cut after the "mixed7" block.
    "inception_v3": Backbone("inception_v3", default_size=150, min_size=75, cut_at="mixed7",
                             weights_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
}
DEFAULT_BACKBONE = "mobilenet_v2"
HEAD_UNITS = 128
HEAD_DROPOUT = 0.2


class WeightsError(ValueError):
    pass


def backbone_spec(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise WeightsError(f"unknown backbone {name!r}; choose from {sorted(BACKBONES)}") from None


def check_weights(weights: str | Path | None, backbone: Backbone) -> str | None:
    if weights is None:
        return None
    if str(weights) == "imagenet":
        raise WeightsError(
            "weights='imagenet' would download them; download "
            f"{backbone.weights_file} once and pass its path instead")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist (expected keras' "
                           f"{backbone.weights_file} or a .weights.h5 of the same backbone)")
    return str(path)


def check_input_shape(input_shape, backbone: Backbone) -> tuple[int, int, int]:
    height, width, channels = (int(v) for v in input_shape)
    if channels != 3:
        raise WeightsError(f"{backbone.name} takes RGB images; the input has {channels} channel(s)")
    if min(height, width) < backbone.min_size:
        raise WeightsError(f"{backbone.name} needs images of at least "
                           f"{backbone.min_size}x{backbone.min_size}; got {height}x{width}")
    return height, width, channels


def build_backbone(name: str, input_shape, weights: str | Path | None = None):
    """The frozen feature extractor, loaded from `weights` (a local file) or randomly initialised."""
    import keras

    spec = backbone_spec(name)
    shape = check_input_shape(input_shape, spec)
    weights = check_weights(weights, spec)
    if name == "mobilenet_v2":
        full = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights=weights)
    else:
        full = keras.applications.InceptionV3(input_shape=shape, include_top=False, weights=weights)
    # A name of our own, so the layer is found the same way whatever keras calls the application.
    output = full.get_layer(spec.cut_at).output if spec.cut_at else full.output
    backbone = keras.Model(full.inputs, output,
                           name=f"{name}_to_{spec.cut_at}" if spec.cut_at else name)
    backbone.trainable = False
    return backbone


def build_model(input_shape, num_classes: int, backbone: str = DEFAULT_BACKBONE,
                weights: str | Path | None = None, learning_rate: float | None = None):
    import keras
    from keras import layers

    extractor = build_backbone(backbone, input_shape, weights)
    inputs = raw_image_input(input_shape)
    # Both backbones were trained on pixels scaled to -1..1 (keras'
    # preprocess_input for them); 0..1 would waste pretrained weights.
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale_to_backbone")(inputs)
    # training=False keeps the frozen batch-norm layers on their stored statistics.
    x = extractor(x, training=False)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(HEAD_UNITS, activation="relu", name="hidden")(x)
    x = layers.Dropout(HEAD_DROPOUT, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    model = keras.Model(inputs, outputs, name=f"transfer_{backbone}")
    return compile_classifier(model, learning_rate)


def default_image_size(backbone: str) -> tuple[int, int]:
    size = backbone_spec(backbone).default_size
    return size, size
