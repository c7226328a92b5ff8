"""What the quality checks (near copies, image flags; core/near.py,
core/near_index.py, core/quality.py) cost.

1. A build of --dataset (default sign_language_img/28x28) on a replica at
   --source, in one run with and without the checks, alternating, each in a
   fresh process and data dir: CPU (the process and its workers) and wall,
   best of --repeats each. Without them means the facts are not computed
   and the runner gets no NearShare: the build as before issue 21.
2. The pair search over 1,000,000 synthetic hashes (each with 4 probes; a
   tenth planted as near copies of another), in a fresh process: CPU, wall
   and peak resident memory.

The machine is shared: run it when `uptime` shows a load below 2, and read
CPU rather than wall.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUILD = r"""
import json, os, resource, shutil, sys, tempfile, time
dataset, checks = sys.argv[1], sys.argv[2] == "on"
import tensorflow_datasets as tfds
import sign_datasets
if not checks:
    from sign_datasets.core import near
    from sign_datasets.generate import local
    near.facts_of_batch = lambda images: [None] * len(images)
    examples = local.examples
    local.examples = lambda plan, outcome, workers=None, near=None: examples(plan, outcome, workers)
data = tempfile.mkdtemp(prefix="bench_quality_")
wall, cpu = time.perf_counter(), time.process_time()
builder = tfds.builder(dataset, data_dir=data)
builder.download_and_prepare(download_dir=os.path.join(data, "downloads"))
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": time.perf_counter() - wall,
                  "cpu": time.process_time() - cpu + children.ru_utime + children.ru_stime,
                  "quality": bool(builder.info.metadata.get("quality"))}))
shutil.rmtree(data)
"""

SEARCH = r"""
import json, resource, sys, time
import numpy as np
from sign_datasets.core import near_index
count, distance = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
hashes = rng.integers(0, 2**63, (count, 5), dtype=np.uint64)
hashes |= rng.integers(0, 2, (count, 5), dtype=np.uint64) << np.uint64(63)
planted = count // 10
source, target = rng.integers(0, count, planted), rng.integers(0, count, planted)
flips = np.zeros(planted, dtype=np.uint64)
for _ in range(3):
    flips ^= np.uint64(1) << rng.integers(0, 64, planted).astype(np.uint64)
hashes[target, 0] = hashes[source, 0] ^ flips
wall, cpu = time.perf_counter(), time.process_time()
i, j, bits = near_index.pairs_within(hashes, distance)
print(json.dumps({"pairs": int(len(i)), "wall": time.perf_counter() - wall,
                  "cpu": time.process_time() - cpu,
                  # VmHWM: ru_maxrss would keep a larger parent's peak across exec.
                  "peak_mb": int(next(line.split()[1] for line in open("/proc/self/status")
                                      if line.startswith("VmHWM:"))) / 1024}))
"""


def run(code: str, *args: str, env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_build(dataset: str, source: str, repeats: int) -> dict:
    env = dict(os.environ, SIGN_DATASETS_SOURCE=source,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    runs: dict[str, list] = {"on": [], "off": []}
    for _ in range(repeats):
        for checks in ("off", "on"):
            result = run(BUILD, dataset, checks, env=env)
            assert result["quality"] == (checks == "on"), result
            runs[checks].append(result)
            print(f"  checks {checks}: cpu {result['cpu']:.2f} s, wall {result['wall']:.2f} s",
                  file=sys.stderr)
    best = {checks: {key: min(r[key] for r in found) for key in ("cpu", "wall")}
            for checks, found in runs.items()}
    best["added"] = {key: best["on"][key] / best["off"][key] - 1 for key in ("cpu", "wall")}
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="replica folder or URL (scale 1 for the issue's figure)")
    parser.add_argument("--dataset", default="sign_language_img/28x28")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--distance", type=int, default=4)
    args = parser.parse_args(argv)
    print(f"load average: {os.getloadavg()}", file=sys.stderr)
    report = {}
    if args.source:
        report["build"] = bench_build(args.dataset, args.source, args.repeats)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    report["search"] = run(SEARCH, str(args.hashes), str(args.distance), env=env)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
