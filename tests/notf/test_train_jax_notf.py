"""`sign-datasets train` on Keras 3 over JAX in a venv without TensorFlow
(.venv-notf, made by `make test` with the jax extra).

tests/test_batches.py builds sign_mnist_csv with TensorFlow and runs this
folder in .venv-notf with the build's data dir in SIGN_DATASETS_NOTF_TFRECORD;
run on their own, these tests skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

NAME = "sign_mnist_csv"
DATA_DIR = os.environ.get("SIGN_DATASETS_NOTF_TFRECORD")
COMMAND = Path(sys.executable).parent / "sign-datasets"
TENSORFLOW_EXTRA = "pip install 'sign-datasets[tensorflow]'"
# Runs the console script as it is, then reports whether TensorFlow got
# imported on the way (it is not installed here, so nothing may even try).
WATCHED_RUN = """
import runpy, sys
script, sys.argv = sys.argv[1], sys.argv[1:]
try:
    runpy.run_path(script, run_name="__main__")
    code = 0
except SystemExit as stop:
    code = stop.code
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(code)
"""

pytestmark = pytest.mark.skipif(not DATA_DIR, reason="run by tests/test_batches.py in .venv-notf")


def sign_datasets(*args: str, keras_home: Path | None = None) -> subprocess.CompletedProcess:
    """The command on JAX; given `keras_home` (a fresh folder), on keras' own
    default backend instead, whatever a keras.json of this machine says."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    if keras_home:
        env["KERAS_HOME"] = str(keras_home)
    else:
        env["KERAS_BACKEND"] = "jax"
    return subprocess.run([sys.executable, "-c", WATCHED_RUN, str(COMMAND), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cnn_trains_on_jax_saves_and_loads_back(tmp_path):
    out = tmp_path / "run"
    # Three epochs of batch 32 on the replica's 900 rows, each its own drawing
    # of its letter: about 0.5 test accuracy, as on TensorFlow (tests/test_models.py).
    done = sign_datasets("train", NAME, "--model", "cnn", "--data-dir", DATA_DIR, "--epochs", "3",
                         "--batch-size", "32", "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "tensorflow imported: False" in done.stdout
    assert f"written to {out.resolve()}" in done.stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["versions"]["keras_backend"] == "jax"
    assert metrics["versions"]["tensorflow"] is None
    assert metrics["examples"] == {"train": 810, "validation": 90, "test": 143}
    assert metrics["epochs_run"] == 3 and len(metrics["history"]["val_accuracy"]) == 3
    # TensorBoard logs and the SavedModel are TensorFlow's; the rest is there.
    assert metrics["files"]["saved_model"] is None and not (out / "saved_model").exists()
    for name in ("model.keras", "checkpoints/best.keras", "training_log.csv", "history.png",
                 "confusion_matrix.png"):
        assert (out / name).is_file(), name

    os.environ["KERAS_BACKEND"] = "jax"  # read when keras is first imported
    import keras

    import sign_datasets as package

    assert keras.backend.backend() == "jax"
    model = keras.models.load_model(out / "model.keras")
    test = list(package.batches(NAME, "test", shuffle=False, data_dir=DATA_DIR))
    images = np.concatenate([batch["image"] for batch in test])
    labels = np.concatenate([batch["label"] for batch in test])
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == labels))
    assert len(labels) == 143
    assert accuracy == pytest.approx(metrics["evaluation"]["accuracy"])
    assert accuracy > 0.3  # chance is 1/24
    assert "tensorflow" not in sys.modules


def test_a_dataset_not_built_says_building_needs_tensorflow(tmp_path):
    done = sign_datasets("train", NAME, "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "is not built in" in done.stderr and TENSORFLOW_EXTRA in done.stderr
    assert f"sign-datasets build {NAME} --file-format array_record --data-dir {tmp_path}" in \
        done.stderr
    assert "Downloading" not in done.stderr + done.stdout


def test_keras_on_its_default_backend_says_what_to_install(tmp_path):
    done = sign_datasets("train", NAME, "--data-dir", DATA_DIR, "--out", str(tmp_path / "run"),
                         keras_home=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert TENSORFLOW_EXTRA in done.stderr and "KERAS_BACKEND=jax" in done.stderr
