"""Writes an offline replica of the course bucket (platzi-tf2) to a folder.

Every object keeps the real name and inner layout (see shared SOURCES.md), so
the project's loaders can run end to end without the internet. The pictures
are synthetic (see synthetic.py). `scale` shrinks the counts; at scale 1 every
count equals the real one, except the JSON Lines file (see SCALE_JSON_LINES).

Same scale and seed give byte-identical files on the same Pillow/zlib build:
zip members carry a fixed timestamp and order, and every random draw comes
from a generator seeded by (seed, object, split, class) names, never by time
or by the order in which objects are asked for.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from sign_datasets.core.labels import INDEX_TO_CSV_LABEL, SIGN_LETTERS
from sign_datasets.replica import near_copies, synthetic
from sign_datasets.replica.bucket import (ALL_OBJECTS, CIFAR100_LABELS, CIFAR_LABELS, DATABASES_ZIP,
                                          FIRST_ZERO_ROW, FWEFEW, FWEFEW_ROWS, IMAGE_FOLDER_ZIPS,
                                          IMG_MNIST, MALARIA_ZIP, REAL_BUCKET, REPEATED_ZERO_ROWS,
                                          SIGN_IMG_ZIP, SPLITS, TOM_JERRY_ZIP, TUMOR_ZIP,
                                          csv_row_counts, image_folder_counts, img_mnist_name,
                                          json_entries, split_counts)
from sign_datasets.replica.zip_writer import (ZipWriter, atomic_path, file_facts, progress_bar,
                                            seeded_rng)

DEFAULT_SCALE = 0.02
MANIFEST_NAME = "replica-manifest.json"
MANIFEST_FORMAT = 1



_SIGN_JPEG_QUALITY = 75  # Pillow's default, which the real base64 JPEG looks like
_CSV_CHUNK = 1024
_PIXEL_TEXT = tuple(str(v) for v in range(256))


# ------------------------------------------------------------------ counts ----


# ---------------------------------------------------------------- helpers ----


# ------------------------------------------------------------- sign MNIST ----

def _csv_labels(seed: int, tag: str, n: int) -> np.ndarray:
    rng = seeded_rng(seed, tag, "labels")
    classes = np.repeat(np.arange(len(SIGN_LETTERS)), split_counts(n, len(SIGN_LETTERS), 0))
    rng.shuffle(classes)
    return classes


def _distinct_at(classes: np.ndarray, rows: tuple[int, ...]) -> None:
    """Swaps labels so the given rows hold pairwise different classes; the
    dirty copy's "fwefew" rows should not all look like one class."""
    taken: set[int] = set()
    for r in rows:
        if classes[r] in taken:
            for k in range(r + 1, classes.size):
                if k not in rows and classes[k] not in taken:
                    classes[r], classes[k] = classes[k], classes[r]
                    break
        taken.add(int(classes[r]))


def _sign_csv_splits(seed: int, n_train: int, n_test: int) -> tuple[dict, dict, list]:
    """(labels, images, plants, chance near pairs left) of the train and test CSVs: class indices and
    uint8 (n, 28, 28) samples, no two near copies but the planted ones. The
    dirty copy's special rows keep pairwise different classes and are never
    planted or copied (so both train files hold the same near copies)."""
    labels = {"train": _csv_labels(seed, "sign_mnist_train", n_train),
              "test": _csv_labels(seed, "sign_mnist_test", n_test)}
    _distinct_at(labels["train"], FWEFEW_ROWS)
    both, chance = near_copies.near_free(np.concatenate([labels["train"], labels["test"]]),
                                         seeded_rng(seed, "sign_mnist", "pixels"),
                                         near_copies.as_pixels)
    images = {"train": both[:n_train], "test": both[n_train:]}
    protected = {FIRST_ZERO_ROW, *REPEATED_ZERO_ROWS, *FWEFEW_ROWS}
    plants = near_copies.plant(images, labels, seeded_rng(seed, "sign_mnist", "near copies"),
                               near_copies.as_pixels, protected)
    return labels, images, plants, chance


def _sign_csv_rows(labels: np.ndarray, images: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(csv_label, uint8[784]) of each row."""
    for cls, img in zip(labels.tolist(), images):
        yield INDEX_TO_CSV_LABEL[cls], img.reshape(-1)


def _csv_header() -> str:
    return "label," + ",".join(f"pixel{i}" for i in range(1, 785)) + "\n"


def _csv_line(label: int, pixels: np.ndarray) -> str:
    return f"{label}," + ",".join([_PIXEL_TEXT[v] for v in pixels.tolist()]) + "\n"


def _write_sign_csv(zw: ZipWriter, member: str, rows: Iterable[tuple[int, np.ndarray]], n: int,
                    dirty: bool, bar) -> dict:
    label_counts: dict[int, int] = {}
    zero_label = None
    with zw.stream(member, expected_size=n * 3200) as f:
        f.write(_csv_header().encode("ascii"))
        lines: list[str] = []
        for i, (label, pixels) in enumerate(rows):
            if dirty and i == FIRST_ZERO_ROW:
                zero_label = label
                line = f"{label}," + ",".join(["0"] * 784) + "\n"
            elif dirty and i in REPEATED_ZERO_ROWS:
                label = zero_label
                line = f"{label}," + ",".join(["0"] * 784) + "\n"
            elif dirty and i in FWEFEW_ROWS:
                line = f"{label}," + ",".join([FWEFEW] * 784) + "\n"
            else:
                line = _csv_line(label, pixels)
            label_counts[label] = label_counts.get(label, 0) + 1
            lines.append(line)
            if len(lines) >= _CSV_CHUNK:
                f.write("".join(lines).encode("ascii"))
                lines.clear()
            bar.update(1)
        f.write("".join(lines).encode("ascii"))
    facts = {"rows": n, "label_counts": {str(k): label_counts[k] for k in sorted(label_counts)}}
    if dirty:
        facts.update(
            {
                "first_zero_row": FIRST_ZERO_ROW,
                "zero_rows": list(REPEATED_ZERO_ROWS),
                "all_zero_rows": [FIRST_ZERO_ROW, *REPEATED_ZERO_ROWS],
                "zero_label": zero_label,
                "fwefew_rows": list(FWEFEW_ROWS),
            }
        )
    return facts


def _json_lines(scale: float) -> bytes:
    lines = []
    for n, letter in json_entries(scale):
        url = REAL_BUCKET + img_mnist_name(n, letter)
        # Byte for byte the real line's spacing: a space after the first colon only.
        lines.append('{"content": "%s","label":"%s"}\n' % (url, letter.lower()))
    return "".join(lines).encode("ascii")


def _base64_json(seed: int) -> bytes:
    img = synthetic.sign_image(SIGN_LETTERS.index("B"), seeded_rng(seed, "sign_mnist_base64", "b"))
    encoded = base64.b64encode(synthetic.jpeg_bytes(img, _SIGN_JPEG_QUALITY)).decode("ascii")
    return json.dumps({"b": encoded}, indent=2).encode("ascii")


def _write_databases_zip(dest: Path, scale: float, seed: int, progress: bool) -> dict:
    n_train, n_test = csv_row_counts(scale)
    final = dest / DATABASES_ZIP
    facts: dict = {}
    with atomic_path(final) as tmp, ZipWriter(tmp) as zw, progress_bar(2 * n_train + n_test, DATABASES_ZIP, progress) as bar:
        zw.write("pixeles.png", synthetic.pixeles_png())
        facts["pixeles.png"] = {"size": list(synthetic.PIXELES_SIZE), "mode": "RGB"}
        zw.write("sign_mnist_base64/data.json", _base64_json(seed))
        facts["sign_mnist_base64"] = {"entries": 1, "labels": ["b"], "image": {"size": [28, 28], "mode": "L"}}
        json_lines = _json_lines(scale)
        zw.write("sign_mnist_json/data.json", json_lines)
        facts["sign_mnist_json"] = {"lines": json_lines.count(b"\n")}
        labels, images, plants, chance = _sign_csv_splits(seed, n_train, n_test)
        facts["sign_mnist_test.csv"] = _write_sign_csv(
            zw, "sign_mnist_test/sign_mnist_test.csv", _sign_csv_rows(labels["test"], images["test"]),
            n_test, False, bar,
        )
        for name, dirty in (("sign_mnist_train.csv", False), ("sign_mnist_train_clean.csv", True)):
            facts[name] = _write_sign_csv(
                zw, f"sign_mnist_train/{name}", _sign_csv_rows(labels["train"], images["train"]),
                n_train, dirty, bar,
            )
        # Data rows (0-based, header not counted) of the train CSVs and the test CSV.
        facts["sign_mnist_near_copies"] = [plant.to_dict() for plant in plants]
        facts["sign_mnist_chance_near_pairs"] = chance
        facts["members"] = list(zw.members)
    facts.update(file_facts(final))
    return facts


def _write_img_mnist(dest: Path, scale: float, seed: int, only: set[str] | None) -> dict:
    files = {}
    for n, letter in json_entries(scale):
        name = img_mnist_name(n, letter)
        if only is not None and name not in only:
            continue
        img = synthetic.sign_image(SIGN_LETTERS.index(letter), seeded_rng(seed, name))
        path = dest / name
        with atomic_path(path) as tmp:
            tmp.write_bytes(synthetic.jpeg_bytes(img, _SIGN_JPEG_QUALITY))
        files[name.split("/", 1)[1]] = file_facts(path)
    return {"count": len(files), "files": files, "image": {"format": "JPEG", "size": [28, 28], "mode": "L"}}


# ---------------------------------------------------------- image folders ----

def _member_name(split: str, cls: str, number: int, count: int) -> str:
    return f"{split}/{cls}/{number:0{max(4, len(str(count)))}d}.jpg"


def _sign_folder_set(seed: int, counts: dict) -> tuple[dict, list]:
    """The sign zip's JPEGs by (split, class index), no two near copies once
    decoded but the planted ones, and the plants by member name."""
    classes = IMAGE_FOLDER_ZIPS[SIGN_IMG_ZIP]["classes"]
    members = {split: [(ci, number) for ci, cls in enumerate(classes)
                       for number in range(1, counts[split][cls] + 1)] for split in SPLITS}
    labels = {split.lower(): np.array([ci for ci, _ in members[split]], dtype=np.int64)
              for split in SPLITS}
    seen = near_copies.jpeg_round_trip(_SIGN_JPEG_QUALITY)
    both, chance = near_copies.near_free(np.concatenate([labels["train"], labels["test"]]),
                                         seeded_rng(seed, SIGN_IMG_ZIP, "pixels"), seen)
    images = {"train": both[:len(labels["train"])], "test": both[len(labels["train"]):]}
    plants = near_copies.plant(images, labels, seeded_rng(seed, SIGN_IMG_ZIP, "near copies"), seen)
    made: dict = {}
    for split in SPLITS:
        for (ci, _), img in zip(members[split], images[split.lower()]):
            made.setdefault((split, ci), []).append(synthetic.jpeg_bytes(img, _SIGN_JPEG_QUALITY))

    def name(split: str, index: int) -> str:
        ci, number = members[split][index]
        return _member_name(split, classes[ci], number, counts[split][classes[ci]])
    facts = [{"member": name(plant.split.title(), plant.index), "source": name("Train", plant.source),
              "kind": plant.kind, "same_label": plant.same_label} for plant in plants]
    return made, {"near_copies": facts, "chance_near_pairs": chance}


def _per_image(make: Callable[[int, np.random.Generator], bytes], object_name: str):
    def images(seed: int, split: str, class_index: int, count: int) -> Iterator[bytes]:
        rng = seeded_rng(seed, object_name, split, IMAGE_FOLDER_ZIPS[object_name]["classes"][class_index])
        for _ in range(count):
            yield make(class_index, rng)
    return images


_IMAGE_FOLDER_MAKERS = {
    SIGN_IMG_ZIP: (None, {"format": "JPEG", "mode": "L", "size": [28, 28]}),  # see _sign_folder_set
    MALARIA_ZIP: (
        _per_image(lambda ci, rng: synthetic.jpeg_bytes(synthetic.malaria_cell(ci == 0, rng), 80), MALARIA_ZIP),
        {"format": "JPEG", "mode": "RGB", "min_side": 90, "max_side": 160},
    ),
    TOM_JERRY_ZIP: (
        _per_image(
            lambda ci, rng: synthetic.jpeg_bytes(np.asarray(synthetic.tom_jerry_frame(ci == 0, rng)), 60),
            TOM_JERRY_ZIP,
        ),
        {"format": "JPEG", "mode": "RGB", "size": list(synthetic.TOM_JERRY_SIZE)},
    ),
    TUMOR_ZIP: (
        _per_image(
            # Stored as RGB with equal channels: keras loads colour by default
            # and the course converts to grayscale itself.
            lambda ci, rng: synthetic.jpeg_bytes(
                np.repeat(synthetic.tumor_slice(IMAGE_FOLDER_ZIPS[TUMOR_ZIP]["classes"][ci], rng)[..., None], 3, axis=2),
                85,
            ),
            TUMOR_ZIP,
        ),
        {"format": "JPEG", "mode": "RGB", "grayscale_content": True, "min_side": 128, "max_side": 256},
    ),
}


def _write_image_folder_zip(dest: Path, object_name: str, scale: float, seed: int, progress: bool) -> dict:
    make, image_facts = _IMAGE_FOLDER_MAKERS[object_name]
    classes = IMAGE_FOLDER_ZIPS[object_name]["classes"]
    counts = image_folder_counts(object_name, scale)
    total = sum(sum(c.values()) for c in counts.values())
    planted = None
    if object_name == SIGN_IMG_ZIP:
        made, planted = _sign_folder_set(seed, counts)
        make = lambda seed, split, ci, count: made[(split, ci)]  # noqa: E731
    final = dest / object_name
    with atomic_path(final) as tmp, ZipWriter(tmp) as zw, progress_bar(total, object_name, progress) as bar:
        for split in SPLITS:
            for ci, cls in enumerate(classes):
                count = counts[split][cls]
                for i, data in enumerate(make(seed, split, ci, count), start=1):
                    zw.write(_member_name(split, cls, i, count), data)
                    bar.update(1)
    facts: dict = {split: dict(counts[split]) for split in SPLITS}
    facts["classes"] = list(classes)
    facts["image"] = image_facts
    if planted is not None:
        facts.update(planted)
    facts.update(file_facts(final))
    return facts


def _write_cifar_labels(dest: Path) -> dict:
    final = dest / CIFAR_LABELS
    with atomic_path(final) as tmp:
        tmp.write_bytes(json.dumps(list(CIFAR100_LABELS), indent=4).encode("ascii"))
    return {"labels": len(CIFAR100_LABELS), **file_facts(final)}


# ------------------------------------------------------------------- entry ----

def _select(objects: Iterable[str] | None, scale: float) -> tuple[set[str], set[str] | None]:
    """Maps the caller's object names to whole groups to write, plus the
    subset of img_mnist files when only some were named."""
    if objects is None:
        return set(ALL_OBJECTS), None
    if isinstance(objects, str):
        objects = [objects]
    groups: set[str] = set()
    img_names: set[str] = set()
    all_img = {img_mnist_name(n, l) for n, l in json_entries(scale)}
    for name in objects:
        name = name.lstrip("/")
        if name in ALL_OBJECTS:
            groups.add(name)
        elif name == IMG_MNIST + "/":
            groups.add(IMG_MNIST)
        elif name in all_img:
            img_names.add(name)
        else:
            raise ValueError(f"not an object of the replica at scale {scale}: {name!r}")
    if IMG_MNIST in groups or not img_names:
        return groups, None
    groups.add(IMG_MNIST)
    return groups, img_names


def _write_object(dest: Path, name: str, scale: float, seed: int, img_only: set[str] | None, progress: bool) -> dict:
    if name == DATABASES_ZIP:
        return _write_databases_zip(dest, scale, seed, progress)
    if name == IMG_MNIST:
        return _write_img_mnist(dest, scale, seed, img_only)
    if name == CIFAR_LABELS:
        return _write_cifar_labels(dest)
    return _write_image_folder_zip(dest, name, scale, seed, progress)


# Rough cost at scale 1 in seconds, to hand the slowest objects out first
# when several worker processes share the work.
_COST = {MALARIA_ZIP: 45, DATABASES_ZIP: 14, SIGN_IMG_ZIP: 9, TOM_JERRY_ZIP: 4, TUMOR_ZIP: 4, IMG_MNIST: 1, CIFAR_LABELS: 0}


def _write_in_subprocesses(dest: Path, names: list[str], scale: float, seed: int, img_only: set[str] | None,
                           progress: bool, workers: int) -> dict[str, dict]:
    """Runs one child interpreter per object, `workers` at a time. Children
    are plain `python -c` runs rather than multiprocessing, which would
    re-import the caller's main script and fail in scripts without a
    __main__ guard."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)

    def run(name: str) -> dict:
        spec = {"dest": str(dest), "name": name, "scale": scale, "seed": seed,
                "img_only": sorted(img_only) if img_only is not None else None, "progress": progress}
        done = subprocess.run(
            [sys.executable, "-c", _WORKER_CODE, json.dumps(spec)],
            env=env, stdout=subprocess.PIPE, stderr=None if progress else subprocess.PIPE, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"writing {name} failed in a worker process:\n{done.stderr or ''}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(max_workers=min(workers, len(names))) as pool:
        futures = {name: pool.submit(run, name) for name in sorted(names, key=lambda n: -_COST[n])}
        return {name: futures[name].result() for name in names}


def make_replica(dest_dir, scale: float = DEFAULT_SCALE, seed: int = 0, objects: Iterable[str] | None = None,
                 progress: bool = False, workers: int = 1) -> dict:
    """Writes the replica's objects under `dest_dir` and returns the manifest,
    also saved as dest_dir/replica-manifest.json (not a bucket object).

    objects: names such as "databasesLoadData.zip", "img_mnist" (all of the
    img_mnist/*.jpg objects) or single "img_mnist/29_B.jpg"; None writes all.
    A manifest already in dest_dir for the same scale and seed is extended,
    so objects can be written in several calls.
    workers > 1 writes objects in that many child processes; the bytes are
    the same as with one, since every object has its own seeds.
    """
    if not (isinstance(scale, (int, float)) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    scale, seed = float(scale), int(seed)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    groups, img_only = _select(objects, scale)

    manifest: dict = {"format": MANIFEST_FORMAT, "scale": scale, "seed": seed, "bucket": REAL_BUCKET}
    manifest_path = dest / MANIFEST_NAME
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except ValueError:
            old = {}
        if all(old.get(k) == manifest[k] for k in ("format", "scale", "seed")):
            manifest = old

    names = [name for name in ALL_OBJECTS if name in groups]
    if workers > 1 and len(names) > 1:
        results = _write_in_subprocesses(dest, names, scale, seed, img_only, progress, workers)
    else:
        results = {name: _write_object(dest, name, scale, seed, img_only, progress) for name in names}

    for name in names:
        facts = results[name]
        if name == IMG_MNIST and img_only is not None and IMG_MNIST in manifest:
            manifest[IMG_MNIST]["files"].update(facts["files"])
            manifest[IMG_MNIST]["count"] = len(manifest[IMG_MNIST]["files"])
        else:
            manifest[name] = facts

    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return json.loads(manifest_path.read_text())


_WORKER_CODE = "import sys; from sign_datasets.replica.generate import _worker_entry; _worker_entry(sys.argv[1])"


def _worker_entry(spec_json: str) -> None:
    spec = json.loads(spec_json)
    img_only = set(spec["img_only"]) if spec["img_only"] is not None else None
    facts = _write_object(Path(spec["dest"]), spec["name"], spec["scale"], spec["seed"], img_only, spec["progress"])
    print(json.dumps(facts))

