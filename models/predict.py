"""Top-k class names for image files, from a saved model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sign_datasets.core.cleaning import Dropped
from sign_datasets.core.images import decode_image
from sign_datasets.models import artifacts, data


def read_images(paths, shape):
    """uint8 batch of image files, decoded safely and prepared exactly as in training."""
    height, width, channels = shape
    mode = "L" if channels == 1 else "RGB"
    images = []
    for path in paths:
        pixels = decode_image(Path(path).read_bytes(), mode, where=str(path))
        images.append(data.conform_image(pixels, (height, width, channels)).numpy())
    return np.stack(images) if images else np.zeros((0, height, width, channels), dtype=np.uint8)


def top_k(probabilities, class_names: list[str], k: int = 3) -> list[list[tuple[str, float]]]:
    k = max(1, min(k, len(class_names)))
    ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(class_names[i], float(row[i])) for i in order] for row, order in zip(probabilities, ranked)]


def predict_files(model_path: str | Path, paths, top: int = 3):
    """[(path, [(name, probability), ...] or None, error or None)] for each image file.

    A file that is not a readable image gets its error and does not stop the others.
    """
    model = artifacts.load_model(model_path)
    names = artifacts.class_names_of(model, artifacts.read_card(model_path))
    shape = tuple(model.input_shape[1:])
    results, readable = [], []
    for path in paths:
        try:
            readable.append((path, read_images([path], shape)[0]))
        except (Dropped, OSError) as error:
            results.append((str(path), None, str(error)))
    if readable:
        batch = np.stack([image for _, image in readable])
        ranked = top_k(model.predict(batch, verbose=0), names, top)
        results += [(str(path), ranking, None) for (path, _), ranking in zip(readable, ranked)]
    order = {str(path): i for i, path in enumerate(paths)}
    return sorted(results, key=lambda result: order[result[0]])
