"""The fetcher against the course's loop, side by side in one run.

The replica (data.json and img_mnist/ only) is served with a fixed latency
per request by a separate process, so the server's threads do not compete
with the measured code for this interpreter's lock. Both sides fetch the same
URLs of data.json and open every image with PIL:

- course: `requests.get(url)` one URL after the other, then `Image.open`;
- fetcher: `Fetcher.fetch_all` on a cold cache, then `Image.open`.

Run:
    .venv/bin/python scripts/bench_fetch.py --scale 0.7 --latency 0.02 \\
        --workers 16 32 64 --repeat 3 --write-doc
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from sign_datasets.io import sources
from sign_datasets.io.fetch_settings import FetchSettings
from sign_datasets.io.fetcher import Fetcher
from sign_datasets.formats import json_urls
from sign_datasets.replica import make_replica

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Fetcher (issue 3)"
MEMBER = "sign_mnist_json/data.json"


def course_loop(urls: list[str]) -> list[np.ndarray]:
    """What the course's notebook does: one blocking request per URL."""
    out = []
    for url in urls:
        response = requests.get(url)
        response.raise_for_status()
        out.append(np.asarray(Image.open(io.BytesIO(response.content))))
    return out


def bare_urllib3(urls: list[str], workers: int = 32) -> list[np.ndarray]:
    """Not a product: the cheapest Python client there is (a urllib3 pool in
    threads, no URL policy, no retries, no cache), to show the ceiling any
    Python fetcher meets against this server on this machine."""
    import urllib3
    from concurrent.futures import ThreadPoolExecutor

    pool = urllib3.PoolManager(maxsize=workers, retries=False)

    def get(url):
        return np.asarray(Image.open(io.BytesIO(pool.request("GET", url).data)))

    with ThreadPoolExecutor(workers) as threads:
        return list(threads.map(get, urls))


def fetcher_run(urls: list[str], base: str, workers: int, cache: Path) -> list[np.ndarray]:
    out = []
    with Fetcher(cache, FetchSettings(workers=workers, progress=False), source=base) as fetcher:
        for _, result in fetcher.fetch_all(urls):
            if not result.ok:
                raise RuntimeError(f"{result.url}: {result.reason} {result.detail}")
            out.append(np.asarray(Image.open(io.BytesIO(result.read_bytes()))))
    return out


def serve(folder: Path, latency: float) -> tuple[subprocess.Popen, str]:
    """`sign-datasets replica serve` in its own process: its threads then do
    not compete with the measured code for this interpreter's lock."""
    command = [sys.executable, "-m", "sign_datasets", "replica", "serve", str(folder),
               "--latency", str(latency)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = ""
    for line in server.stdout:
        if "http://127.0.0.1:" in line:
            base = line[line.index("http://"):].split()[0]
            break
    if not base:
        server.kill()
        raise RuntimeError("the replica server did not start")
    return server, base


def data_json_urls(folder: Path, base: str) -> list[str]:
    with zipfile.ZipFile(folder / "databasesLoadData.zip") as archive, archive.open(MEMBER) as stream:
        return [sources.rebase_url(r.url, base) for r in json_urls.read(stream, MEMBER)]


def storage_costs(folder: Path, files: int = 200) -> tuple[float, float]:
    """CPU ms per small body stored as a file of its own (create, write,
    rename: what the cache did before packs) and appended to a pack."""
    from sign_datasets.io.url_cache import UrlCache

    body = bytes(540)
    folder.mkdir(parents=True)
    started = time.process_time()
    for i in range(files):
        partial = folder / f"{i}.part"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(descriptor, body)
        os.close(descriptor)
        os.replace(partial, folder / str(i))
    per_file = (time.process_time() - started) / files * 1000
    cache = UrlCache(folder / "cache")
    started = time.process_time()
    for i in range(files):
        cache.put(f"http://127.0.0.1/{i}.jpg", body)
    per_record = (time.process_time() - started) / files * 1000
    cache.close()
    shutil.rmtree(folder)
    return per_file, per_record


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time a process has used so far (Linux), to show where time goes."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_doc(rows: list[dict], facts: dict, command: str) -> None:
    table = ["| client | course loop | fetcher (cold cache) | ratio (goal >= 25) | fetcher runs (s) |",
             "|---|---|---|---|---|"]
    table.append(f"| reference: bare urllib3, 32 threads, no checks, no cache | {facts['course']:.2f} s | "
                 f"{facts['bare']:.3f} s | {facts['course'] / facts['bare']:.1f} | best of {facts['repeat']} |")
    for row in rows:
        runs = ", ".join(f"{t:.3f}" for t in row["runs"])
        table.append(f"| fetcher, {row['workers']} threads | {facts['course']:.2f} s | "
                     f"{row['fetcher']:.3f} s | {facts['course'] / row['fetcher']:.1f} | {runs} |")
    server_cpu = (f"{facts['server_cpu_ms']:.2f} ms" if facts["server_cpu_ms"] is not None
                  else "an unmeasured amount")
    best = max(facts["course"] / row["fetcher"] for row in rows)
    if best >= 25:
        verdict = "The goal is met."
    elif facts["cpu_floor"] / 2 > facts["course"] / 25:
        verdict = (f"The goal is not met (best {best:.1f}x), and with this much CPU per request "
                   "it would not be on idle cores either.")
    else:
        verdict = (f"The goal is not met here (best {best:.1f}x); the CPU it needs fits in two "
                   "idle cores, so a quieter machine should reach it.")
    run = textwrap.fill(
        f"Run of {datetime.date.today().isoformat()} on {facts['machine']}: {facts['urls']} URLs, "
        f"{facts['latency_ms']:.0f} ms latency per request, {facts['note']}; load average "
        f"{facts['load']:.1f} at the start and {facts['load_after']:.1f} at the end of the run.", 78)
    where = textwrap.fill(
        "Where the time goes: once the threads hide the latency, both processes are bound by "
        f"CPU. Per request, the server used {server_cpu} and the fetcher's process "
        f"{facts['client_cpu_ms']:.2f} ms of CPU (urllib3 and http.client most of it; then PIL, "
        "the URL policy, the body appended to the cache's pack, the thread pool). For "
        f"{facts['urls']} URLs that is {facts['cpu_floor']:.2f} s of CPU: at best "
        f"{facts['cpu_floor'] / 2:.2f} s of wall time with both cores free, against the "
        f"{facts['course'] / 25:.2f} s that a 25x ratio allows, and the cores were shared with "
        f"other jobs. {verdict}", 78)
    storage = textwrap.fill(
        "For the same reason the cache appends small bodies to a pack file "
        "(`sign_datasets/io/url_cache.py`) instead of writing a file per URL: on the disk of this "
        f"run, creating, writing and renaming one small file took {facts['file_create_ms']:.2f} ms "
        f"of CPU (kernel time; measured in this run on {facts['file_create_files']} files, and "
        "0.03 to 1 ms on this machine's disks across the session), appending a record to a pack "
        f"{facts['pack_append_ms']:.3f} ms.", 78)
    threads = textwrap.fill(
        "With 16 threads (the default) the fetcher is bound by latency, not CPU: "
        f"{facts['urls']} requests of {facts['latency_ms']:.0f} ms on 16 connections take at "
        f"least {facts['urls'] * facts['latency_ms'] / 1000 / 16:.2f} s, so 16 threads cannot "
        "reach 25x; the goal is measured with more threads (`SIGN_DATASETS_FETCH_WORKERS=32`), "
        "which the builder's README recommends for many small files.", 78)
    from sign_datasets.cli import bench
    bench.bar_chart(ROOT / "docs" / "bench_fetch.png",
                    f"{facts['urls']} URLs at {facts['latency_ms']:.0f} ms latency: times faster "
                    "than the course's loop",
                    [(f"fetcher, {row['workers']} threads", facts["course"] / row["fetcher"])
                     for row in rows] + [("bare urllib3 (reference)", facts["course"] / facts["bare"])],
                    "ratio (course loop seconds / client seconds)", goal=25)
    section = f"""{SECTION}

Command:

```sh
{command}
```

{run}

The replica's `databasesLoadData.zip` and `img_mnist/` at that scale are
served by `sign-datasets replica serve` in a separate process, every request waiting
the latency before its answer, like a distant server. Both sides fetch every
URL of `sign_mnist_json/data.json` (rebased onto the server) and open each
image with PIL, in the same run: first the course's loop (`requests.get` one
URL after the other, a new connection each time), then the fetcher on a cold
cache (one pooled session, a thread pool, bodies written to the cache), best
of {facts['repeat']} runs per setting, each on a new empty cache.

{chr(10).join(table)}

![ratio per thread count](bench_fetch.png)

The reference row is not a product: a bare urllib3 pool in 32 threads with
no URL policy, no retries and no cache, the cheapest Python client there is.
It shows the ceiling that the server and the two shared cores put on any
Python fetcher in this run.

The fetcher sends each GET through a urllib3 pool of its own (whose
connections check the address they reach against the URL policy), not
through requests: requests' per-call layer cost about 0.8 ms of CPU per URL,
more than everything else together, and CPU is what bounds a fetch of many
small files once threads hide the latency.
{storage}

{threads}

{where}
"""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if SECTION in text:
        start = text.index(SECTION)
        following = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[following:] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)
    print(f"wrote {SECTION!r} in {DOC}")


def measure(urls: list[str], base: str, workers: int, work: Path,
            reference: list[np.ndarray], repeat: int) -> tuple[list[float], float]:
    """(wall times, mean CPU seconds of this process) of `repeat` runs,
    each on a new empty cache: other jobs on the machine only ever add time,
    so the minimum is the least disturbed run."""
    times, cpu = [], []
    for attempt in range(repeat):
        cache = work / f"cache-{workers}-{attempt}"
        cpu_start, started = time.process_time(), time.perf_counter()
        fetched = fetcher_run(urls, base, workers, cache)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_start)
        if len(fetched) != len(reference) or any(
                not np.array_equal(a, b) for a, b in zip(fetched, reference)):
            raise RuntimeError("the fetcher's images differ from the course loop's")
    return times, sum(cpu) / len(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.7,
                        help="replica scale; data.json gets max(9, round(450 * scale)) URLs")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--workers", type=int, nargs="+", default=[16, 32, 64],
                        help="fetcher thread counts to measure (16 is the default)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fetcher runs per setting, each on a cold cache; the best counts")
    parser.add_argument("--replica", help="replica folder to reuse (default: a temporary one)")
    parser.add_argument("--note", default="other jobs may share the cores (see the load)",
                        help="what to say about the machine in the doc")
    parser.add_argument("--write-doc", action="store_true",
                        help=f"write the results under {SECTION!r} in docs/BENCHMARKS.md")
    args = parser.parse_args()

    rows, client_cpu = [], []
    from sign_datasets.cli import bench
    facts: dict = {"latency_ms": args.latency * 1000, "note": args.note, "repeat": args.repeat,
                   "load": os.getloadavg()[0], "machine": bench.machine()}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(args.replica) if args.replica else Path(work) / "replica"
        if not (folder / "databasesLoadData.zip").exists():
            print(f"writing the replica (scale {args.scale}) to {folder}", flush=True)
            make_replica(folder, scale=args.scale, objects=["databasesLoadData.zip", "img_mnist"])
        server, base = serve(folder, args.latency)
        try:
            urls = data_json_urls(folder, base)
            facts["urls"] = len(urls)
            print(f"{len(urls)} URLs, {args.latency * 1000:.0f} ms latency per request")
            requests.get(urls[0]).raise_for_status()  # server start-up out of the timing

            started = time.perf_counter()
            reference = course_loop(urls)
            facts["course"] = time.perf_counter() - started
            print(f"course loop: {facts['course']:.2f} s")

            bare = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                bare_urllib3(urls)
                bare.append(time.perf_counter() - started)
            facts["bare"] = min(bare)
            print(f"bare urllib3 reference, 32 threads: best {facts['bare']:.3f} s "
                  f"-> {facts['course'] / facts['bare']:.1f}x")

            server_cpu_before = process_cpu_seconds(server.pid)
            for workers in args.workers:
                times, cpu = measure(urls, base, workers, Path(work), reference, args.repeat)
                client_cpu.append(cpu)
                print(f"fetcher, {workers} threads: best {min(times):.3f} s "
                      f"-> {facts['course'] / min(times):.1f}x (runs: "
                      f"{', '.join(f'{t:.3f}' for t in times)})")
                rows.append({"workers": workers, "fetcher": min(times), "runs": times})
            server_cpu_after = process_cpu_seconds(server.pid)
            facts["file_create_files"] = 200
            facts["file_create_ms"], facts["pack_append_ms"] = storage_costs(Path(work) / "storage")
            print(f"storing a small body: a file of its own {facts['file_create_ms']:.3f} ms CPU, "
                  f"a pack record {facts['pack_append_ms']:.3f} ms")
        finally:
            server.terminate()
            server.wait(timeout=10)
    facts["load_after"] = os.getloadavg()[0]

    served = len(urls) * len(args.workers) * args.repeat
    facts["server_cpu_ms"] = (None if server_cpu_before is None or server_cpu_after is None
                              else (server_cpu_after - server_cpu_before) / served * 1000)
    facts["client_cpu_ms"] = sum(client_cpu) / len(client_cpu) / len(urls) * 1000
    facts["cpu_floor"] = (facts["client_cpu_ms"] + (facts["server_cpu_ms"] or 0)) * len(urls) / 1000
    print(f"CPU per request: fetcher process {facts['client_cpu_ms']:.2f} ms, server "
          f"{facts['server_cpu_ms'] or float('nan'):.2f} ms; load average "
          f"{facts['load']:.1f} -> {facts['load_after']:.1f}")
    if len(urls) < 300:
        print(f"warning: only {len(urls)} URLs; the goal is measured on at least 300 "
              "(use --scale 0.67 or more)", file=sys.stderr)
    if args.write_doc:
        workers = " ".join(str(w) for w in args.workers)
        command = (f".venv/bin/python scripts/bench_fetch.py --scale {args.scale} "
                   f"--latency {args.latency} --workers {workers} --repeat {args.repeat} "
                   "--write-doc")
        write_doc(rows, facts, command)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
