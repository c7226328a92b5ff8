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

from sign_datasets import sources
from sign_datasets.fetcher import Fetcher, FetchSettings
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


def fetcher_run(urls: list[str], base: str, workers: int, cache: Path) -> list[np.ndarray]:
    out = []
    with Fetcher(cache, FetchSettings(workers=workers, progress=False), source=base) as fetcher:
        for _, result in fetcher.fetch_all(urls):
            if not result.ok:
                raise RuntimeError(f"{result.url}: {result.reason} {result.detail}")
            out.append(np.asarray(Image.open(io.BytesIO(result.read_bytes()))))
    return out


# The replica server writes headers and body in two small sends. On a kept-
# alive connection, Nagle's algorithm then holds the body until the client's
# delayed ACK of the headers, about 40 ms on Linux: every request after a
# connection's first would pay it, which no real bucket does. TCP_NODELAY,
# the fix proposed for the server, removes that artefact; the course's loop
# opens a new connection per request and is not affected either way.
_SERVE_NODELAY = """
import sys, time
from sign_datasets.replica import server as replica_server
replica_server._Handler.disable_nagle_algorithm = True
served = replica_server.ReplicaServer(sys.argv[1], latency=float(sys.argv[2])).start()
print(served.base_url, flush=True)
while True:
    time.sleep(3600)
"""


def serve(folder: Path, latency: float, nodelay: bool = True) -> tuple[subprocess.Popen, str]:
    command = ([sys.executable, "-c", _SERVE_NODELAY, str(folder), str(latency)] if nodelay else
               [sys.executable, "-m", "sign_datasets", "replica", "serve", str(folder),
                "--latency", str(latency)])
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().strip()
    if not base.startswith("http://127.0.0.1:"):
        server.kill()
        raise RuntimeError(f"the replica server did not start (said {base!r})")
    return server, base


def data_json_urls(folder: Path, base: str) -> list[str]:
    with zipfile.ZipFile(folder / "databasesLoadData.zip") as archive, archive.open(MEMBER) as stream:
        return [sources.rebase_url(r.url, base) for r in json_urls.read(stream, MEMBER)]


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time a process has used so far (Linux), to show where time goes."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_doc(rows: list[dict], facts: dict, command: str) -> None:
    table = ["| replica server | fetcher threads | course loop | fetcher (cold cache) | ratio (goal >= 25) |",
             "|---|---|---|---|---|"]
    for row in rows:
        table.append(f"| {row['server']} | {row['workers']} | {facts['course']:.2f} s | "
                     f"{row['fetcher']:.3f} s | {facts['course'] / row['fetcher']:.1f} |")
    server_cpu = (f"{facts['server_cpu_ms']:.2f} ms" if facts["server_cpu_ms"] is not None
                  else "an unmeasured amount")
    best = max(facts["course"] / row["fetcher"] for row in rows)
    if best >= 25:
        verdict = "The goal is met."
    elif facts["cpu_floor"] / 2 > facts["course"] / 25:
        verdict = (f"The goal is not met (best {best:.1f}x), and with this much CPU per request "
                   "it would not be on idle cores either: it needs a cheaper client than "
                   "requests (the largest part) or a cheaper server.")
    else:
        verdict = (f"The goal is not met here (best {best:.1f}x); the CPU it needs fits in two "
                   "idle cores, so a quieter machine should reach it.")
    run = textwrap.fill(
        f"Run of {datetime.date.today().isoformat()}: {facts['urls']} URLs, "
        f"{facts['latency_ms']:.0f} ms latency per request, {facts['note']}; load average "
        f"{facts['load']:.1f} at the start and {facts['load_after']:.1f} at the end of the run.", 78)
    where = textwrap.fill(
        "Where the time goes: once the threads hide the latency, both processes are bound by "
        f"CPU. Per request, the server used {server_cpu} and the fetcher's process "
        f"{facts['client_cpu_ms']:.2f} ms of CPU (requests itself takes about 0.8 ms; the rest "
        "is the URL policy, the cache file written and renamed, the thread pool and PIL). For "
        f"{facts['urls']} URLs that is {facts['cpu_floor']:.2f} s of CPU: at best "
        f"{facts['cpu_floor'] / 2:.2f} s of wall time with both cores free, against the "
        f"{facts['course'] / 25:.2f} s that a 25x ratio allows, and the cores were shared with "
        f"other jobs. {verdict}", 78)
    section = f"""{SECTION}

Command:

```sh
{command}
```

{run}

The replica's `databasesLoadData.zip` and `img_mnist/` at that scale are
served by the replica server in a separate process, every request waiting
the latency before its answer, like a distant server. Both sides fetch every
URL of `sign_mnist_json/data.json` (rebased onto the server) and open each
image with PIL, in the same run: first the course's loop (`requests.get` one
URL after the other, a new connection each time), then the fetcher on a cold
cache (one pooled session, a thread pool, bodies written to the cache), best
of {facts['repeat']} runs per setting, each on a new empty cache.

{chr(10).join(table)}

"as shipped" is `sign-datasets replica serve`. It writes headers and body in
two sends; on a kept-alive connection Nagle's algorithm then holds the body
until the client's delayed ACK (about 40 ms on Linux), so every request after
a connection's first pays 40 ms that no real bucket charges; more threads
hide it. "TCP_NODELAY" is the same server with that socket option set (a
one-line change proposed for `sign_datasets/replica/server.py`). The course's
loop opens a new connection per request and is not affected; it is measured
against the TCP_NODELAY server.

{where}
"""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if SECTION in text:
        start = text.index(SECTION)
        following = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[following + 1:] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)
    print(f"wrote {SECTION!r} in {DOC}")


def measure(urls: list[str], base: str, workers: int, work: Path,
            reference: list[np.ndarray], repeat: int) -> tuple[float, float]:
    """(best wall time, mean CPU seconds of this process) over `repeat` runs,
    each on a new empty cache: other jobs on the machine only ever add time,
    so the minimum is the least disturbed run."""
    times, cpu = [], []
    for attempt in range(repeat):
        cache = work / f"cache-{base.rsplit(':', 1)[1].strip('/')}-{workers}-{attempt}"
        cpu_start, started = time.process_time(), time.perf_counter()
        fetched = fetcher_run(urls, base, workers, cache)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_start)
        if len(fetched) != len(reference) or any(
                not np.array_equal(a, b) for a, b in zip(fetched, reference)):
            raise RuntimeError("the fetcher's images differ from the course loop's")
    return min(times), sum(cpu) / len(cpu)


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
    parser.add_argument("--note", default="2 cores shared with other developers' jobs",
                        help="what to say about the machine in the doc")
    parser.add_argument("--write-doc", action="store_true",
                        help=f"write the results under {SECTION!r} in docs/BENCHMARKS.md")
    args = parser.parse_args()

    rows, client_cpu = [], []
    facts: dict = {"latency_ms": args.latency * 1000, "note": args.note, "repeat": args.repeat,
                   "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(args.replica) if args.replica else Path(work) / "replica"
        if not (folder / "databasesLoadData.zip").exists():
            print(f"writing the replica (scale {args.scale}) to {folder}", flush=True)
            make_replica(folder, scale=args.scale, objects=["databasesLoadData.zip", "img_mnist"])
        fast, fast_base = serve(folder, args.latency, nodelay=True)
        shipped, shipped_base = serve(folder, args.latency, nodelay=False)
        try:
            urls = data_json_urls(folder, fast_base)
            facts["urls"] = len(urls)
            print(f"{len(urls)} URLs, {args.latency * 1000:.0f} ms latency per request")
            requests.get(urls[0]).raise_for_status()  # server start-up out of the timing

            started = time.perf_counter()
            reference = course_loop(urls)
            facts["course"] = time.perf_counter() - started
            print(f"course loop: {facts['course']:.2f} s")

            server_cpu_before = process_cpu_seconds(fast.pid)
            for label, base in (("TCP_NODELAY", fast_base), ("as shipped", shipped_base)):
                for workers in args.workers:
                    elapsed, cpu = measure(data_json_urls(folder, base), base, workers,
                                           Path(work), reference, args.repeat)
                    client_cpu.append(cpu)
                    print(f"fetcher, server {label}, {workers} threads: {elapsed:.3f} s "
                          f"-> {facts['course'] / elapsed:.1f}x")
                    rows.append({"server": label, "workers": workers, "fetcher": elapsed})
                if label == "TCP_NODELAY":
                    server_cpu_after = process_cpu_seconds(fast.pid)
        finally:
            for process in (fast, shipped):
                process.terminate()
                process.wait(timeout=10)
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
