"""What the catalog tests share: the sources they make (a zip of pet
pictures, CSVs of shape pixel rows), catalog texts and the command line.
The team catalog built from them is in catalog_fixtures.py."""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SHAPES = ("circle", "square", "triangle")
SHAPE_FILE_LABELS = (3, 5, 7)
PETS = ("cat", "dog")


# --- sources the tests make ------------------------------------------------------

def picture(seed: int, size=(16, 20), mode="RGB") -> np.ndarray:
    channels = 3 if mode == "RGB" else 1
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, channels), dtype=np.uint8)
    return pixels if mode == "RGB" else pixels[..., 0]


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_pets_zip(path: Path, leak: bool = False) -> dict:
    """Train/<class>/ and Test/<class>/ PNGs, 16 high x 20 wide, RGB; train
    also holds one repeat of an image and one file that is no image; `leak`
    adds a test image equal to a train image."""
    members, pixels = {}, {}
    seed = 0
    for split, per_class in (("Train", 5), ("Test", 2)):
        for label in PETS:
            for i in range(per_class):
                seed += 1
                name = f"pets/{split}/{label}/{label}_{i}.png"
                pixels[name] = picture(seed)
                members[name] = png_bytes(pixels[name])
    members["pets/Train/dog/repeat.png"] = members["pets/Train/cat/cat_0.png"]
    members["pets/Train/cat/broken.png"] = b"this is not a picture"
    if leak:
        members["pets/Test/cat/leak.png"] = members["pets/Train/dog/dog_1.png"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return pixels


def csv_text(rows: list[str], pixels: int = 64) -> str:
    header = ",".join(["label"] + [f"pixel{i}" for i in range(1, pixels + 1)])
    return "\n".join([header] + rows) + "\n"


def shape_row(label: int, seed: int) -> str:
    return ",".join(str(v) for v in [label, *picture(seed, (8, 8), "L").ravel()])


def make_shapes_csvs(folder: Path) -> dict:
    """train.csv: 9 good rows, one repeat, one unknown label, one 'x' pixel;
    test.csv: 3 good rows. Returns {(split, row index): (label, pixels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = {}
    train = []
    for i in range(9):
        label = SHAPE_FILE_LABELS[i % 3]
        train.append(shape_row(label, 100 + i))
        good[("train", i)] = (i % 3, picture(100 + i, (8, 8), "L"))
    train.append(train[2])                                   # duplicate_row
    train.append(shape_row(4, 200))                          # unknown_label
    train.append(shape_row(3, 201).rsplit(",", 1)[0] + ",x")    # non_numeric_cell
    test = [shape_row(SHAPE_FILE_LABELS[i], 300 + i) for i in range(3)]
    (folder / "train.csv").write_text(csv_text(train))
    (folder / "test.csv").write_text(csv_text(test))
    return good


def team_catalog_text(zip_url: str, zip_sha: str) -> str:
    return textwrap.dedent(f"""\
        # A team's own datasets.
        [[dataset]]
        name = "team_pets"
        version = "1.1.0"
        description = "Cats and dogs of the team's photo booth."
        format = "zip_folders"
        classes = ["cat", "dog"]
        image = {{ mode = "RGB", size = [16, 20] }}
        sources = [{{ location = "{zip_url}", sha256 = "{zip_sha}" }}]
        homepage = "https://example.org/pets"
        license = "CC-BY-4.0"
        citation = "@misc{{pets, title = {{Pets}}}}"
        [dataset.release_notes]
        "1.0.0" = "First release."
        "1.1.0" = "More dogs."

        [[dataset]]
        name = "team_shapes"
        version = "1.0.0"
        description = "Hand-drawn shapes, 8x8 grayscale pixel rows."
        format = "csv_pixels"
        classes = ["circle", "square", "triangle"]
        csv_labels = [3, 5, 7]
        image = {{ mode = "L", size = [8, 8] }}
        cleaning = {{ drop_duplicates = true }}
        sources = [
          {{ location = "shapes/train.csv", split = "train" }},
          {{ location = "shapes/test.csv", split = "test" }},
        ]
        release_notes = {{ "1.0.0" = "First release." }}
        """)


GOOD_ENTRY = """\
[[dataset]]
name = "{name}"
version = "1.0.0"
description = "Some shapes."
format = "csv_pixels"
classes = ["circle", "square"]
image = {{ mode = "L", size = [8, 8] }}
sources = [{{ location = "{location}" }}]
"""


def bad_catalog(tmp_path: Path, text: str, filename="bad.toml") -> Path:
    path = tmp_path / filename
    path.write_text(text)
    return path


def entry_text(name="team_ok", location="shapes.csv") -> str:
    return GOOD_ENTRY.format(name=name, location=location)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    from sign_datasets.cli.commands import main
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
