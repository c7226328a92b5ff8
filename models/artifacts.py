"""Where a training run puts its files, and how a later process finds them again."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
METRICS_FILE = "metrics.json"
HISTORY_PLOT = "history.png"
CONFUSION_PLOT = "confusion_matrix.png"
CSV_LOG = "training_log.csv"
TENSORBOARD_DIR = "logs"
CHECKPOINT_FILE = "checkpoints/best.keras"
TUNER_DIR = "tuner"


def model_file(path: str | Path) -> Path:
    """Accepts a run folder or a .keras file; the model file either way."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path} (pass a run folder or its {MODEL_FILE})")
    return path


def read_card(path: str | Path) -> dict:
    """The run's metrics.json beside the model: class names, dataset, input shape. {} if absent."""
    card = model_file(path).parent / METRICS_FILE
    return json.loads(card.read_text()) if card.is_file() else {}


class ModelFileError(ValueError):
    """A file that keras cannot load as a model."""


def load_model(path: str | Path):
    import keras
    file = model_file(path)
    try:
        return keras.models.load_model(file)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        # keras calls any unreadable file "not found"; say what it is instead.
        raise ModelFileError(f"{file}: not a model keras can load ({type(error).__name__}); "
                             f"pass a run folder of `sign-datasets train` or its {MODEL_FILE}") \
            from None


def class_names_of(model, card: dict) -> list[str]:
    """The card's class names; bare indices when the model came without a card."""
    names = card.get("class_names")
    if names:
        return list(names)
    return [str(index) for index in range(model.output_shape[-1])]


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
