"""Writes the small dummy_data/ files of the builders' TFDS-style tests.

They are tiny on purpose (a few KB) and hand-shaped: each holds one of every
kind of dirt its builder must clean, at positions the tests know.
Run: python scripts/make_dummy_data.py
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from sign_datasets.core.labels import INDEX_TO_CSV_LABEL

ROOT = Path(__file__).resolve().parents[1]
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _csv(rows: list[list[str]]) -> bytes:
    header = ["label"] + [f"pixel{i}" for i in range(1, 785)]
    return ("\n".join(",".join(r) for r in [header] + rows) + "\n").encode()


def sign_mnist_csv() -> None:
    rng = np.random.default_rng(7)

    def clean_rows(n: int, offset: int) -> list[list[str]]:
        rows = []
        for i in range(n):
            label = INDEX_TO_CSV_LABEL[(i + offset) % 24]
            pixels = rng.integers(1, 256, 784)
            rows.append([str(label)] + [str(p) for p in pixels])
        return rows

    train = clean_rows(20, 0)
    dirty = [list(r) for r in train]
    dirty.insert(5, list(train[2]))                   # exact repeat: duplicate_row
    dirty.insert(9, [str(train[0][0])] + ["fwefew"] * 784)  # non_numeric_cell
    dirty.insert(12, ["9"] + ["0"] * 784)             # J has no class: unknown_label
    members = {
        "sign_mnist_train/sign_mnist_train.csv": _csv(train),
        "sign_mnist_train/sign_mnist_train_clean.csv": _csv(dirty),
        "sign_mnist_test/sign_mnist_test.csv": _csv(clean_rows(10, 3)),
    }
    out = ROOT / "builders" / "sign_mnist_csv" / "dummy_data" / "databasesLoadData.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(_zip_bytes(members))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    sign_mnist_csv()
