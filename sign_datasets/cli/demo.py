"""The project's main job, end to end on the offline replica.

replica -> loopback HTTP server -> every builder through the real download
path -> summary table -> a small CNN on sign_mnist_csv -> a grid of examples
-> the catalog page of everything built.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from sign_datasets.catalog import page, registry
from sign_datasets.cli import builds
from sign_datasets.io import sources
from sign_datasets.models import quick
from sign_datasets.read import visualize
from sign_datasets.replica import ReplicaServer, make_replica


def run(out: Path, scale: float = 0.1, epochs: int = 2, seed: int = 0) -> int:
    started = time.perf_counter()
    out = out.resolve()
    replica_dir = out / "replica"
    data_dir = out / "tensorflow_datasets"
    print(f"[1/6] writing the replica (scale {scale}) to {replica_dir}", flush=True)
    make_replica(replica_dir, scale=scale, seed=seed, progress=True)

    with ReplicaServer(replica_dir, port=0) as server:
        print(f"[2/6] serving it at {server.base_url}", flush=True)
        previous = os.environ.get(sources.SOURCE_ENV)
        os.environ[sources.SOURCE_ENV] = server.base_url
        try:
            names = registry.all_dataset_names()
            print(f"[3/6] building {', '.join(names)} into {data_dir}", flush=True)
            results = builds.build_many(names, data_dir=str(data_dir))
        finally:
            if previous is None:
                os.environ.pop(sources.SOURCE_ENV, None)
            else:
                os.environ[sources.SOURCE_ENV] = previous
        print(f"      ({server.request_count} requests served)")
    print()
    print(builds.format_summary(results))
    print()
    failed = [r for r in results if r.error]
    if failed:
        for result in failed:
            print(f"error: {result.name}: {result.error}", file=sys.stderr)
        return 1

    print(f"[4/6] training a small CNN on sign_mnist_csv for {epochs} epoch(s)", flush=True)
    accuracy, seconds = quick.train_and_evaluate("sign_mnist_csv", data_dir=str(data_dir),
                                                 epochs=epochs, seed=seed)
    print(f"      test accuracy {accuracy:.3f} (chance is {1 / 24:.3f}), {seconds:.0f} s")

    grid = out / "sign_mnist_csv_examples.png"
    print(f"[5/6] writing a grid of examples to {grid}", flush=True)
    visualize.example_grid("sign_mnist_csv", data_dir=str(data_dir), out=grid)

    site = out / "catalog"
    print(f"[6/6] writing the catalog page of what was built to {site}", flush=True)
    index = page.write_site(site, data_dir=str(data_dir), names=names)

    print()
    print(f"done in {time.perf_counter() - started:.0f} s; data dir: {data_dir}")
    print(f"browse it: {index.resolve().as_uri()}")
    print(f"load it from any project: tfds.load('sign_mnist_csv', data_dir='{data_dir}')")
    return 0
