"""Read-path benchmarks (issue 7), every figure a ratio measured in one run.

1. sign_mnist_csv, train split, batch 128: the in-memory numpy tf.data
   pipeline (the baseline) against sign_datasets.pipeline() over the prepared
   dataset, images stored as raw uint8 tensors (2.0.0) and as PNG (1.0.0's
   storage, rebuilt here), uncached and cached, and TFDS's own reader; and
   sign_datasets.batches(), the NumPy reader without TensorFlow (issue 20:
   at least half of pipeline()'s images/s), on the same builds.
2. Storage: disk size of each encoding; TFRecord against ArrayRecord for
   sequential epochs and for random reads.
3. sign_language_img (2.0.0: raw 28x28 pixels decoded from the JPEGs at build time): pipeline() against
   tf.keras.utils.image_dataset_from_directory over the same images
   extracted to disk.

Other people's jobs share this machine, so the pipelines run in turns (one
epoch each, round after round) and the figures are medians; the run records
the load and the kernel's CPU pressure.

Run: .venv/bin/python scripts/bench_read.py [--quick] [--no-write]
The results replace the section "## Read path (issue 7)" of docs/BENCHMARKS.md
and its chart docs/bench_read.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from sign_datasets.cli import bench  # noqa: E402  (after the log level)

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Read path (issue 7)"
CHART = ROOT / "docs" / "bench_read.png"
CSV_ZIP = "databasesLoadData.zip"
SIGN_ZIP = "sign-language-img.zip"
BATCH = 128
SEED = 0


def png_variant_class():
    """sign_mnist_csv as 1.0.0 stored it: PNG bytes from OpenCV in tfds.features.Image."""
    from sign_datasets.generate.builder import ENCODED_IMAGE, sign_features
    from sign_datasets.builders.sign_mnist_csv import sign_mnist_csv_dataset_builder as csv_builder
    from sign_datasets.core.images import encode_png

    class SignMnistCsvPng(csv_builder.Builder, skip_registration=True):
        name = "sign_mnist_csv_png"

        def _features(self):
            return sign_features(storage=ENCODED_IMAGE)

        def _generate_examples(self, plan):
            # Encoded in the build process rather than the workers: the build
            # is not timed.
            to_example = plan.to_example

            def png_example(record):
                key, example = to_example(record)
                return key, {**example, "image": encode_png(example["image"])}
            return super()._generate_examples(dataclasses.replace(plan, to_example=png_example))

    return SignMnistCsvPng


# --- timing ------------------------------------------------------------------------

def run_rounds(pipelines: dict, rounds: int) -> dict[str, dict]:
    """One epoch of each pipeline per round, after one untimed epoch each, the
    order rotated each round so that a burst of other people's work does not
    always hit the same one."""
    names = list(pipelines)
    for name in names:
        # Untimed: tf.data's first iterator of a pipeline pays for graph
        # optimisation and thread pools, and files enter the page cache.
        bench.epoch_seconds(pipelines[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    counts: dict[str, int] = {}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, counts[name] = bench.epoch_seconds(pipelines[name])
            times[name].append(seconds)
        print(f"  round {round_number + 1}/{rounds}: " + ", ".join(
            f"{name} {counts[name] / times[name][-1]:,.0f}/s" for name in names), flush=True)
    return {name: {"images": counts[name], "runs": times[name],
                   "median": statistics.median(times[name]),
                   "rate": counts[name] / statistics.median(times[name])} for name in names}


class AsPairs:
    """batches()' dicts as the (images, labels) pairs the timing loop takes."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return ((batch["image"], batch["label"]) for batch in self.batches)


def warmed(dataset):
    """A cached pipeline after the epoch that fills its cache (run_rounds'
    warm-up epoch would fill it too; this keeps the intent explicit)."""
    bench.epoch_seconds(dataset)
    return dataset


# --- the three parts -----------------------------------------------------------------

def bench_sign_mnist(builders: dict, rounds: int) -> dict:
    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from sign_datasets.read.batches import batches
    from sign_datasets.read.pipeline import pipeline

    raw, png, array_record = builders["raw"], builders["png"], builders["array_record"]
    loaded = list(pipeline(raw, "train", batch_size=4096, shuffle=False).as_numpy_iterator())
    images = np.concatenate([b[0] for b in loaded])
    labels = np.concatenate([b[1] for b in loaded])
    png_examples = Counter((int(label), image.tobytes()) for images_, labels_ in
                           pipeline(png, "train", batch_size=4096, shuffle=False).as_numpy_iterator()
                           for image, label in zip(images_, labels_))
    if png_examples != Counter((int(l), i.tobytes()) for i, l in zip(images, labels)):
        raise SystemExit("the PNG and raw builds hold different examples; the comparison is void")

    def in_memory(shuffle: bool):
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        if shuffle:
            dataset = dataset.shuffle(len(images), seed=SEED, reshuffle_each_iteration=True)
        return dataset.batch(BATCH).prefetch(tf.data.AUTOTUNE)

    def tfds_reader(builder):
        return (builder.as_dataset(split="train", as_supervised=True, shuffle_files=False,
                                   read_config=tfds.ReadConfig(try_autocache=False))
                .batch(BATCH).prefetch(tf.data.AUTOTUNE))

    def ours(builder, shuffle, cache=False):
        dataset = pipeline(builder, "train", batch_size=BATCH, shuffle=shuffle,
                           seed=SEED if shuffle else None, cache=cache)
        return warmed(dataset) if cache else dataset

    pipelines = {
        "numpy": in_memory(False),
        "numpy_shuffled": in_memory(True),
        "raw": ours(raw, False),
        "raw_shuffled": ours(raw, True),
        "png": ours(png, False),
        "png_shuffled": ours(png, True),
        "raw_cached": ours(raw, False, cache=True),
        "raw_cached_shuffled": ours(raw, True, cache=True),
        "png_cached_shuffled": ours(png, True, cache=True),
        "array_record": ours(array_record, False),
        "array_record_shuffled": ours(array_record, True),
        "tfds_raw": tfds_reader(raw),
        "tfds_png": tfds_reader(png),
        "batches_raw": AsPairs(batches(raw, "train", batch_size=BATCH, shuffle=False)),
        "batches_raw_shuffled": AsPairs(batches(raw, "train", batch_size=BATCH, seed=SEED)),
        "batches_array_record_shuffled": AsPairs(batches(array_record, "train", batch_size=BATCH,
                                                         seed=SEED)),
    }
    return run_rounds(pipelines, rounds)


def bench_random_reads(builders: dict, reads: int) -> dict:
    """Random examples by index: ArrayRecord's data source against the only
    way to reach example i of a TFRecord (read past the i before it)."""
    import numpy as np
    import tensorflow_datasets as tfds

    array_record, raw = builders["array_record"], builders["raw"]
    source = array_record.as_data_source(split="train")
    rng = np.random.default_rng(SEED)
    count = len(source)

    indices = rng.integers(0, count, reads)
    start = time.perf_counter()
    for index in indices:
        source[int(index)]
    single = reads / (time.perf_counter() - start)

    batch_indices = rng.integers(0, count, (max(1, reads // BATCH), BATCH))
    start = time.perf_counter()
    for batch in batch_indices:
        source.__getitems__(batch.tolist())
    batched = batch_indices.size / (time.perf_counter() - start)

    sequential = raw.as_dataset(split="train", shuffle_files=False)
    tf_reads = max(3, reads // 200)
    start = time.perf_counter()
    for index in rng.integers(0, count, tf_reads):
        for example in tfds.as_numpy(sequential.skip(int(index)).take(1)):
            example["image"]
    tfrecord = tf_reads / (time.perf_counter() - start)
    return {"array_record_single": single, "array_record_batched": batched,
            "tfrecord_skip": tfrecord, "reads": reads, "tf_reads": tf_reads}


def bench_sign_language_img(data_dir: Path, source: Path, work: Path, rounds: int) -> dict:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from sign_datasets.read.pipeline import pipeline

    builder = tfds.builder("sign_language_img", data_dir=str(data_dir))
    builder.download_and_prepare()
    extracted = work / "extracted"
    if extracted.exists():
        shutil.rmtree(extracted)
    with zipfile.ZipFile(source / SIGN_ZIP) as zf:  # the replica: our own, trusted zip
        zf.extractall(extracted, [n for n in zf.namelist() if n.startswith("Train/")])
    folders = tf.keras.utils.image_dataset_from_directory(
        extracted / "Train", color_mode="grayscale", image_size=(28, 28), batch_size=BATCH,
        seed=SEED, verbose=False).prefetch(tf.data.AUTOTUNE)
    pipelines = {
        "folders": folders,
        "ours": pipeline(builder, "train", batch_size=BATCH, seed=SEED),
        "ours_cached": warmed(pipeline(builder, "train", batch_size=BATCH, seed=SEED, cache=True)),
        "tfds": (builder.as_dataset(split="train", as_supervised=True, shuffle_files=True,
                                    read_config=tfds.ReadConfig(try_autocache=False,
                                                                shuffle_seed=SEED))
                 .batch(BATCH).prefetch(tf.data.AUTOTUNE)),
    }
    results = run_rounds(pipelines, rounds)
    counts = {r["images"] for r in results.values()}
    if len(counts) != 1:
        raise SystemExit(f"the sign_language_img pipelines saw different numbers of images: {counts}")
    return results


def disk_bytes(builder) -> dict:
    folder = Path(builder.data_dir)
    train = sum(p.stat().st_size for p in folder.glob("*-train.*"))
    return {"train_bytes": train, "per_example": train / builder.info.splits["train"].num_examples}


# --- report ----------------------------------------------------------------------------

def format_section(command: str, scale: float, machine: str, contention: tuple[str, str],
                   mnist: dict, disks: dict, reads: dict, sign: dict) -> str:
    today = datetime.date.today().isoformat()
    images = mnist["numpy"]["images"]

    def row(label, name, baseline, results=mnist):
        r, b = results[name], results[baseline]
        runs = ", ".join(f"{r['images'] / t:,.0f}" for t in r["runs"])
        return (f"| {label} | {r['rate']:,.0f} | {b['rate']:,.0f} | "
                f"**{r['rate'] / b['rate']:.2f}** | {runs} |")

    lines = [
        SECTION, "", "Command:", "", "```sh", command, "```", "",
        f"Run of {today} on {machine}, shared with other developers' jobs: {contention[0]} at "
        f"the start, {contention[1]} at the end. Replica at scale {scale} "
        f"({images:,} train images of sign_mnist_csv), read from a local folder. Every pipeline "
        "is built once; a round runs one epoch of each, in an order rotated every round; the "
        "figure is the median epoch over the rounds (the per-round rates are listed). Batches of "
        f"{BATCH}; shuffled pipelines use a buffer of the whole split and seed {SEED}.",
        "",
        "### sign_mnist_csv, train split: pipeline() against numpy arrays in memory",
        "",
        "The baseline is `tf.data.Dataset.from_tensor_slices((images, labels))` over the same "
        "pixels already in memory, `.batch(128).prefetch(AUTOTUNE)` (and `.shuffle(...)` before "
        "the batch for the shuffled rows).",
        "",
        "| pipeline | images/s | baseline images/s | ratio | per round (images/s) |",
        "|---|---|---|---|---|",
        row("numpy in memory (baseline)", "numpy", "numpy"),
        row("numpy in memory, shuffled (baseline)", "numpy_shuffled", "numpy_shuffled"),
        row("pipeline(), raw uint8, uncached (goal >= 0.25)", "raw", "numpy"),
        row("pipeline(), raw uint8, uncached, shuffled (goal >= 0.25)", "raw_shuffled", "numpy_shuffled"),
        row("pipeline(), PNG, uncached", "png", "numpy"),
        row("pipeline(), PNG, uncached, shuffled", "png_shuffled", "numpy_shuffled"),
        row("pipeline(cache=True), raw, later epoch (goal >= 0.8)", "raw_cached", "numpy"),
        row("pipeline(cache=True), raw, later epoch, shuffled (goal >= 0.8)", "raw_cached_shuffled",
            "numpy_shuffled"),
        row("pipeline(cache=True), PNG, later epoch, shuffled", "png_cached_shuffled", "numpy_shuffled"),
        row("pipeline(), raw, ArrayRecord build, uncached", "array_record", "numpy"),
        row("pipeline(), raw, ArrayRecord build, uncached, shuffled", "array_record_shuffled",
            "numpy_shuffled"),
        row("TFDS's reader (`as_dataset().batch(128)`), raw, uncached", "tfds_raw", "numpy"),
        row("TFDS's reader (`as_dataset().batch(128)`), PNG, uncached", "tfds_png", "numpy"),
        "",
        "### sign_mnist_csv, train split: batches() (NumPy, no TensorFlow) against pipeline()",
        "",
        "`sign_datasets.batches()` reads the same builds without TensorFlow (in this run "
        "TensorFlow is loaded for the other pipelines; batches() does not use it). The baseline "
        "is pipeline() on the same build, uncached, in the same order mode.",
        "",
        "| reader | images/s | baseline images/s | ratio | per round (images/s) |",
        "|---|---|---|---|---|",
        row("batches(), raw, TFRecord, in order", "batches_raw", "raw"),
        row("batches(), raw, TFRecord, shuffled (goal >= 0.5)", "batches_raw_shuffled",
            "raw_shuffled"),
        row("batches(), raw, ArrayRecord, shuffled", "batches_array_record_shuffled",
            "array_record_shuffled"),
        "",
        f"Raw against PNG through pipeline(), uncached: "
        f"{mnist['raw']['rate'] / mnist['png']['rate']:.1f}x (in order), "
        f"{mnist['raw_shuffled']['rate'] / mnist['png_shuffled']['rate']:.1f}x (shuffled). "
        f"pipeline() against TFDS's per-example reader on the same raw build: "
        f"{mnist['raw']['rate'] / mnist['tfds_raw']['rate']:.1f}x.",
        "",
        "### Storage",
        "",
        "| build of sign_mnist_csv (train split) | bytes on disk | bytes per example |",
        "|---|---|---|",
    ]
    for label, key in (("raw uint8, TFRecord (2.0.0)", "raw"), ("PNG, TFRecord (1.0.0's storage)", "png"),
                       ("raw uint8, ArrayRecord", "array_record")):
        lines.append(f"| {label} | {disks[key]['train_bytes']:,} | {disks[key]['per_example']:,.0f} |")
    lines += [
        "",
        f"Raw costs {disks['raw']['train_bytes'] / disks['png']['train_bytes'] - 1:+.1%} of disk "
        "against PNG here. The replica's synthetic pictures carry pixel noise that PNG cannot "
        "compress; the one real sign of the course's bucket (sign_mnist_base64) is 719 bytes as "
        "PNG against 784 raw (+9%).",
        "",
        "| random reads of single examples by index | reads/s | ratio |",
        "|---|---|---|",
        f"| TFRecord: `skip(i).take(1)` ({reads['tf_reads']} reads, the baseline) "
        f"| {reads['tfrecord_skip']:,.1f} | 1 |",
        f"| ArrayRecord: `tfds.data_source(...)[i]` ({reads['reads']:,} reads) "
        f"| {reads['array_record_single']:,.0f} | **{reads['array_record_single'] / reads['tfrecord_skip']:,.0f}** |",
        f"| ArrayRecord: `data_source.__getitems__(128 indices)` "
        f"| {reads['array_record_batched']:,.0f} | **{reads['array_record_batched'] / reads['tfrecord_skip']:,.0f}** |",
        "",
        "Random reads decode the example (numpy) as `tfds.data_source` returns it.",
        "",
        "### sign_language_img against keras' image_dataset_from_directory",
        "",
        "The baseline is `tf.keras.utils.image_dataset_from_directory` over the same train images "
        "extracted to disk (grayscale, 28x28, batch 128, shuffled, seed 0), as the course loads "
        "them; sign_language_img 2.0.0 stores the pixels of those JPEGs decoded once at build "
        "time (raw uint8, as the sign_mnist datasets), so pipeline() decodes a batch in one op.",
        "",
        "| pipeline, one shuffled epoch | images/s | baseline images/s | ratio | per round (images/s) |",
        "|---|---|---|---|---|",
        row("image_dataset_from_directory (baseline)", "folders", "folders", sign),
        row("pipeline(), uncached (goal >= 3)", "ours", "folders", sign),
        row("pipeline(cache=True), later epoch (goal >= 3)", "ours_cached", "folders", sign),
        row("TFDS's reader (`as_dataset().batch(128)`), uncached", "tfds", "folders", sign),
        "",
        f"![images per second of each pipeline]({CHART.name})",
        "",
        "Goals in this run: " + "; ".join(goal_lines(mnist, sign)) + ".",
        "",
        "Where the time goes: the raw path parses a batch of 128 records with one "
        "`tf.io.parse_example` and one `tf.io.decode_raw`, so it is bound by tf.data's cost per "
        "record read (the numpy baseline pays the same per-element cost for slicing); so is "
        "sign_language_img's. PNG and JPEG (1.0.0 of both datasets) have no batched decoder: "
        "one decode op per image bounds those paths, on every core. ArrayRecord is read through Python (array_record has no tf.data reader), one "
        "call per 1,024 indices, which caps it below TFRecord for whole epochs; it is the "
        "format for random access. Figures vary from round to round with the other jobs on the "
        "machine; the per-round rates show the spread.",
        "",
    ]
    return "\n".join(lines)


GOALS = (  # (what, pipeline, baseline, at least)
    ("uncached raw epoch, in order", "raw", "numpy", 0.25, "mnist"),
    ("uncached raw epoch, shuffled", "raw_shuffled", "numpy_shuffled", 0.25, "mnist"),
    ("cached epoch, in order", "raw_cached", "numpy", 0.8, "mnist"),
    ("cached epoch, shuffled", "raw_cached_shuffled", "numpy_shuffled", 0.8, "mnist"),
    ("batches() shuffled against pipeline()", "batches_raw_shuffled", "raw_shuffled", 0.5, "mnist"),
    ("sign_language_img uncached", "ours", "folders", 3.0, "sign"),
    ("sign_language_img cached", "ours_cached", "folders", 3.0, "sign"),
)


def goal_lines(mnist: dict, sign: dict) -> list[str]:
    results = {"mnist": mnist, "sign": sign}
    lines = []
    for what, name, baseline, goal, group in GOALS:
        ratio = results[group][name]["rate"] / results[group][baseline]["rate"]
        lines.append(f"{what} {ratio:.2f} (goal >= {goal:g}, {'met' if ratio >= goal else 'not met'})")
    return lines


def draw_chart(mnist: dict, sign: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mnist_bars = [("numpy in memory", "numpy"), ("pipeline raw", "raw"), ("pipeline PNG", "png"),
                  ("pipeline raw, cached", "raw_cached"), ("pipeline raw, ArrayRecord", "array_record"),
                  ("TFDS reader, raw", "tfds_raw"), ("TFDS reader, PNG", "tfds_png"),
                  ("batches() raw (NumPy)", "batches_raw")]
    sign_bars = [("image_dataset_from_directory", "folders"), ("pipeline", "ours"),
                 ("pipeline, cached", "ours_cached"), ("TFDS reader", "tfds")]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [7, 4]})
    for axis, bars, results, title, baseline in (
            (axes[0], mnist_bars, mnist, "sign_mnist_csv train, in order", "numpy"),
            (axes[1], sign_bars, sign, "sign_language_img train, shuffled", "folders")):
        rates = [results[key]["rate"] for _, key in bars]
        colours = ["#888888" if key == baseline else "#3b75af" for _, key in bars]
        axis.barh([label for label, _ in bars][::-1], rates[::-1], color=colours[::-1])
        for y, rate in enumerate(rates[::-1]):
            axis.text(rate, y, f" {rate / 1000:,.0f}k", va="center", fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("images per second, batch 128 (grey: baseline)")
        axis.set_xlim(0, max(rates) * 1.2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="replica scale (1 = real counts)")
    parser.add_argument("--rounds", type=int, default=7, help="epochs of each pipeline")
    parser.add_argument("--reads", type=int, default=4000, help="random reads of ArrayRecord")
    parser.add_argument("--quick", action="store_true",
                        help="scale 0.2, 2 rounds, 1,000 reads (a smoke test, not figures)")
    parser.add_argument("--work", type=Path, help="work folder, kept (default: a temporary one)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/BENCHMARKS.md and the chart alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.rounds, args.reads = 0.2, 2, 1000

    from absl import logging as absl_logging

    import sign_datasets  # noqa: F401  (registers the builders)
    import tensorflow_datasets as tfds
    from sign_datasets.replica import make_replica

    absl_logging.set_verbosity(absl_logging.ERROR)
    tfds.disable_progress_bar()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_read_"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "replica"
    print(f"replica and builds under {work}", flush=True)
    make_replica(source, scale=args.scale, seed=0, objects={CSV_ZIP, SIGN_ZIP})
    os.environ["SIGN_DATASETS_SOURCE"] = str(source)

    builders = {
        "raw": tfds.builder("sign_mnist_csv", data_dir=str(work / "tfrecord")),
        "png": png_variant_class()(data_dir=str(work / "tfrecord")),
        "array_record": tfds.builder("sign_mnist_csv", data_dir=str(work / "array_record"),
                                     file_format="array_record"),
    }
    for builder in builders.values():
        builder.download_and_prepare()

    contention_before = bench.contention()
    print(f"machine: {bench.machine()}; {contention_before}", flush=True)
    print("sign_mnist_csv: one epoch per pipeline and round", flush=True)
    mnist = bench_sign_mnist(builders, args.rounds)
    print("random reads", flush=True)
    reads = bench_random_reads(builders, args.reads)
    print("sign_language_img against image_dataset_from_directory", flush=True)
    sign = bench_sign_language_img(work / "tfrecord", source, work, args.rounds)
    contention_after = bench.contention()
    disks = {name: disk_bytes(builder) for name, builder in builders.items()}

    command = ".venv/bin/python scripts/bench_read.py" + (
        " --quick" if args.quick else
        f" --scale {args.scale:g} --rounds {args.rounds} --reads {args.reads}")
    section = format_section(command, args.scale, bench.machine(),
                             (contention_before, contention_after), mnist, disks, reads, sign)
    print()
    print(section)
    print("goals: " + "; ".join(goal_lines(mnist, sign)))
    if not args.no_write:
        bench.write_section(SECTION, section)
        draw_chart(mnist, sign, CHART)
        print(f"wrote the section to {bench.BENCHMARKS} and the chart to {CHART}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
