"""The course's hyperparameter search: keras-tuner Hyperband over the CNN.

The space is the course's: the first hidden layer's units (32..512, step 32)
and Adam's learning rate (1e-2, 1e-3, 1e-4), judged on val_accuracy.
"""

from __future__ import annotations

from pathlib import Path

from sign_datasets.models import cnn

UNITS_RANGE = dict(min_value=32, max_value=512, step=32)
LEARNING_RATES = [1e-2, 1e-3, 1e-4]
MAX_EPOCHS = 20
FACTOR = 3
OBJECTIVE = "val_accuracy"


class KerasTunerMissing(ImportError):
    pass


def require_keras_tuner():
    try:
        import keras_tuner
    except ImportError:
        raise KerasTunerMissing("the tune model needs keras-tuner: pip install keras-tuner") from None
    return keras_tuner


def hypermodel(input_shape, num_classes: int):
    def build(hp):
        return cnn.build_model(
            input_shape, num_classes,
            learning_rate=hp.Choice("learning_rate", LEARNING_RATES),
            first_units=hp.Int("units", **UNITS_RANGE))
    return build


def make_tuner(input_shape, num_classes: int, directory: Path, max_epochs: int = MAX_EPOCHS,
               factor: int = FACTOR, max_trials: int | None = None, seed: int = 0):
    keras_tuner = require_keras_tuner()
    tuner = keras_tuner.Hyperband(
        hypermodel(input_shape, num_classes), objective=OBJECTIVE, max_epochs=max_epochs,
        factor=factor, seed=seed, directory=str(directory), project_name="hyperband",
        overwrite=True)
    # Hyperband's budget follows from max_epochs and factor; a trial cap lets
    # a quick run (or a test) stop early without changing the space.
    tuner.oracle.max_trials = max_trials
    return tuner


def search(splits, directory: Path, max_epochs: int = MAX_EPOCHS, factor: int = FACTOR,
           max_trials: int | None = None, seed: int = 0, verbose: int = 2) -> dict:
    """Runs Hyperband on the splits' train and validation; returns what it found."""
    import keras

    tuner = make_tuner(splits.input_shape, len(splits.class_names), directory,
                       max_epochs=max_epochs, factor=factor, max_trials=max_trials, seed=seed)
    stop_when_flat = keras.callbacks.EarlyStopping(monitor=OBJECTIVE, patience=3)
    tuner.search(splits.train, validation_data=splits.validation, epochs=max_epochs,
                 callbacks=[stop_when_flat], verbose=verbose, shuffle=False)
    best = tuner.oracle.get_best_trials(1)[0]
    trials = [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]
    return {
        "trials": len(trials),
        "max_epochs": max_epochs,
        "factor": factor,
        "best_hyperparameters": {"units": best.hyperparameters.get("units"),
                                 "learning_rate": best.hyperparameters.get("learning_rate")},
        f"best_{OBJECTIVE}": float(best.score),
    }


def build_best_model(input_shape, num_classes: int, found: dict):
    best = found["best_hyperparameters"]
    return cnn.build_model(input_shape, num_classes, learning_rate=best["learning_rate"],
                           first_units=best["units"])
