"""The pictures a training run leaves: learning curves and the confusion matrix.

Titles and class names come from catalogs: matplotlib draws them as plain
text (no `$...$` mathtext, where an invalid formula raises), long ones cut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_TICK_LABEL = 30  # characters of a class name on an axis


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plain_text():
    # Every Text created inside (ticks, legends, colorbar labels) is plain.
    import matplotlib
    return matplotlib.rc_context({"text.parse_math": False})


def _short(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def plot_history(history: dict, out: Path, title: str, best_epoch: int | None = None) -> Path:
    """Accuracy and loss per epoch, train against validation, side by side."""
    with _plain_text():
        return _plot_history(history, out, title, best_epoch)


def _plot_history(history: dict, out: Path, title: str, best_epoch: int | None) -> Path:
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        train_values = history.get(metric, [])
        epochs = range(1, len(train_values) + 1)
        axis.plot(epochs, train_values, "o-", label="train")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
        if best_epoch:
            axis.axvline(best_epoch, color="grey", linestyle=":", label=f"kept (epoch {best_epoch})")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
        if len(train_values) < 15:
            axis.set_xticks(list(epochs))
    figure.suptitle(_short(title, 200), parse_math=False)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def plot_confusion_matrix(matrix, class_names: list[str], out: Path, title: str) -> Path:
    """Rows are true classes, columns predictions; colour is the share of the row."""
    with _plain_text():
        return _plot_confusion_matrix(matrix, class_names, out, title)


def _plot_confusion_matrix(matrix, class_names: list[str], out: Path, title: str) -> Path:
    plt = _pyplot()
    class_names = [_short(name, MAX_TICK_LABEL) for name in class_names]
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    size = max(5.0, 0.42 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=90 if max(map(len, class_names)) > 3 else 0,
                    parse_math=False)
    axis.set_yticks(ticks, class_names, parse_math=False)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    font = 7 if len(class_names) > 12 else 10
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            if matrix[row, column]:
                axis.text(column, row, str(matrix[row, column]), ha="center", va="center",
                          fontsize=font, color="white" if shares[row, column] > 0.5 else "black")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class")
    axis.set_title(_short(title, 200), parse_math=False)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
