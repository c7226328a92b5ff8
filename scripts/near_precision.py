"""Precision and recall of the near-copy threshold on the replica's planted
pairs (issue 21): the sign CSVs and the sign image zip, read as a builder
decodes them, hashed (core/near.py), searched (core/near_index.py) at each
distance, and compared with the plants in replica-manifest.json.

    python scripts/near_precision.py --replica DIR   # a replica of any scale

The replica draws every unplanted image more than REJECT_DISTANCE (4) bits
from the others, so up to 4 bits a found pair that was not planted would be
the search's error; past 4 the unplanted pairs are chance look-alikes of
the synthetic drawings.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sign_datasets.core.images import decode_image  # noqa: E402
from sign_datasets.core.near_index import pairs_within  # noqa: E402
from sign_datasets.replica.near_copies import hashes_of  # noqa: E402

DISTANCES = (0, 2, 4, 6, 8, 10)


def csv_images(replica: Path) -> tuple[np.ndarray, int, list[tuple[int, int, str]]]:
    """Train then test rows as images, the train count, and the plants as
    (index, index, kind) in that numbering."""
    with zipfile.ZipFile(replica / "databasesLoadData.zip") as archive:
        splits = [np.loadtxt(io.TextIOWrapper(archive.open(member)), delimiter=",", skiprows=1,
                             dtype=np.uint8)[:, 1:].reshape(-1, 28, 28)
                  for member in ("sign_mnist_train/sign_mnist_train.csv",
                                 "sign_mnist_test/sign_mnist_test.csv")]
    manifest = json.loads((replica / "replica-manifest.json").read_text())
    offset = {"train": 0, "test": len(splits[0])}
    plants = [(p["source"], p["index"] + offset[p["split"]], p["kind"])
              for p in manifest["databasesLoadData.zip"]["sign_mnist_near_copies"]]
    return np.concatenate(splits), len(splits[0]), plants


def zip_images(replica: Path) -> tuple[np.ndarray, int, list[tuple[int, int, str]]]:
    with zipfile.ZipFile(replica / "sign-language-img.zip") as archive:
        names = sorted((n for n in archive.namelist() if n.endswith(".jpg")),
                       key=lambda n: (not n.startswith("Train/"), n))
        images = np.stack([decode_image(archive.read(n), "L")[..., 0] for n in names])
    manifest = json.loads((replica / "replica-manifest.json").read_text())
    number = {name: k for k, name in enumerate(names)}
    plants = [(number[p["source"]], number[p["member"]], p["kind"])
              for p in manifest["sign-language-img.zip"]["near_copies"]]
    return images, sum(n.startswith("Train/") for n in names), plants


def measure(images: np.ndarray, plants: list) -> list[dict]:
    hashes = hashes_of(images)
    planted = {tuple(sorted(pair[:2])): pair[2] for pair in plants}
    rows = []
    for distance in DISTANCES:
        i, j, _ = pairs_within(hashes, distance)
        found = set(zip(i.tolist(), j.tolist()))
        hits = found & set(planted)
        by_kind = {kind: sum(1 for pair in hits if planted[pair] == kind) for kind in sorted(set(planted.values()))}
        rows.append({"distance": distance, "found": len(found), "planted_found": len(hits),
                     "planted": len(planted), "recall": len(hits) / len(planted),
                     "precision": len(hits) / len(found) if found else 1.0, "by_kind": by_kind})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replica", required=True, type=Path)
    args = parser.parse_args(argv)
    for title, read in (("sign_mnist CSVs (train + test)", csv_images),
                        ("sign-language-img.zip (Train + Test)", zip_images)):
        images, _, plants = read(args.replica)
        kinds = {kind: sum(1 for p in plants if p[2] == kind) for kind in sorted({p[2] for p in plants})}
        print(f"{title}: {len(images)} images, {len(plants)} planted pairs {kinds}")
        print("| distance | pairs found | planted found | recall | precision | found by kind |")
        print("|---|---|---|---|---|---|")
        for row in measure(images, plants):
            print(f"| {row['distance']} | {row['found']} | {row['planted_found']} / {row['planted']} | "
                  f"{row['recall']:.3f} | {row['precision']:.3f} | {row['by_kind']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
