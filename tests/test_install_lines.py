"""Every `pip install` line of README.md, run as a user runs it (issue 20).

One wheel is built from the checkout as the README says (`pip wheel
--no-deps`). Each install line of this package gets a fresh venv holding that
wheel with the line's extras, and the README commands the line is for run
there, against the offline replica as a folder source. A README line naming
extras this file has no commands for fails, quoting the line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PIP_INSTALL = re.compile(r"pip install ('[^']*'|[^\s`;)]+)")
OURS = re.compile(r"sign-datasets(?:\[([a-z,]+)\])?")
# Other packages the README tells a user to install, and where each is covered.
OTHER_PACKAGES = {
    "grain": "tests/notf/ runs the Grain recipe in .venv-notf",
    "dask-jobqueue": "SLURM: documented, no SLURM cluster reaches this project",
    "dask-kubernetes": "Kubernetes: documented, no cluster reaches this project",
}
# README commands run below, as the README spells them (a rename there must come here).
README_COMMANDS = [
    "sign-datasets build sign_mnist_csv --file-format array_record",
    "sign-datasets report sign_mnist_csv/dirty",
    "KERAS_BACKEND=jax sign-datasets train sign_mnist_csv --model cnn --data-dir",
    "tfds build --imports sign_datasets sign_mnist_csv/dirty",
    '--beam_pipeline_options="runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_processing"',
    "dask scheduler --port 8786",
    "dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1",
    'sign-datasets build sign_mnist_csv/dirty --beam "runner=sign_datasets.DaskRunner,dask_client_address=tcp://HOST:8786"',
    "error: this needs tensorflow, which is not installed: pip install 'sign-datasets[tensorflow]'",
]
# Not in the wheel: setuptools' build/ keeps files of earlier builds, which
# would go into it; the rest is large and never packaged.
NOT_SHIPPED = (".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
               ".pytest_cache", ".hypothesis", "test-artifacts", "demo-output", "tmp")
TIMEOUT = 900


def install_lines() -> list[tuple[int, str]]:
    """(line number, what `pip install` installs, unquoted) for each README line."""
    return [(number, match.group(1).strip("'"))
            for number, line in enumerate(README.read_text().splitlines(), 1)
            for match in PIP_INSTALL.finditer(line)]


def our_specs() -> dict[str, int]:
    """Each distinct install of this package, with the first README line giving it."""
    specs: dict[str, int] = {}
    for number, spec in install_lines():
        if OURS.fullmatch(spec):
            specs.setdefault(spec, number)
    return specs


def extras(spec: str) -> frozenset:
    return frozenset(filter(None, (OURS.fullmatch(spec).group(1) or "").split(",")))


def run(argv: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=TIMEOUT, **kwargs)
    assert done.returncode == 0, (f"{' '.join(map(str, argv))} exited {done.returncode}:\n"
                                  f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done


class User:
    """A shell in a fresh venv: its bin/ first on PATH, the replica as source,
    and a working dir outside the checkout (whose sign_datasets/ would
    otherwise be what `python -c` imports)."""

    def __init__(self, venv: Path, home: Path, source: Path):
        self.venv, self.home = venv, home
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("PYTHONPATH", "VIRTUAL_ENV", "SIGN_DATASETS_SOURCE")}
        self.env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
                        VIRTUAL_ENV=str(venv), SIGN_DATASETS_SOURCE=str(source),
                        TF_CPP_MIN_LOG_LEVEL="2")

    def command(self, name: str) -> Path:
        path = self.venv / "bin" / name
        assert path.exists(), f"the install put no `{name}` command in {path.parent}"
        return path

    def run(self, name: str, *args, ok: bool = True, **env: str) -> subprocess.CompletedProcess:
        argv, env = [self.command(name), *args], {**self.env, **env}
        if ok:
            return run(argv, env=env, cwd=self.home)
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              env=env, cwd=self.home, timeout=TIMEOUT)

    def start(self, name: str, *args) -> subprocess.Popen:
        return subprocess.Popen([str(self.command(name)), *map(str, args)], env=self.env,
                                cwd=self.home, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The checkout's wheel, built from a copy of the working tree."""
    checkout = tmp_path_factory.mktemp("checkout") / "sign-datasets"
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    dist = checkout.parent / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, checkout])
    (built,) = dist.glob("sign_datasets-*.whl")
    return built


def expected_cleaning(manifest: dict, name: str) -> dict:
    """records, kept and drops per split of NAME, from the replica's manifest
    (sign_mnist_csv/dirty: all-zero rows repeat, `fwefew` cells)."""
    zipped = manifest["databasesLoadData.zip"]
    if name == "sign_mnist_base64":
        entries = zipped["sign_mnist_base64"]["entries"]
        return {"train": (entries, entries, {})}
    test = zipped["sign_mnist_test.csv"]["rows"]
    if name == "sign_mnist_csv/original":
        train = zipped["sign_mnist_train.csv"]["rows"]
        return {"train": (train, train, {}), "test": (test, test, {})}
    clean = zipped["sign_mnist_train_clean.csv"]
    drops = {"duplicate_row": len(clean["zero_rows"]),
             "non_numeric_cell": len(clean["fwefew_rows"])}
    return {"train": (clean["rows"], clean["rows"] - sum(drops.values()), drops),
            "test": (test, test, {})}


def assert_built(data_dir: Path, name: str, manifest: dict, file_format: str) -> None:
    """The build of NAME is there, in FILE_FORMAT, with the replica's counts."""
    (version,) = (data_dir / name).glob("*.*.*/")
    cleaning = json.loads((version / "metadata.json").read_text())["cleaning"]
    got = {split: (c["records"], c["kept"], c["drops"]) for split, c in cleaning.items()}
    assert got == expected_cleaning(manifest, name)
    info = json.loads((version / "dataset_info.json").read_text())
    assert {s["name"]: sum(map(int, s["shardLengths"])) for s in info["splits"]} == {
        split: kept for split, (_, kept, _) in got.items()}
    assert list(version.glob(f"*-train.{file_format}-*")), sorted(p.name for p in version.iterdir())


def no_extra(user: User, data: Path, manifest: dict) -> None:
    """`pip install sign-datasets`: no TensorFlow; imports, lists, builds
    ArrayRecord and reads it with batches(); a TFRecord build names the extra."""
    imported = user.run("python", "-c", "import importlib.util, sign_datasets; "
                        "print(sign_datasets.__file__); print(importlib.util.find_spec('tensorflow'))")
    module, tensorflow = imported.stdout.split()
    assert Path(module).is_relative_to(user.venv) and tensorflow == "None"
    assert "usage: sign-datasets" in user.run("sign-datasets", "--help").stdout
    assert "sign_mnist_csv/dirty" in user.run("sign-datasets", "list").stdout
    refused = user.run("sign-datasets", "build", "sign_mnist_csv/dirty", "--data-dir", data, ok=False)
    assert refused.returncode != 0
    # TFDS's progress bars may close after it, so not necessarily the last line.
    assert ("error: sign_mnist_csv/dirty: this needs tensorflow, which is not installed: "
            "pip install 'sign-datasets[tensorflow]'") in refused.stderr.splitlines()
    user.run("sign-datasets", "build", "sign_mnist_csv", "--file-format", "array_record",
             "--data-dir", data)
    assert_built(data, "sign_mnist_csv/original", manifest, "array_record")
    read = user.run("python", "-c", "import sys, sign_datasets; "
                    f"b = sign_datasets.batches('sign_mnist_csv', 'train', data_dir={str(data)!r}); "
                    "print(sum(len(x['label']) for x in b), 'tensorflow' in sys.modules)")
    assert read.stdout.split() == [str(expected_cleaning(manifest, "sign_mnist_csv/original")["train"][1]), "False"]


def tensorflow_extra(user: User, data: Path, manifest: dict) -> None:
    """`[tensorflow]`: `sign-datasets build` writes TFRecord files; `report` reads them."""
    user.run("sign-datasets", "build", "sign_mnist_csv/dirty", "--data-dir", data)
    assert_built(data, "sign_mnist_csv/dirty", manifest, "tfrecord")
    report = user.run("sign-datasets", "report", "sign_mnist_csv/dirty", "--data-dir", data).stdout
    drops = expected_cleaning(manifest, "sign_mnist_csv/dirty")["train"][2]
    assert ", ".join(f"{reason}={count}" for reason, count in sorted(drops.items())) in report


def jax_extra(user: User, data: Path, manifest: dict) -> None:
    """`[jax]`: an ArrayRecord build, then the CNN trains on Keras 3 over JAX
    and saves, with no TensorFlow (one epoch: the notf tests check accuracy)."""
    user.run("sign-datasets", "build", "sign_mnist_csv", "--file-format", "array_record",
             "--data-dir", data)
    out = user.home / "run"
    user.run("sign-datasets", "train", "sign_mnist_csv", "--model", "cnn", "--data-dir", data,
             "--epochs", "1", "--out", out, KERAS_BACKEND="jax")
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["versions"]["keras_backend"], metrics["versions"]["tensorflow"]) == ("jax", None)
    assert metrics["epochs_run"] == 1 and (out / "model.keras").is_file()


def beam_extra(user: User, data: Path, manifest: dict) -> None:
    """`[beam,tensorflow]`: TFDS's `tfds build`, on Beam's DirectRunner with
    worker processes (the README's line; one build proves both the command's
    start-up imports and Beam from the install)."""
    user.run("tfds", "build", "--imports", "sign_datasets", "sign_mnist_csv/dirty",
             "--data_dir", data, "--beam_pipeline_options="
             "runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_processing")
    assert_built(data, "sign_mnist_csv/dirty", manifest, "tfrecord")


def dask_extra(user: User, data: Path, manifest: dict) -> None:
    """`[dask,tensorflow]`: a scheduler and a worker from Dask's commands,
    then a build through `runner=sign_datasets.DaskRunner`."""
    user.run("python", "-c", "import sign_datasets; sign_datasets.DaskRunner")
    address_file = user.home / "scheduler.json"
    started = [user.start("dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                          "--no-dashboard", "--scheduler-file", address_file)]
    try:
        deadline = time.monotonic() + 120
        while not address_file.exists() or not address_file.read_text().strip():
            assert started[0].poll() is None and time.monotonic() < deadline, "no Dask scheduler"
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        started.append(user.start("dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                                  "--no-dashboard"))
        # The smallest dataset: what is tested is the install (test_dask.py
        # builds every format on a cluster); sign_mnist_csv/dirty took 50 s.
        user.run("sign-datasets", "build", "sign_mnist_base64", "--data-dir", data,
                 "--beam", f"runner=sign_datasets.DaskRunner,dask_client_address={address}")
        assert_built(data, "sign_mnist_base64", manifest, "tfrecord")
    finally:
        for process in reversed(started):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# What each install line is for: the README commands run after it.
RUNS = {
    frozenset(): no_extra,
    frozenset({"tensorflow"}): tensorflow_extra,
    frozenset({"jax"}): jax_extra,
    frozenset({"beam", "tensorflow"}): beam_extra,
    frozenset({"dask", "tensorflow"}): dask_extra,
}


def test_every_install_line_is_known():
    """A new README install line needs commands here, or a reason (other packages)."""
    unknown = [f"README.md:{number}: pip install {spec}" for number, spec in install_lines()
               if not (OURS.fullmatch(spec) and extras(spec) in RUNS) and spec not in OTHER_PACKAGES]
    assert not unknown, ("add the README commands each of these lines is for to RUNS in "
                         "tests/test_install_lines.py (or the package to OTHER_PACKAGES): "
                         + "; ".join(unknown))
    text = " ".join(README.read_text().replace("\\\n", " ").split())
    assert [c for c in README_COMMANDS if c not in text] == []


@pytest.mark.parametrize("spec", sorted(our_specs()))
def test_install_line(spec, wheel, replica_dir, replica_manifest, tmp_path):
    line = our_specs()[spec]
    run_commands = RUNS.get(extras(spec))
    if run_commands is None:
        pytest.fail(f"README.md:{line}: `pip install '{spec}'` has no commands in RUNS of "
                    "tests/test_install_lines.py: add the README commands that line is for")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    wanted = f"{wheel}[{','.join(sorted(extras(spec)))}]" if extras(spec) else wheel
    # The checkout's pip, run for the new venv: the venv needs none of its own.
    # No byte-compiling: Python does it on import, and it was half of the
    # install's time (TensorFlow's thousands of modules).
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
         "--no-compile", wanted])
    home = tmp_path / "home"
    home.mkdir()
    run_commands(User(venv, home, replica_dir), tmp_path / "data", replica_manifest)
