"""Pictures of prepared datasets: people would rather look than read."""

from __future__ import annotations

from pathlib import Path


def example_grid(name: str, data_dir: str | None = None, out: Path | str = "examples.png",
                 split: str = "train", rows: int = 4, cols: int = 8, seed: int = 0) -> Path:
    """Writes a PNG grid of examples with their class names and returns its path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow_datasets as tfds

    dataset, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True,
                              shuffle_files=False)
    names = info.features["label"].names
    dataset = dataset.shuffle(1000, seed=seed).take(rows * cols)
    figure, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5))
    for axis in axes.flat:
        axis.axis("off")
    for axis, example in zip(axes.flat, tfds.as_numpy(dataset)):
        image = example["image"]
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray",
                    vmin=0, vmax=255)
        axis.set_title(names[int(example["label"])], fontsize=11)
    figure.suptitle(f"{info.full_name} ({split})", fontsize=12)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
