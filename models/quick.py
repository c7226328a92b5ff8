"""A small CNN for the demo: proof that the prepared data trains.

The course's full lessons (dense, regularized, cnn, transfer, tune) live in
their own scripts; this one only has to be quick on two cores.
"""

from __future__ import annotations

import time

import tensorflow_datasets as tfds


def build_small_cnn(num_classes: int, input_shape=(28, 28, 1)):
    import keras
    from keras import layers
    return keras.Sequential([
        keras.Input(shape=input_shape, dtype="uint8"),
        # Scaling inside the model: a saved model takes raw uint8 images.
        layers.Rescaling(1.0 / 255),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(num_classes, activation="softmax"),
    ])


def train_and_evaluate(name: str, data_dir: str | None = None, epochs: int = 2,
                       seed: int = 0, batch_size: int = 64) -> tuple[float, float]:
    """Trains on `train`, returns (test accuracy, seconds)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    (train, test), info = tfds.load(name, split=["train", "test"], as_supervised=True,
                                    data_dir=data_dir, with_info=True)
    num_classes = info.features["label"].num_classes
    train = train.cache().shuffle(10_000, seed=seed).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    test = test.batch(256).prefetch(tf.data.AUTOTUNE)
    model = build_small_cnn(num_classes, info.features["image"].shape)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    # shuffle=False: the dataset shuffles already; keras would only warn it cannot.
    model.fit(train, epochs=epochs, verbose=2, shuffle=False)
    _, accuracy = model.evaluate(test, verbose=0)
    return float(accuracy), time.perf_counter() - start
