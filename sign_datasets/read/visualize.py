"""Pictures of prepared datasets: people would rather look than read.

Class names and dataset names come from catalogs and source files, which are
untrusted: every text drawn from them is plain text to matplotlib (no
`$...$` mathtext, which an invalid formula would turn into an exception) and
very long names are cut.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.visualization import image_visualizer

MAX_TITLE = 18  # characters of a class name that fit above its picture


# matplotlib is imported where it is used: it takes a third of a second, and
# only commands that draw need it.
def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plain_text():
    """A context in which every matplotlib Text is created plain (no mathtext):
    tick labels, legends and titles made by other code (TFDS) included."""
    import matplotlib
    return matplotlib.rc_context({"text.parse_math": False})


def short(text: str, limit: int = MAX_TITLE) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def example_grid(name: str, data_dir: str | None = None, out: Path | str = "examples.png",
                 split: str = "train", rows: int = 4, cols: int = 8, seed: int = 0) -> Path:
    """Writes a PNG grid of examples with their class names and returns its path."""
    with plain_text():
        return _saved(grid_figure(name, data_dir=data_dir, split=split, rows=rows, cols=cols,
                                  seed=seed), out)


def _saved(figure, out: Path | str) -> Path:
    """Writes the figure as a PNG (its folder made) and closes it."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=100)
    finally:
        _pyplot().close(figure)
    return out


def picture_formats() -> set[str]:
    """The file name endings matplotlib can save a picture as (png, svg, pdf...)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    return set(FigureCanvasAgg(Figure()).get_supported_filetypes())


def grid_figure(name: str, data_dir: str | None = None, split: str = "train", rows: int = 4,
                cols: int = 8, seed: int = 0):
    """The matplotlib figure of `example_grid`: a picture per cell, its class
    name above it; the caller closes it."""

    dataset, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True,
                              shuffle_files=False)
    names = info.features["label"].names
    dataset = dataset.shuffle(1000, seed=seed).take(rows * cols)
    with plain_text():
        return _draw_grid(tfds.as_numpy(dataset), names, rows, cols,
                          f"{info.full_name} ({split})")


def _draw_grid(examples, names: list[str], rows: int, cols: int, title: str):
    plt = _pyplot()
    figure, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, example in zip(axes.flat, examples):
        image = example["image"]
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray",
                    vmin=0, vmax=255)
        axis.set_title(short(names[int(example["label"])]), fontsize=11, parse_math=False)
    figure.suptitle(short(title, 120), fontsize=12, parse_math=False)
    figure.tight_layout()
    return figure


# --- near copies side by side ------------------------------------------------------

MAX_NEAR_ROWS = 8  # pairs drawn on a page: the first of each kind the report lists


def near_pairs(quality: dict) -> list[dict]:
    """The pairs the report lists, first of each kind, with where each side's
    example is stored ({"title", "sides": [(split, where, index or None)], "bits"})."""
    rows = []
    for split, report in sorted(quality.get("splits", {}).items(), key=lambda item: item[0] != "train"):
        stored = report.get("stored_index", {})
        for kind, title in (("first_pairs", "near copies"), ("first_different_labels",
                                                             "near copies, labels differ")):
            for a, b, bits in report.get(kind, [])[:2]:
                rows.append({"title": f"{split}: {title}", "bits": bits,
                             "sides": [(split, a, stored.get(a)), (split, b, stored.get(b))]})
    leak = quality.get("near_leaked_from_train") or {}
    stored = leak.get("stored_index", {})
    for kind, title in (("first_pairs", "test image with a near copy in train"),
                        ("first_different_labels", "test and train near, labels differ")):
        for test, train, bits in leak.get(kind, [])[:3]:
            rows.append({"title": title, "bits": bits,
                         "sides": [("test", test, stored.get("test", {}).get(test)),
                                   ("train", train, stored.get("train", {}).get(train))]})
    return rows[:MAX_NEAR_ROWS]


def _tail(where: str, limit: int = 26) -> str:
    """The end of a record's place that fits a caption: Test/B/0006.jpg."""
    parts = where.split("/")
    tail = parts.pop()
    while parts and len(parts[-1]) + len(tail) < limit:
        tail = f"{parts.pop()}/{tail}"
    return short(tail, limit)


def near_pairs_picture(builder, quality: dict, out: Path | str) -> Path | None:
    """Writes a PNG of the report's first near pairs side by side (an example
    dropped from the build is named, not drawn); None when none is listed."""
    rows = near_pairs(quality)
    if not rows:
        return None
    plt = _pyplot()
    names = builder.info.features["label"].names
    with plain_text():
        figure, axes = plt.subplots(len(rows), 2, figsize=(6.4, 2.5 * len(rows)), squeeze=False)
        for row, pair in zip(axes, rows):
            for axis, (split, where, index) in zip(row, pair["sides"]):
                axis.axis("off")
                caption = _tail(where)
                if index is None:
                    axis.text(0.5, 0.5, f"{caption}\n(dropped)", ha="center", va="center",
                              fontsize=9, parse_math=False)
                    continue
                (example,) = tfds.as_numpy(builder.as_dataset(split=f"{split}[{index}:{index + 1}]"))
                image = example["image"]
                axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray",
                            vmin=0, vmax=255)
                axis.set_title(f"{split} {caption}\n{short(names[int(example['label'])])}",
                               fontsize=9, parse_math=False)
            row[0].text(1.05, 1.45, f"{pair['title']}: {pair['bits']} bits apart",
                        transform=row[0].transAxes, ha="center", fontsize=10, parse_math=False)
        figure.tight_layout()
        return _saved(figure, out)


# --- tfds.show_examples for raw pixels --------------------------------------------

def raw_image_keys(info) -> list[str]:
    """Features that hold a picture as a raw uint8 (H, W, 1 or 3) tensor."""

    return [key for key, feature in info.features.items()
            if isinstance(feature, tfds.features.Tensor) and len(feature.shape) == 3
            and feature.shape[-1] in (1, 3) and np.dtype(feature.np_dtype) == np.uint8]


_show_examples_registered = False


def register_show_examples() -> None:
    """Lets `tfds.show_examples` draw datasets whose images are raw uint8
    tensors, and draw every image grid's class names as plain text.

    TFDS's image grid only recognises tfds.features.Image. A custom feature
    would be recognised, but then a process without this package could not
    load the dataset; a visualizer changes nothing stored. TFDS writes class
    names as axis labels, where `$...$` would be mathtext. Idempotent.
    """
    # The package re-exports the function under the module's name.
    show_examples = importlib.import_module("tensorflow_datasets.core.visualization.show_examples")

    class PlainImageGridVisualizer(image_visualizer.ImageGridVisualizer):
        """TFDS's image grid, also for uint8 (H, W, C) Tensor features, with
        plain-text labels."""

        def match(self, ds_info) -> bool:
            return bool(raw_image_keys(ds_info)) or super().match(ds_info)

        def show(self, ds, ds_info, *args, image_key=None, **kwargs):
            if image_key is None and not super().match(ds_info):
                keys = raw_image_keys(ds_info)
                image_key = "image" if "image" in keys else keys[0]
            with plain_text():
                return super().show(ds, ds_info, *args, image_key=image_key, **kwargs)

    global _show_examples_registered
    if not _show_examples_registered:
        # TFDS has no public registry; this list is what show_examples tries,
        # in order: ours goes before TFDS's own image grid.
        show_examples._ALL_VISUALIZERS.insert(0, PlainImageGridVisualizer())
        _show_examples_registered = True
