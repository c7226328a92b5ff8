"""sign_mnist_csv: build speed against the course's pandas cleaning, and memory.

In one run, on a replica at --scale (1 = the real row counts):
1. the course's cleaning of the dirty CSV with pandas (read_csv, duplicated
   and drop, astype(str).astype(int), / 255), plus reading the test CSV;
2. our build of sign_mnist_csv/dirty (train and test) into a fresh data dir,
   through the real download path (a file copy from the replica folder);
3. the peak RSS of a whole build process at --scale and at 4x the rows,
   each in a fresh process.
Prints the times, the ratio and the memory figures; --markdown prints the
table for docs/BENCHMARKS.md.

    python scripts/bench_csv.py --scale 1 --work /tmp/bench_csv
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DIRTY = "sign_mnist_train/sign_mnist_train_clean.csv"
TEST = "sign_mnist_test/sign_mnist_test.csv"


def course_cleaning(folder: Path) -> float:
    """What the course does by hand, timed from the extracted CSVs, with
    pandas' defaults as the course calls it."""
    import warnings

    import pandas as pd

    warnings.simplefilter("ignore")  # the course's mixed-type DtypeWarning
    start = time.perf_counter()
    train = pd.read_csv(folder / DIRTY)
    train = train.drop(train[train.duplicated()].index)
    junk = [i for i in (727, 802, 861) if i in train.index]
    train = train.drop(junk)
    labels = train["label"]
    pixels = train.drop(columns="label").astype(str).astype(int) / 255
    test = pd.read_csv(folder / TEST)
    test_pixels = test.drop(columns="label") / 255
    elapsed = time.perf_counter() - start
    print(f"  course: {len(pixels)} train rows, {len(test_pixels)} test rows kept", flush=True)
    assert len(labels) == len(pixels)
    return elapsed


def our_build(replica: Path, data_dir: Path) -> float:
    os.environ["SIGN_DATASETS_SOURCE"] = str(replica)
    import tensorflow as tf
    import tensorflow_datasets as tfds

    import sign_datasets  # noqa: F401

    tf.io.gfile.exists(str(replica))  # load TF's file system layer before timing
    builder = tfds.builder("sign_mnist_csv/dirty", data_dir=str(data_dir))
    start = time.perf_counter()
    builder.download_and_prepare()
    elapsed = time.perf_counter() - start
    print(f"  ours: {builder.info.splits['train'].num_examples} train, "
          f"{builder.info.splits['test'].num_examples} test examples", flush=True)
    return elapsed


BUILD_AND_REPORT_RSS = """
import json, os, resource, sys
os.environ["SIGN_DATASETS_SOURCE"] = sys.argv[1]
import tensorflow_datasets as tfds
import sign_datasets
builder = tfds.builder("sign_mnist_csv/dirty", data_dir=sys.argv[2])
builder.download_and_prepare()
print(json.dumps({
    "examples": builder.info.splits["train"].num_examples + builder.info.splits["test"].num_examples,
    "main_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def build_peak_rss(replica: Path, data_dir: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", BUILD_AND_REPORT_RSS, str(replica), str(data_dir)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_replica_once(folder: Path, scale: float) -> Path:
    from sign_datasets.replica import make_replica
    if not (folder / "databasesLoadData.zip").exists():
        print(f"writing replica at scale {scale} to {folder}", flush=True)
        make_replica(folder, scale=scale, seed=0, objects={"databasesLoadData.zip"}, progress=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", default=None, help="folder for replicas and data dirs (kept)")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_csv_"))
    work.mkdir(parents=True, exist_ok=True)

    replica = make_replica_once(work / f"replica-{args.scale:g}", args.scale)
    extracted = work / f"extracted-{args.scale:g}"
    with zipfile.ZipFile(replica / "databasesLoadData.zip") as zf:
        zf.extract(DIRTY, extracted)
        zf.extract(TEST, extracted)

    print("timing the course's pandas cleaning ...", flush=True)
    course_seconds = course_cleaning(extracted)
    print("timing our build of sign_mnist_csv/dirty ...", flush=True)
    data_dir = Path(tempfile.mkdtemp(prefix="data_", dir=work))
    ours_seconds = our_build(replica, data_dir)
    ratio = ours_seconds / course_seconds
    print(f"course pandas cleaning: {course_seconds:.2f} s")
    print(f"sign_mnist_csv/dirty build (train+test): {ours_seconds:.2f} s")
    print(f"ratio build/course: {ratio:.2f} (goal < 0.5)")

    memory = {}
    if not args.skip_memory:
        for factor in (1, 4):
            scale = args.scale * factor
            folder = make_replica_once(work / f"replica-{scale:g}", scale)
            memory[factor] = build_peak_rss(folder, Path(tempfile.mkdtemp(prefix="mem_", dir=work)))
            print(f"peak RSS at {factor}x rows ({memory[factor]['examples']} examples): "
                  f"main {memory[factor]['main_peak_mb']:.0f} MB, "
                  f"largest worker {memory[factor]['worker_peak_mb']:.0f} MB", flush=True)
    print(json.dumps({"scale": args.scale, "course_s": course_seconds, "build_s": ours_seconds,
                      "ratio": ratio, "memory": memory}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
