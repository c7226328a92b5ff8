"""Sorted feature maps for our builders only (issue 18).

Our builders store each tf.train.Example with its feature map in sorted key
order, in any process; a TFDS dataset that is not ours is written exactly as
TFDS writes it, even in a process that imported sign_datasets and built ours.

Protobuf's map order (upb) follows where its library is loaded in memory, not
PYTHONHASHSEED: plain processes differ under address space layout
randomisation, and agree under `setarch -R`, which the plain-builder test
needs to compare bytes across processes. Each case runs in fresh processes
(tests/determinism_worker.py). Byte-identical builds of every dataset of ours
across processes, clocks and hash seeds: tests/test_faults.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import quiet_env
from determinism_worker import MANY_KEYS, tfrecord_payloads

WORKER = str(Path(__file__).resolve().parent / "determinism_worker.py")
OURS = "sign_mnist_csv/dirty"


def run_all(commands: list[tuple[list[str], dict]]) -> list[str]:
    """Runs the commands two at a time (two cores); returns their stdouts."""
    outputs = []
    for start in range(0, len(commands), 2):
        running = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
                   for command, env in commands[start:start + 2]]
        for process in running:
            out, err = process.communicate(timeout=600)
            assert process.returncode == 0, err[-3000:]
            outputs.append(out)
    return outputs


def tfrecords(folder: Path) -> list[bytes]:
    files = sorted(folder.rglob("*.tfrecord-*"))
    assert files, f"no shards under {folder}"
    return [record for path in files for record in tfrecord_payloads(path)]


def key_order(serialized: bytes, keys) -> list[str]:
    """The feature names in the order the bytes hold their map entries."""
    # A map entry starts with its key: field 1, length, the name.
    found = {key: serialized.find(b"\x0a" + bytes([len(key)]) + key.encode()) for key in keys}
    assert all(at >= 0 for at in found.values()), found
    return sorted(keys, key=found.get)


def parsed(serialized: bytes):
    from tensorflow_datasets.proto import tf_example_pb2

    return tf_example_pb2.Example.FromString(serialized)


def layout_can_be_fixed() -> bool:
    try:
        return subprocess.run(["setarch", "-R", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def test_importing_sign_datasets_leaves_other_datasets_bytes_alone(replica_dir, tmp_path):
    if not layout_can_be_fixed():
        pytest.skip("`setarch -R` (util-linux) cannot turn off address randomisation here, "
                    "so protobuf's map order differs between any two processes")
    seeds = ("1", "2024")
    commands = []
    for seed in seeds:
        env = quiet_env(PYTHONHASHSEED=seed, SIGN_DATASETS_SOURCE=str(replica_dir))
        fixed = ["setarch", "-R", sys.executable, WORKER, "plain"]
        commands.append((fixed + [str(tmp_path / f"plain-{seed}")], env))
        commands.append((fixed + [str(tmp_path / f"imported-{seed}"), "--ours", OURS,
                                  "--ours-dir", str(tmp_path / f"ours-{seed}")], env))
    run_all(commands)

    plain = {seed: tfrecords(tmp_path / f"plain-{seed}" / "plain_many") for seed in seeds}
    for seed in seeds:
        assert tfrecords(tmp_path / f"ours-{seed}" / OURS)  # ours was built in that process
        imported = tfrecords(tmp_path / f"imported-{seed}" / "plain_many")
        assert len(imported) == len(plain[seed]) == 30
        assert imported == plain[seed], f"PYTHONHASHSEED={seed}"
    # TFDS writes these maps unsorted, so the comparison above would see our
    # sorting had it leaked into this dataset.
    first = plain[seeds[0]][0]
    assert key_order(first, MANY_KEYS) != sorted(MANY_KEYS)
    # Plain protobuf: the same layout gives the same order, whatever the hash seed.
    assert plain[seeds[0]] == plain[seeds[1]]


def test_our_writer_sorts_feature_maps_in_every_process(tmp_path):
    seeds = ("0", "1", "42", "2024")
    outputs = run_all([([sys.executable, WORKER, "serialize", str(tmp_path / seed)],
                        quiet_env(PYTHONHASHSEED=seed)) for seed in seeds])
    runs = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    for name, keys in (("sign", ("image", "label")), ("many", MANY_KEYS)):
        ours = {bytes.fromhex(run[name]["ours"]) for run in runs}
        assert len(ours) == 1, f"{name}: our bytes differ between processes"
        [written] = ours
        assert key_order(written, keys) == sorted(keys), name
        for run in runs:  # the same example, only its map reordered
            assert parsed(written) == parsed(bytes.fromhex(run[name]["plain"]))
    # What TFDS alone writes for twelve keys changes from process to process
    # and is never sorted: a writer that stopped sorting fails the checks above.
    plain = [bytes.fromhex(run["many"]["plain"]) for run in runs]
    assert len(set(plain)) > 1, ("protobuf wrote the same map order in every process: is "
                                 "address randomisation off (/proc/sys/kernel/randomize_va_space)?")
    assert all(key_order(data, MANY_KEYS) != sorted(MANY_KEYS) for data in plain)
