"""The course's base model: two hidden dense layers on the flattened image."""

from __future__ import annotations

from sign_datasets.models.building import compile_classifier, raw_image_input, scaled_to_unit_range


def build_model(input_shape, num_classes: int, learning_rate: float | None = None):
    import keras
    from keras import layers

    inputs = raw_image_input(input_shape)
    x = layers.Flatten()(scaled_to_unit_range(inputs))
    x = layers.Dense(256, activation="relu", name="hidden_256")(x)
    x = layers.Dense(128, activation="relu", name="hidden_128")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    model = keras.Model(inputs, outputs, name="dense")
    return compile_classifier(model, learning_rate)
