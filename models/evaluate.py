"""Scoring a model on a dataset split: accuracy, loss, confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sign_datasets.models import artifacts, data


class ClassMismatchError(ValueError):
    """The model and the dataset number their classes differently."""


def predictions_and_labels(model, dataset):
    """(class probabilities, true labels) over a batched (image, label) dataset
    (a tf.data pipeline, or data.numpy_split's PyDataset without TensorFlow)."""
    labels = [np.asarray(batch_labels) for _, batch_labels in dataset]
    if not labels:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32), np.zeros((0,), dtype=np.int64)
    # One predict over the whole split traces the model once; a call per
    # batch retraces for the last, shorter batch. The split is read in the
    # same order both times (no shuffling outside training).
    probabilities = model.predict(data.images_only(dataset), verbose=0)
    return probabilities, np.concatenate(labels).astype(np.int64)


def confusion_matrix(labels, predicted, num_classes: int):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix


def summarize(probabilities, labels, class_names: list[str]) -> dict:
    predicted = probabilities.argmax(axis=1) if len(labels) else np.zeros((0,), dtype=np.int64)
    matrix = confusion_matrix(labels, predicted, len(class_names))
    chosen = probabilities[np.arange(len(labels)), labels] if len(labels) else np.zeros((0,))
    per_class = {name: (float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None)
                 for i, name in enumerate(class_names)}
    return {
        "examples": int(len(labels)),
        "accuracy": float(np.trace(matrix) / max(1, len(labels))),
        "cross_entropy": float(-np.mean(np.log(np.clip(chosen, 1e-7, 1.0)))) if len(labels) else None,
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def check_class_names(model_names: list[str], dataset_names: list[str], dataset: str) -> None:
    if list(model_names) != list(dataset_names):
        raise ClassMismatchError(
            f"the model's classes {model_names} are not {dataset}'s {dataset_names}: "
            "its predictions would be read under the wrong names")


def evaluate_saved_model(model_path: str | Path, dataset: str, split: str = "test",
                         data_dir: str | None = None, batch_size: int = 256,
                         build: bool = True) -> dict:
    """Loads a saved model and scores it on `split` of `dataset`, prepared to the model's input."""
    data.require_keras()  # a one-line error when keras cannot run here
    model = artifacts.load_model(model_path)
    card = artifacts.read_card(model_path)
    shape = tuple(model.input_shape[1:])
    batches, dataset_names, count = data.load_evaluation_split(dataset, split, shape, data_dir,
                                                               batch_size, build=build)
    model_names = artifacts.class_names_of(model, card)
    if card.get("class_names"):
        check_class_names(model_names, dataset_names, dataset)
    elif len(model_names) != len(dataset_names):
        raise ClassMismatchError(f"the model has {len(model_names)} classes, {dataset} has "
                                 f"{len(dataset_names)}")
    probabilities, labels = predictions_and_labels(model, batches)
    result = summarize(probabilities, labels, dataset_names)
    result.update({"model": str(artifacts.model_file(model_path)), "dataset": dataset, "split": split,
                   "trained_on": card.get("dataset")})
    return result
