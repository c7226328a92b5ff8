"""Builds on a real Dask cluster through Beam's DaskRunner (issue 19).

The test starts a scheduler and two worker processes talking TCP on
loopback, before any source is set, as a cluster of other machines would
be. Datasets of every format, course and catalog-declared, built there by
`runner=sign_datasets.DaskRunner` hold the same examples under the same
keys, byte for byte, and the same metadata as their local builds; the
scheduler's task records show the work ran in the worker processes. A TFDS
pipeline with several sinks shows the one correction of Beam's runner.
"""

from __future__ import annotations

import collections
import os
import sys

import numpy as np
import pytest

from pathlib import Path

from test_beam import build, dirty_source, env, metadata, run, shard_records  # noqa: F401 (fixtures)
from test_beam_catalog import team  # noqa: F401 (a fixture)

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("apache_beam")
distributed = pytest.importorskip("distributed")

from sign_datasets.generate import beam as beam_lib  # noqa: E402

STOCK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNER = "sign_datasets.DaskRunner"
COURSE = ["sign_mnist_csv/dirty", "sign_mnist_json", "sign_mnist_base64",
          "sign_language_img/28x28_no_leakage"]
# A CSV, image URLs in JSON lines and a zip of class folders, declared in a
# team catalog (tests/test_beam_catalog.py).
TEAM = ["beam_team_shapes", "beam_team_faces_urls", "beam_team_pets"]
# Each plan's work in 2 tasks, so both workers read.
PARTITIONS = ",dask_npartitions=2"


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and 2 worker processes on 127.0.0.1 over TCP."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", protocol="tcp", dashboard_address=None,
                                  ) as cluster, distributed.Client(cluster) as client:
        yield client


def dask_options(client, runner: str = RUNNER, more: str = ""):
    return tfds.download.DownloadConfig(beam_options=beam_lib.pipeline_options(
        f"runner={runner},dask_client_address={client.scheduler.address}{more}"))


def build_on_dask(client, name: str, root) -> tuple:
    """The builder, and the scheduler's records of the tasks its build ran."""
    builder = tfds.builder(name, data_dir=str(root / "data"))
    with distributed.get_task_stream(client) as tasks:
        builder.download_and_prepare(download_dir=str(root / "downloads"),
                                     download_config=dask_options(client, more=PARTITIONS))
    return builder, tasks.data


def assert_ran_in_the_workers(client, records: list) -> None:
    """Every task ran in a worker process (not this one), both workers ran
    Beam's DoFns, and the workers loaded the readers' code."""
    pids = client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    dofns = collections.Counter(record["worker"] for record in records
                                if "apply_dofn_to_bundle" in str(record["key"]))
    assert set(dofns) == set(pids), dofns
    assert {record["worker"] for record in records} <= set(pids)
    loaded = client.run(lambda: sorted(name for name in sys.modules
                                       if name.startswith("sign_datasets.formats.")))
    assert all(modules for modules in loaded.values()), loaded


def assert_same_build(on_dask, local) -> None:
    assert set(on_dask.info.splits) == set(local.info.splits)
    for split in local.info.splits:
        records = shard_records(local, split)
        assert shard_records(on_dask, split) == records
        assert on_dask.info.splits[split].num_examples == len(records) > 0
    assert metadata(on_dask) == metadata(local)


# --- the runner's correction ----------------------------------------------------------

def _probe_example(number: int):
    return number, {"x": number}


class DaskProbe(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Ten lines of TFDS Beam builder: two splits, so several sinks."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({"x": np.int64}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 200), "test": self._generate_examples(200, 250)}

    def _generate_examples(self, start: int, stop: int):
        beam = tfds.core.lazy_imports.apache_beam
        return beam.Create(list(range(start, stop))) | beam.Map(_probe_example)


def build_probe(client, runner: str, root):
    builder = DaskProbe(data_dir=str(root))
    builder.download_and_prepare(download_config=dask_options(client, runner))
    return builder


def connected(client) -> set:
    """The clients of the scheduler that processes connected (not the ones
    tasks open inside workers)."""
    found = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.clients))
    return {name for name in found if name.startswith("Client-")
            and not name.startswith("Client-worker-")}


def test_every_sink_of_a_pipeline_runs(cluster, tmp_path):
    before = connected(cluster)
    builder = build_probe(cluster, RUNNER, tmp_path)
    # The build's own client is closed again (Beam's runner leaves it connected).
    assert connected(cluster) == before
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == \
        {"train": 200, "test": 50}
    assert sorted(int(x["x"]) for x in tfds.as_numpy(builder.as_dataset(split="all"))) == \
        list(range(250))


def test_stock_runner_computes_only_the_last_bag(cluster, tmp_path):
    """Beam's own DaskRunner leaves sinks unrun (what sign_datasets.DaskRunner
    corrects); when this fails, Beam computes every leaf and the correction can go."""
    with pytest.raises(FileNotFoundError, match="split_info"):
        build_probe(cluster, STOCK_RUNNER, tmp_path)


def _read_once(number: int, log: str) -> int:
    """A step that notes each call in `log` (one line each, appended from
    any worker process)."""
    with open(log, "a", encoding="ascii") as out:
        out.write(f"{number}\n")
    return number


def _with_sides(number: int, total: int, largest: int) -> str:
    return f"{number} {total} {largest}"


def side_input_pipeline(client, runner: str, root) -> tuple[list, list]:
    """100 numbers read by a logged step, whose output is read as two side
    inputs (as TFDS's writer reads its examples' size and largest key) and
    as a main input: (the logged calls, the written lines)."""
    import apache_beam as beam

    log, out = root / "calls.log", root / "out"
    options = beam_lib.pipeline_options(
        f"runner={runner},dask_client_address={client.scheduler.address},dask_npartitions=4")
    with beam.Pipeline(options=options) as pipeline:
        numbers = (pipeline | beam.Create(list(range(100)))
                   | beam.Map(_read_once, log=str(log)))
        total = beam.pvalue.AsSingleton(numbers | "Sum" >> beam.CombineGlobally(sum))
        largest = beam.pvalue.AsSingleton(numbers | "Max" >> beam.CombineGlobally(max))
        (numbers | beam.Map(_with_sides, total=total, largest=largest)
         | beam.io.WriteToText(str(out), shard_name_template=""))
    return log.read_text().split(), out.read_text().split("\n")[:-1]


def test_a_side_inputs_upstream_is_computed_once(cluster, tmp_path):
    calls, lines = side_input_pipeline(cluster, RUNNER, tmp_path)
    assert sorted(map(int, calls)) == list(range(100))
    assert sorted(lines, key=lambda line: int(line.split()[0])) == \
        [f"{n} 4950 99" for n in range(100)]


def test_stock_runner_computes_a_side_inputs_upstream_per_reader(cluster, tmp_path):
    """Beam's own DaskRunner computes a side input's whole upstream again in
    every task that reads it (what sign_datasets.DaskRunner's persisting
    avoids); when this fails, that part of the correction can go."""
    calls, _ = side_input_pipeline(cluster, STOCK_RUNNER, tmp_path)
    assert len(calls) > 100 and set(calls) == {str(n) for n in range(100)}


def test_the_runner_is_resolved_lazily_from_the_package():
    import sign_datasets
    from sign_datasets.generate.dask_runner import DaskRunner

    assert sign_datasets.DaskRunner is DaskRunner
    with pytest.raises(AttributeError):
        sign_datasets.NoSuchRunner  # noqa: B018


def test_both_command_lines_name_the_runner(cluster, env, dirty_source, tmp_path):
    """The one `--beam` line, and tfds build's --beam_pipeline_options."""
    options = f"runner={RUNNER},dask_client_address={cluster.scheduler.address}{PARTITIONS}"
    local = build("sign_mnist_base64", tmp_path / "local")
    run([sys.executable, "-m", "sign_datasets", "build", "sign_mnist_base64",
         "--data-dir", str(tmp_path / "ours"), "--beam", options],
        SIGN_DATASETS_SOURCE=str(dirty_source))
    run([str(Path(sys.executable).parent / "tfds"), "build", "--imports", "sign_datasets",
         "sign_mnist_base64", f"--data_dir={tmp_path / 'tfds'}",
         f"--download_dir={tmp_path / 'downloads'}", f"--beam_pipeline_options={options}"],
        SIGN_DATASETS_SOURCE=str(dirty_source))
    for data_dir in ("ours", "tfds"):
        assert_same_build(tfds.builder("sign_mnist_base64", data_dir=str(tmp_path / data_dir)),
                          local)


# --- every format, on the cluster ------------------------------------------------------

@pytest.mark.parametrize("name", COURSE)
def test_course_dataset_on_dask_equals_its_local_build(cluster, env, name, tmp_path):
    local = build(name, tmp_path / "local")
    on_dask, tasks = build_on_dask(cluster, name, tmp_path / "dask")
    assert_same_build(on_dask, local)
    assert_ran_in_the_workers(cluster, tasks)


@pytest.mark.parametrize("name", TEAM)
def test_team_dataset_on_dask_equals_its_local_build(cluster, team, name, tmp_path):
    local = build(name, tmp_path / "local")
    on_dask, tasks = build_on_dask(cluster, name, tmp_path / "dask")
    assert_same_build(on_dask, local)
    assert_ran_in_the_workers(cluster, tasks)
