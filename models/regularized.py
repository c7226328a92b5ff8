"""The course's base model with L2 weight decay and dropout after each hidden layer."""

from __future__ import annotations

from sign_datasets.models.building import compile_classifier, raw_image_input, scaled_to_unit_range

L2_FACTOR = 1e-5
DROPOUT_RATE = 0.2


def regularized_head(features, num_classes: int, first_units: int = 256):
    """Dense 256 > Dense 128, each with L2 and dropout, > softmax. The CNN and the tuner reuse it."""
    from keras import layers, regularizers

    x = features
    for position, units in enumerate((first_units, 128), start=1):
        x = layers.Dense(units, activation="relu", kernel_regularizer=regularizers.L2(L2_FACTOR),
                         name=f"hidden_{position}")(x)
        x = layers.Dropout(DROPOUT_RATE, name=f"dropout_{position}")(x)
    return layers.Dense(num_classes, activation="softmax", name="classes")(x)


def build_model(input_shape, num_classes: int, learning_rate: float | None = None):
    import keras
    from keras import layers

    inputs = raw_image_input(input_shape)
    x = layers.Flatten()(scaled_to_unit_range(inputs))
    model = keras.Model(inputs, regularized_head(x, num_classes), name="regularized")
    return compile_classifier(model, learning_rate)
