"""Reproduces the figures of docs/MODELS.md.

Writes a scale-1 replica of databasesLoadData.zip, builds sign_mnist_csv from
it, trains each course model with the `train` command (one process per run,
as a user would) and prints a Markdown table of the results.

    .venv/bin/python scripts/train_course_models.py --work /tmp/models_scale1
    .venv/bin/python scripts/train_course_models.py --work /tmp/models_scale1 --runs cnn:5 dense:5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_RUNS = ("cnn:5", "dense:5", "regularized:5", "dense:20")


def prepare_data(work: Path, scale: float) -> Path:
    replica, data_dir = work / "replica", work / "tensorflow_datasets"
    if not (replica / "databasesLoadData.zip").is_file():
        from sign_datasets.replica import make_replica
        started = time.perf_counter()
        make_replica(replica, scale=scale, objects={"databasesLoadData.zip"})
        print(f"replica (scale {scale}) written in {time.perf_counter() - started:.0f} s", flush=True)
    env = {**os.environ, "SIGN_DATASETS_SOURCE": str(replica), "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-m", "sign_datasets", "build", "sign_mnist_csv/original",
                    "--data-dir", str(data_dir)], check=True, env=env)
    return data_dir


def train(work: Path, data_dir: Path, model: str, epochs: int, batch_size: int) -> dict:
    out = work / "runs" / f"{model}-{epochs}"
    command = [sys.executable, "-m", "sign_datasets.cli.training_commands", "train", "sign_mnist_csv",
               "--model", model, "--epochs", str(epochs), "--batch-size", str(batch_size),
               "--out", str(out), "--data-dir", str(data_dir)]
    print("$ " + " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    metrics["out"] = str(out)
    return metrics


def table(results: list[dict]) -> str:
    lines = ["| model | epochs run | best epoch | val accuracy | test accuracy | fit s | s/epoch | "
             "wall s | parameters |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in results:
        per_epoch = sum(m["epoch_seconds"]) / max(1, len(m["epoch_seconds"]))
        lines.append(
            f"| {m['model']} | {m['epochs_run']} of {m['epochs_requested']} | {m['best_epoch']} | "
            f"{m['best_val_accuracy']:.4f} | {m['evaluation']['accuracy']:.4f} | "
            f"{m['fit_seconds']:.0f} | {per_epoch:.0f} | {m['wall_seconds']:.0f} | "
            f"{m['parameters']['total']:,} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/models_scale1", help="replica, data dir and runs")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS), metavar="MODEL:EPOCHS")
    args = parser.parse_args()
    work = Path(args.work)
    data_dir = prepare_data(work, args.scale)
    results = []
    for spec in args.runs:
        model, epochs = spec.split(":")
        results.append(train(work, data_dir, model, int(epochs), args.batch_size))
    print()
    print(table(results))
    (work / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
