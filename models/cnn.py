"""The course's convolutional model: one convolution and pooling before the regularized head."""

from __future__ import annotations

from sign_datasets.models.building import compile_classifier, raw_image_input, scaled_to_unit_range
from sign_datasets.models.regularized import regularized_head

FILTERS = 75


def convolutional_features(inputs):
    from keras import layers

    x = scaled_to_unit_range(inputs)
    x = layers.Conv2D(FILTERS, 3, activation="relu", name="conv")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    return layers.Flatten(name="flatten")(x)


def build_model(input_shape, num_classes: int, learning_rate: float | None = None,
                first_units: int = 256):
    import keras

    inputs = raw_image_input(input_shape)
    outputs = regularized_head(convolutional_features(inputs), num_classes, first_units)
    model = keras.Model(inputs, outputs, name="cnn")
    return compile_classifier(model, learning_rate)
