"""Local generation against Apache Beam: DirectRunner (multi_processing)
and sign_datasets.DaskRunner on a Dask cluster of 1 and of 2 worker processes.

For the CSV (sign_mnist_csv/original) and the image folders
(sign_language_img/28x28), on a replica at --scale: one untimed warm-up
build (downloads, file caches), then each timed build into a fresh data dir
with the same download dir, alternating the runners, best of --repeats.
Every output is checked to hold the same examples and the same report as
the local build. The Dask clusters (a scheduler and worker processes on
loopback TCP) also give the scheduler's own cost per task: no-op tasks, and
each build's tasks against the time its workers computed.
Rewrites the "## Beam (issue 9)" section of docs/BENCHMARKS.md unless
--no-write.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Beam (issue 9)"
DATASETS = ("sign_mnist_csv/original", "sign_language_img/28x28")
OBJECTS = {"sign_mnist_csv/original": "databasesLoadData.zip",
           "sign_language_img/28x28": "sign-language-img.zip"}


# Each split's work in this many Dask partitions (tasks per step), for 1
# and 2 workers alike, so that only the workers change.
DASK_PARTITIONS = 4
DASK_WORKERS = (1, 2)
NOOP_TASKS = 2000


def beam_options(workers: int) -> str:
    return (f"runner=DirectRunner,direct_num_workers={workers},"
            "direct_running_mode=multi_processing")


def dask_options(address: str) -> str:
    return (f"runner=sign_datasets.DaskRunner,dask_client_address={address},"
            f"dask_npartitions={DASK_PARTITIONS}")


def start_cluster(workers: int):
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", protocol="tcp", dashboard_address=None)
    return cluster, Client(cluster)


def _noop(number: int) -> int:
    return number


def noop_overhead(client) -> float:
    """Seconds per task the scheduler and workers add around a task that
    does nothing (submitted at once, all gathered)."""
    client.gather(client.map(_noop, range(50), pure=False))  # warm
    start = time.perf_counter()
    client.gather(client.map(_noop, range(NOOP_TASKS), pure=False))
    return (time.perf_counter() - start) / NOOP_TASKS


def build(name: str, data_dir: Path, downloads: Path, options: str | None):
    import tensorflow_datasets as tfds

    from sign_datasets.generate import beam

    config = tfds.download.DownloadConfig()
    if options:
        config = tfds.download.DownloadConfig(beam_options=beam.pipeline_options(options))
    start = time.perf_counter()
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_dir=str(downloads), download_config=config)
    return time.perf_counter() - start, builder


def records(builder) -> dict[str, list[bytes]]:
    import tensorflow as tf
    out = {}
    for split in builder.info.splits:
        files = sorted(Path(builder.data_dir).glob(f"*-{split}.tfrecord-*"))
        out[split] = [r.numpy() for r in tf.data.TFRecordDataset([str(f) for f in files])]
    return out


def task_records(client, run) -> tuple[float, list]:
    """The seconds `run()` took and the scheduler's records of its tasks."""
    from dask.distributed import get_task_stream

    with get_task_stream(client) as stream:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    return seconds, stream.data


def per_task(seconds: float, tasks: list, threads: int) -> dict:
    """Tasks the scheduler ran for a build, and the workers' thread-seconds
    of the build per task (a task waiting on a nested computation of a side
    input counts while it waits, so compute times alone overlap)."""
    return {"tasks": len(tasks), "per_task": seconds * threads / max(1, len(tasks))}


def bench_dataset(name: str, work: Path, workers: int, repeats: int, clusters: dict) -> dict:
    downloads = work / "downloads"
    build(name, work / "warm", downloads, None)
    runners = [("local", None), ("beam", beam_options(workers))]
    runners += [(f"dask{n}", dask_options(clusters[n][0].scheduler_address)) for n in clusters]
    times = {label: [] for label, _ in runners}
    outputs, tasks = {}, {}
    for repeat in range(repeats):
        for label, options in runners:
            data_dir = work / f"{label}-{repeat}"
            if label.startswith("dask"):
                client = clusters[int(label.removeprefix("dask"))][1]
                seconds, records_of_tasks = task_records(
                    client, lambda: build(name, data_dir, downloads, options))
                builder = tfds_builder(name, data_dir)
                if repeat == 0 or seconds < min(times[label]):
                    tasks[label] = per_task(seconds, records_of_tasks, int(label[4:]))
            else:
                seconds, builder = build(name, data_dir, downloads, options)
            times[label].append(seconds)
            print(f"  {name} {label}: {seconds:.2f} s", flush=True)
            if repeat == 0:
                outputs[label] = (records(builder), json.dumps(compared_metadata(builder),
                                                               sort_keys=True))
            shutil.rmtree(data_dir, ignore_errors=True)
    for label in outputs:
        if outputs[label][0] != outputs["local"][0]:
            raise SystemExit(f"{name}: the {label} build's examples differ from the local build's")
        if outputs[label][1] != outputs["local"][1]:
            raise SystemExit(f"{name}: the {label} build's metadata differs from the local "
                             f"build's: {outputs[label][1]} against {outputs['local'][1]}")
    examples = sum(len(split) for split in outputs["local"][0].values())
    return {"name": name, "examples": examples, "runs": times, "tasks": tasks,
            **{label: min(runs) for label, runs in times.items()}}


def compared_metadata(builder) -> dict:
    # The quality report (near copies) is made by local builds only so far.
    return {key: value for key, value in builder.info.metadata.items() if key != "quality"}


def tfds_builder(name: str, data_dir: Path):
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=str(data_dir))


def format_section(command: str, scale: float, workers: int, results: list[dict],
                   contention: tuple[str, str], noop: dict) -> str:
    from sign_datasets.cli import bench
    lines = [
        SECTION,
        "",
        "Command:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Replica at scale {scale}, read from a local folder (SIGN_DATASETS_SOURCE). Each "
        "build is `download_and_prepare()` of train and test into a fresh data dir with a "
        "shared download dir, after an untimed warm-up build; the runners alternate and "
        "the figure is the best run. DirectRunner runs with "
        f"`direct_num_workers={workers},direct_running_mode=multi_processing`; Dask is "
        "`runner=sign_datasets.DaskRunner` on a LocalCluster of 1 or 2 worker processes "
        "(one thread each) talking TCP on loopback, with "
        f"`dask_npartitions={DASK_PARTITIONS}`; the local build uses its own fork pool on "
        "every core. Every build was checked to hold the same examples as the local one, "
        "byte for byte, and the same metadata.",
        "",
        f"Machine ({datetime.date.today().isoformat()}): {bench.machine()}. The machine is "
        f"shared with other jobs: {contention[0]} before, {contention[1]} after.",
        "",
        "| dataset | examples | local | DirectRunner | Dask, 1 worker | Dask, 2 workers "
        "| Dask 2 / 1 workers | runs (s): local / Direct / Dask 1 / Dask 2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        runs = " / ".join(", ".join(f"{x:.1f}" for x in r["runs"][label])
                          for label in ("local", "beam", "dask1", "dask2"))
        lines.append(f"| {r['name']} | {r['examples']:,} | {r['local']:.1f} s | {r['beam']:.1f} s "
                     f"| {r['dask1']:.1f} s | {r['dask2']:.1f} s | {r['dask2'] / r['dask1']:.2f}x "
                     f"| {runs} |")
    lines += [
        "",
        "What the Dask scheduler costs per task. No-op tasks, submitted at once: "
        + ", ".join(f"{ms * 1000:.2f} ms per task with {n} worker{'s' if n > 1 else ''}"
                    for n, ms in noop.items())
        + ". In the builds (the best run; a task is one Dask partition of one step, so "
        f"about 1/{DASK_PARTITIONS} of a split per step, or a piece of a shuffle):",
        "",
        "| dataset | workers | tasks | workers' seconds per task |",
        "|---|---|---|---|",
    ]
    for r in results:
        for label, found in sorted(r["tasks"].items()):
            lines.append(f"| {r['name']} | {label[4:]} | {found['tasks']:,} | "
                         f"{found['per_task'] * 1000:.1f} ms |")
    lines += [
        "",
        "Most of a build's tasks are Beam's and TFDS's, not the reading: Beam's DaskRunner "
        "makes every GroupByKey a task-based shuffle of partitions x partitions pieces. "
        "(sign_datasets.DaskRunner persists what several steps read, so a side input of "
        "TFDS's writer is computed once, not again in every task that reads it.) "
        "The scheduler's own cost (the "
        "no-op figure) is small beside that; a reading task should take seconds for a "
        "cluster to pay (`SIGN_DATASETS_BEAM_RANGE_BYTES`, a few `dask_npartitions`).",
        "",
        "DirectRunner is Beam's test runner: it runs every stage through Beam's portable "
        "harness, pickles each element between stages and materializes the shuffles TFDS's "
        "writer needs, so on one machine it is slower than the local path, which streams "
        "one split through a fork pool. Dask with 2 workers against 1 on this 2-core machine, "
        "shared with the launcher and the scheduler, shows overhead, not speed-up: the "
        "second worker adds no core. The gain comes on a cluster, where each worker brings "
        "its own machine.",
        "",
        "![build seconds, local against DirectRunner and Dask](bench_beam.png)",
    ]
    return "\n".join(lines) + "\n"


def draw_chart(scale: float, results: list[dict]) -> None:
    from sign_datasets.cli import bench
    bench.bar_chart(BENCHMARKS.parent / "bench_beam.png", f"build seconds at replica scale {scale:g}",
                    [(f"{r['name']}, {label}", r[key]) for r in results
                     for label, key in (("local", "local"), ("DirectRunner", "beam"),
                                        ("Dask 1 worker", "dask1"), ("Dask 2 workers", "dask2"))],
                    "seconds")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="replica scale")
    parser.add_argument("--workers", type=int, default=2, help="direct_num_workers")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/BENCHMARKS.md")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import logging

    from absl import logging as absl_logging

    import sign_datasets  # noqa: F401  (registers the builders)
    import tensorflow_datasets as tfds
    from sign_datasets.cli import bench
    from sign_datasets.replica import make_replica

    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    tfds.disable_progress_bar()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_beam_"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "replica"
    print(f"writing the replica under {work}", flush=True)
    make_replica(source, scale=args.scale, seed=0,
                 objects=sorted({OBJECTS[name] for name in args.datasets}))
    os.environ["SIGN_DATASETS_SOURCE"] = str(source)

    before = bench.contention()
    clusters = {n: start_cluster(n) for n in DASK_WORKERS}
    try:
        noop = {n: noop_overhead(client) for n, (_, client) in clusters.items()}
        results = [bench_dataset(name, work / name.replace("/", "-"), args.workers, args.repeats,
                                 clusters)
                   for name in args.datasets]
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    after = bench.contention()
    command = (f".venv/bin/python scripts/bench_beam.py --scale {args.scale} "
               f"--workers {args.workers} --repeats {args.repeats}")
    section = format_section(command, args.scale, args.workers, results, (before, after), noop)
    print()
    print(section)
    if not args.no_write:
        bench.write_section(SECTION, section, BENCHMARKS)
        draw_chart(args.scale, results)
        print(f"wrote the section to {BENCHMARKS} and its chart")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
