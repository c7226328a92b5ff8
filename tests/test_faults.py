"""Builds under faults: killed, cut off from the server, out of disk, raced by a
second build; and builds that must not depend on the clock or the hash seed.

Builds that must die or run beside another run in their own processes
(tests/build_worker.py); the source is the session's replica folder.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.generate.safety import DiskFullError
from sign_datasets.io.failed_share import TooManyFailures

from conftest import quiet_env

WORKER = str(Path(__file__).resolve().parent / "build_worker.py")
CSV = "sign_mnist_csv/dirty"


def worker_command(data_dir: Path, *names: str, download_dir: Path | None = None,
                   extra: tuple[str, ...] = ()) -> list[str]:
    command = [sys.executable, WORKER, str(data_dir), *names]
    if download_dir is not None:
        command += ["--download-dir", str(download_dir)]
    return command + list(extra)


def worker_env(source: Path, **extra: str) -> dict:
    env = quiet_env()
    # Worker processes on unless asked: a killed build must take its forked workers with it.
    env.pop("SIGN_DATASETS_WORKERS", None)
    env.update(SIGN_DATASETS_SOURCE=str(source), **extra)
    return env


def version_dir(data_dir: Path, name: str) -> Path:
    return Path(tfds.builder(name, data_dir=str(data_dir)).data_dir)


def dataset_files(folder: Path) -> dict[str, bytes]:
    """Every file of a built dataset version, by name; lock files are not the dataset's."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.endswith(".lock")}


def leftovers(data_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("incomplete.*"))


def assert_nothing_loadable(name: str, data_dir: Path) -> None:
    assert not tfds.builder(name, data_dir=str(data_dir)).is_prepared()
    with pytest.raises(AssertionError, match="could not find data"):
        tfds.load(name, data_dir=str(data_dir), download=False)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode("utf-8", "replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def reference(replica_dir, tmp_path_factory):
    """Uninterrupted in-process builds of both CSV configs: the bytes to match."""
    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", str(replica_dir))
        for name in (CSV, "sign_mnist_csv/original"):
            tfds.builder(name, data_dir=str(root / "data")).download_and_prepare(
                download_dir=str(root / "downloads"))
    return root


# --- killed halfway ---------------------------------------------------------------------

def test_a_build_killed_halfway_leaves_nothing_loadable_and_a_rerun_gives_the_same_bytes(
        replica_dir, reference, tmp_path):
    data_dir, downloads = tmp_path / "data", tmp_path / "downloads"
    # Killed in the test split, 20 examples in: train is already written.
    killed = subprocess.run(worker_command(data_dir, CSV, download_dir=downloads,
                                           extra=("--kill-in-split", "test", "--kill-after", "20")),
                            env=worker_env(replica_dir), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    target = version_dir(data_dir, CSV)
    assert not target.exists()
    (partial,) = target.parent.glob(f"incomplete.*_{target.name}")
    assert any(p.name.startswith("sign_mnist_csv-train.tfrecord") for p in partial.iterdir())
    assert_nothing_loadable(CSV, data_dir)
    # Its forked workers died with it, instead of waiting forever on a dead queue.
    deadline = time.monotonic() + 10
    while processes_mentioning(str(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(data_dir)) == []

    rerun = subprocess.run(worker_command(data_dir, CSV, download_dir=downloads),
                           env=worker_env(replica_dir), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert leftovers(data_dir) == []  # the killed build's folder was cleared
    expected = dataset_files(version_dir(reference / "data", CSV))
    assert dataset_files(target) == expected and len(expected) >= 5
    loaded = tfds.load(CSV, split="train", data_dir=str(data_dir), download=False)
    assert sum(1 for _ in loaded) == tfds.builder(CSV, data_dir=str(data_dir)).info.splits["train"].num_examples


# --- the server dies during the image downloads --------------------------------------------

def test_the_server_dying_mid_download_gives_retries_then_a_clear_error(
        replica_dir, replica_manifest, tmp_path, monkeypatch, caplog):
    from sign_datasets.replica import ReplicaServer, json_entries

    images = [f"img_mnist/{n}_{letter}.jpg" for n, letter in json_entries(replica_manifest["scale"])]
    server = ReplicaServer(replica_dir, port=0).start()
    for image in images:
        server.set_fault(image, delay=0.3)  # in flight when the server dies
    for name, value in {"SIGN_DATASETS_SOURCE": server.base_url, "SIGN_DATASETS_FETCH_TIMEOUT": "0.5",
                        "SIGN_DATASETS_FETCH_RETRIES": "2", "SIGN_DATASETS_FETCH_BACKOFF": "0.01",
                        "SIGN_DATASETS_FETCH_WORKERS": "4"}.items():
        monkeypatch.setenv(name, value)

    def kill_on_first_image():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(path.startswith("img_mnist/") for _, path, _ in server.requests):
                server.stop()
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_on_first_image, daemon=True)
    killer.start()
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    data_dir = tmp_path / "data"
    try:
        with pytest.raises(TooManyFailures) as stopped:
            tfds.builder("sign_mnist_json", data_dir=str(data_dir)).download_and_prepare(
                download_dir=str(tmp_path / "downloads"))
    finally:
        killer.join(timeout=60)
        server.stop()

    message = str(stopped.value)
    source = "databasesLoadData.zip/sign_mnist_json/data.json"
    count = len(images)
    assert message.startswith(f"{source}: {count} of {count} records failed (100.0%)")
    assert f"connection_failed: {count} (first: {source}:1 " in message
    assert "nothing was written" in message and "a rerun retries only the failures" in message
    retries = [line for line in caplog.messages if line.startswith("Retrying")]
    assert len(retries) >= count and any("img_mnist/" in line for line in retries), caplog.messages
    assert_nothing_loadable("sign_mnist_json", data_dir)
    assert leftovers(data_dir) == []


# --- a full disk ---------------------------------------------------------------------------

def _mount_small_tmpfs(folder: Path, size: str) -> str | None:
    """Mounts a tmpfs of `size` on `folder`; returns why it could not, or None."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "mounting a tmpfs needs root and mount(8)"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"mount refused a tmpfs: {done.stderr.strip()}"


def test_a_full_disk_gives_a_clear_error_and_no_dataset(replica_dir, reference, tmp_path, monkeypatch):
    name = "sign_mnist_csv/original"  # about 800 KB of shards, on a 512 KB disk
    downloads = reference / "downloads"  # already holds the archive
    small_disk = tmp_path / "small-disk"
    refused = _mount_small_tmpfs(small_disk, "512k")
    if refused:
        pytest.skip(f"no full disk to build on ({refused}); the file size limit test "
                    "still checks a failed write")
    try:
        monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(replica_dir))
        with pytest.raises(DiskFullError) as full:
            tfds.builder(name, data_dir=str(small_disk)).download_and_prepare(
                download_dir=str(downloads))
        message = str(full.value)
        assert message.startswith(f"{name}/2.0.0: the disk ran out of space during the build "
                                  "(No space left on device")
        assert "sign_mnist_csv-train.tfrecord" in message and "Nothing was published" in message
        assert full.value.errno == 28
        assert leftovers(small_disk) == []
        assert not version_dir(small_disk, name).exists()
        assert_nothing_loadable(name, small_disk)
    finally:
        subprocess.run(["umount", str(small_disk)], check=False)


def test_a_write_past_the_file_size_limit_fails_the_build_and_publishes_nothing(
        replica_dir, reference, tmp_path):
    # Every write past 256 KB fails (EFBIG), wherever the data dir is.
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

    name = "sign_mnist_csv/original"
    data_dir = tmp_path / "data"
    failed = subprocess.run(worker_command(data_dir, name, download_dir=reference / "downloads"),
                            env=worker_env(replica_dir), capture_output=True, text=True,
                            timeout=300, preexec_fn=limit_file_size)
    assert failed.returncode == 1 and "File too large" in failed.stderr
    assert leftovers(data_dir) == [] and not version_dir(data_dir, name).exists()
    assert_nothing_loadable(name, data_dir)


# --- two builds of one dataset at once -------------------------------------------------------

def test_two_builds_at_once_never_mix_the_second_waits(replica_dir, reference, tmp_path):
    data_dir, downloads = tmp_path / "data", tmp_path / "downloads"
    env = worker_env(replica_dir)
    first_log = tmp_path / "first.stderr"
    with open(first_log, "w") as log:
        first = subprocess.Popen(worker_command(data_dir, CSV, download_dir=downloads,
                                                extra=("--pause-in-split", "train",
                                                       "--pause-seconds", "3")),
                                 env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        first_out = ""
        for line in first.stdout:  # TFDS prints its own lines first
            first_out += line
            if line.startswith("GENERATING"):
                break
        assert "GENERATING" in first_out, first_log.read_text()[-2000:]
        # Mid-build, nothing is visible to readers.
        assert_nothing_loadable(CSV, data_dir)
        second = subprocess.run(worker_command(data_dir, CSV, download_dir=downloads), env=env,
                                capture_output=True, text=True, timeout=300)
        first_out += first.communicate(timeout=300)[0]
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, first_log.read_text()[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    assert (f"{CSV}/2.0.0 is being built into the same folder by process {first.pid} on "
            in second.stderr) and "waiting for that build to finish" in second.stderr
    # The second build reused the first one's dataset and reads it whole.
    built = [line for line in (first_out + second.stdout).splitlines() if line.startswith("BUILT")]
    assert len(built) == 2 and built[0] == built[1]
    assert leftovers(data_dir) == []
    assert dataset_files(version_dir(data_dir, CSV)) == dataset_files(version_dir(reference / "data", CSV))


def test_loading_a_built_dataset_takes_no_lock(reference):
    # tfds.load calls download_and_prepare even for a built dataset; shared
    # read-only data dirs must keep loading, so nothing may be written then.
    data_dir = reference / "data"
    lock = Path(f"{version_dir(data_dir, CSV)}.lock")
    lock.unlink()
    loaded = tfds.load(CSV, split="test", data_dir=str(data_dir))
    assert sum(1 for _ in loaded) > 0 and not lock.exists()


# --- determinism ---------------------------------------------------------------------------

FAKE_DATE = "2031-06-15 12:00:00"


def cannot_run_here(reason: str) -> None:
    """Skips a check this machine lacks the tools for; fails in CI, which installs
    them (.ci/run)."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason}; CI must run this check")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def two_builds(replica_dir, tmp_path_factory):
    """Every dataset of ours built in two processes: one with PYTHONHASHSEED=1 and
    one worker; one with PYTHONHASHSEED=2024, two workers and, when faketime is
    installed, every clock of the process in 2031. Returns (root, names, clock moved)."""
    from sign_datasets.builders.registered import BUILDERS
    from sign_datasets.catalog.registry import all_dataset_names

    root = tmp_path_factory.mktemp("two-builds")
    # Team catalogs registered by other tests in this process are not ours to build.
    names = [name for name in all_dataset_names() if name.split("/")[0] in BUILDERS]
    assert {name.split("/")[0] for name in names} == set(BUILDERS)
    clock_moved = shutil.which("faketime") is not None
    runs = {}
    for variant, hash_seed, workers in (("today", "1", "1"), ("later", "2024", "2")):
        command = worker_command(root / variant, *names, download_dir=root / f"{variant}-dl")
        env = worker_env(replica_dir, PYTHONHASHSEED=hash_seed, SIGN_DATASETS_WORKERS=workers)
        if variant == "later" and clock_moved:
            # libfaketime moves every clock of the process, C library included.
            command = ["faketime", "-f", f"@{FAKE_DATE}"] + command
        runs[variant] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
    for variant, process in runs.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"{variant}: {err[-3000:]}"
        assert out.count("BUILT") == len(names)
    return root, names, clock_moved


def assert_builds_identical(root: Path, names: list[str]) -> None:
    for name in names:
        today = version_dir(root / "today", name)
        later = version_dir(root / "later", name)
        files = dataset_files(today)
        assert any(".tfrecord" in file for file in files), name
        # TFDS 4.9 stores no build date in dataset_info.json; were one added,
        # this would fail and show it.
        assert files == dataset_files(later), name


def test_every_dataset_is_byte_identical_across_hash_seed_and_workers(two_builds):
    root, names, _ = two_builds
    assert_builds_identical(root, names)


def test_every_dataset_is_byte_identical_with_every_clock_moved(two_builds):
    root, names, clock_moved = two_builds
    if not clock_moved:
        cannot_run_here("faketime (libfaketime) is not installed, so no build ran with its "
                        "clocks moved; install Debian's faketime")
    assert_builds_identical(root, names)
