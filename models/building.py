"""Pieces every model script shares."""

from __future__ import annotations

DEFAULT_LEARNING_RATE = 1e-3  # Adam's default, which the course keeps


def raw_image_input(input_shape):
    """The model's input: raw uint8 pixels, so a saved model needs no preprocessing outside it."""
    import keras
    return keras.Input(shape=tuple(input_shape), dtype="uint8", name="image")


def scaled_to_unit_range(inputs):
    from keras import layers
    return layers.Rescaling(1.0 / 255, name="rescale_0_1")(inputs)


def compile_classifier(model, learning_rate: float | None = None):
    """Adam and cross-entropy on integer labels (the course one-hot encodes; the loss is the same)."""
    import keras
    model.compile(optimizer=keras.optimizers.Adam(learning_rate or DEFAULT_LEARNING_RATE),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
