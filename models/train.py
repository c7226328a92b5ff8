"""The training driver every model script goes through.

One run writes into its folder: checkpoints/best.keras (best val_accuracy so
far), logs/ (TensorBoard), training_log.csv, model.keras (the best epoch's
weights), saved_model/ (for TF Serving), history.png, confusion_matrix.png
and metrics.json (the figures and what a later process needs: class names,
input shape, the dataset it came from). Without TensorFlow (Keras 3 on JAX,
say) there is no logs/ and no saved_model/: both are written by TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import tensorflow_datasets as tfds

import sign_datasets
from sign_datasets.models import (artifacts, cnn, data, dense, evaluate, plots, regularized,
                                  transfer, tune)

MODEL_NAMES = ("dense", "regularized", "cnn", "transfer", "tune")
DEFAULT_PATIENCE = 3


@dataclasses.dataclass
class TrainingOptions:
    dataset: str
    model: str = "cnn"
    epochs: int = 5
    out: Path | str | None = None
    batch_size: int = data.DEFAULT_BATCH_SIZE
    data_dir: str | None = None
    stop_at_accuracy: float | None = None
    weights: str | None = None
    backbone: str = "mobilenet_v2"
    image_size: str | int | tuple | None = None
    channels: int | None = None
    validation_share: float = data.DEFAULT_VALIDATION_SHARE
    patience: int = DEFAULT_PATIENCE
    learning_rate: float | None = None
    tune_max_epochs: int = 20
    tune_max_trials: int | None = None
    seed: int = 0
    verbose: int = 2
    # A dataset not built yet is built first, as tfds.load does; False refuses.
    build: bool = True

    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        return Path("runs") / f"{self.dataset.replace('/', '_')}-{self.model}"


def stop_at_accuracy_callback(threshold: float, monitor: str = "accuracy"):
    """The course's callback: stop as soon as training accuracy passes the threshold."""
    import keras

    class StopAtAccuracy(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.stopped_epoch = None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if value is not None and value > threshold:
                self.stopped_epoch = epoch + 1
                self.model.stop_training = True

    return StopAtAccuracy()


def epoch_timer_callback():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(round(time.perf_counter() - self._started, 2))

    return EpochTimer()


def _input_settings(options: TrainingOptions):
    """(image size, channels) the model needs from the dataset."""
    if options.model != "transfer":
        return options.image_size, options.channels
    image_size = options.image_size or transfer.default_image_size(options.backbone)
    if options.channels not in (None, 3):
        raise data.DataSetupError("the transfer backbones take RGB images (channels 3)")
    return image_size, 3


def build_model(options: TrainingOptions, splits, tuning: dict | None = None):
    shape, classes = splits.input_shape, len(splits.class_names)
    if options.model == "dense":
        return dense.build_model(shape, classes, options.learning_rate)
    if options.model == "regularized":
        return regularized.build_model(shape, classes, options.learning_rate)
    if options.model == "cnn":
        return cnn.build_model(shape, classes, options.learning_rate)
    if options.model == "transfer":
        return transfer.build_model(shape, classes, backbone=options.backbone,
                                    weights=options.weights, learning_rate=options.learning_rate)
    if options.model == "tune":
        return tune.build_best_model(shape, classes, tuning)
    raise ValueError(f"unknown model {options.model!r}; choose from {MODEL_NAMES}")


def _callbacks(options: TrainingOptions, out: Path):
    import keras

    checkpoint = out / artifacts.CHECKPOINT_FILE
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    callbacks = {
        # Stopping and checkpointing watch the same figure, so the weights
        # EarlyStopping restores are the ones ModelCheckpoint kept.
        "early_stopping": keras.callbacks.EarlyStopping(
            monitor="val_accuracy", patience=options.patience, restore_best_weights=True),
        "checkpoint": keras.callbacks.ModelCheckpoint(
            str(checkpoint), monitor="val_accuracy", save_best_only=True),
    }
    if data.tensorflow_installed():  # keras' TensorBoard writes through tf.summary
        callbacks["tensorboard"] = keras.callbacks.TensorBoard(
            log_dir=str(out / artifacts.TENSORBOARD_DIR))
    callbacks["csv"] = keras.callbacks.CSVLogger(str(out / artifacts.CSV_LOG))
    callbacks["timer"] = epoch_timer_callback()
    if options.stop_at_accuracy is not None:
        callbacks["stop_at_accuracy"] = stop_at_accuracy_callback(options.stop_at_accuracy)
    return callbacks


def _versions() -> dict:
    import keras
    tensorflow = None
    if data.tensorflow_installed():
        import tensorflow as tf
        tensorflow = tf.__version__
    return {"sign_datasets": sign_datasets.__version__, "tensorflow": tensorflow,
            "keras": keras.__version__, "keras_backend": keras.backend.backend(),
            "tensorflow_datasets": tfds.__version__}


def train(options: TrainingOptions) -> dict:
    """Trains, evaluates and saves one model; returns what metrics.json holds."""
    return run(options)[1]


def run(options: TrainingOptions):
    """As train(), and also returns the trained model: (model, metrics)."""
    keras = data.require_keras()

    if options.model not in MODEL_NAMES:
        raise ValueError(f"unknown model {options.model!r}; choose from {MODEL_NAMES}")
    if options.epochs < 1:
        raise ValueError("epochs must be at least 1")
    out = options.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.seed)

    image_size, channels = _input_settings(options)
    splits = data.load_splits(options.dataset, options.data_dir, options.batch_size, image_size,
                              channels, options.validation_share, options.seed,
                              build=options.build)
    tuning = None
    started = time.perf_counter()
    if options.model == "tune":
        tuning = tune.search(splits, out / artifacts.TUNER_DIR, max_epochs=options.tune_max_epochs,
                             max_trials=options.tune_max_trials, seed=options.seed,
                             verbose=options.verbose)
        tuning["seconds"] = round(time.perf_counter() - started, 1)
        keras.utils.set_random_seed(options.seed)
    model = build_model(options, splits, tuning)

    callbacks = _callbacks(options, out)
    fit_started = time.perf_counter()
    # shuffle=False: the pipeline shuffles already; keras would only warn it cannot.
    history = model.fit(splits.train, validation_data=splits.validation, epochs=options.epochs,
                        callbacks=list(callbacks.values()), verbose=options.verbose,
                        shuffle=False).history
    fit_seconds = time.perf_counter() - fit_started

    # EarlyStopping restores the best weights only when it stops the run; the
    # checkpoint holds them whichever way the run ended.
    model.load_weights(out / artifacts.CHECKPOINT_FILE)
    val_accuracy = history["val_accuracy"]
    best_epoch = max(range(len(val_accuracy)), key=lambda i: (val_accuracy[i], -i)) + 1

    probabilities, labels = evaluate.predictions_and_labels(model, splits.evaluation)
    scores = evaluate.summarize(probabilities, labels, splits.class_names)

    model.save(out / artifacts.MODEL_FILE)
    with_tensorflow = data.tensorflow_installed()
    if with_tensorflow:
        model.export(str(out / artifacts.SAVED_MODEL_DIR), format="tf_saved_model", verbose=False)
    title = f"{splits.full_name} - {options.model}"
    if options.model == "transfer":
        title += f" ({options.backbone})"
    plots.plot_history(history, out / artifacts.HISTORY_PLOT, title, best_epoch)
    plots.plot_confusion_matrix(
        scores["confusion_matrix"], splits.class_names, out / artifacts.CONFUSION_PLOT,
        f"{title}\n{splits.evaluation_role} accuracy {scores['accuracy']:.3f}")

    stopper = callbacks.get("stop_at_accuracy")
    epochs_run = len(val_accuracy)
    if stopper is not None and stopper.stopped_epoch:
        stopped_by = "stop_at_accuracy"
    elif epochs_run < options.epochs:
        stopped_by = "early_stopping"
    else:
        stopped_by = "epochs"
    metrics = {
        "dataset": options.dataset,
        "dataset_full_name": splits.full_name,
        "model": options.model,
        "backbone": options.backbone if options.model == "transfer" else None,
        "weights": options.weights if options.model == "transfer" else None,
        "class_names": splits.class_names,
        "input_shape": list(splits.input_shape),
        "splits": splits.split_specs,
        "examples": splits.num_examples,
        "evaluated_on": splits.evaluation_role,
        "evaluation": {
            "split": splits.split_specs[splits.evaluation_role],
            "examples": scores["examples"],
            "accuracy": scores["accuracy"],
            "cross_entropy": scores["cross_entropy"],
        },
        "per_class_accuracy": scores["per_class_accuracy"],
        "confusion_matrix": scores["confusion_matrix"],
        "best_epoch": best_epoch,
        "best_val_accuracy": float(val_accuracy[best_epoch - 1]),
        "epochs_requested": options.epochs,
        "epochs_run": epochs_run,
        "stopped_by": stopped_by,
        "stop_at_accuracy": options.stop_at_accuracy,
        "history": {key: [float(v) for v in values] for key, values in history.items()},
        "batch_size": options.batch_size,
        "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "seed": options.seed,
        "parameters": {"total": int(model.count_params()),
                       "trainable": sum(int(math.prod(w.shape)) for w in model.trainable_weights)},
        "fit_seconds": round(fit_seconds, 1),
        "epoch_seconds": callbacks["timer"].seconds,
        "total_seconds": round(time.perf_counter() - started, 1),
        "tuning": tuning,
        "versions": _versions(),
        "files": {"model": artifacts.MODEL_FILE,
                  "saved_model": artifacts.SAVED_MODEL_DIR if with_tensorflow else None,
                  "checkpoint": artifacts.CHECKPOINT_FILE,
                  "tensorboard": artifacts.TENSORBOARD_DIR if with_tensorflow else None,
                  "csv_log": artifacts.CSV_LOG, "history_plot": artifacts.HISTORY_PLOT,
                  "confusion_plot": artifacts.CONFUSION_PLOT},
    }
    artifacts.write_json(out / artifacts.METRICS_FILE, metrics)
    return model, metrics
