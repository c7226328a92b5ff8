"""The hand-written streaming JSON readers against ijson.

1. JSON Lines, 1,000,000 records: json_urls.read (readline + json.loads)
   against ijson.items(multiple_values=True), which streams the same values
   but knows no line numbers, and against ijson run line by line, the way
   that would keep them.
2. A 50 MB base64 JSON object (1,000 entries of 50 KB): base64_json.read
   (the whole file, top level walked by hand) against ijson.kvitems, which
   keeps repeated keys but, again, no line numbers.

Each reader runs in its own process, best of 3; peak memory is the growth of
the process's maximum resident set while parsing (ijson's C parser
allocates outside tracemalloc's view). Ratios are against the current code
measured in the same run.

Run: .venv/bin/pip install ijson && .venv/bin/python scripts/compare_ijson.py [--quick]

Not a `bench_*.py` of the suite: ijson is no dependency of the project
(the comparison decided against it), so `sign-datasets bench` does not run it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JSONL_RECORDS = 1_000_000
BASE64_ENTRIES, BASE64_ENTRY_BYTES = 1_000, 50_000
LETTERS = "ABCDEFGHIKLMNOPQRSTUVWXY"


# --- the readers, each run in a child process ------------------------------------

def current_jsonl(path: str) -> int:
    from sign_datasets.formats import json_urls
    with open(path, "rb") as stream:
        return sum(1 for _ in json_urls.read(stream, path))


def ijson_jsonl(path: str) -> int:
    import ijson
    from sign_datasets.formats import json_urls
    # Same records built; the line is a count, blank lines would make it wrong.
    with open(path, "rb") as stream:
        values = ijson.items(stream, "", multiple_values=True, use_float=True)
        return sum(1 for n, value in enumerate(values, 1) if json_urls._record(value, path, n))


def ijson_jsonl_per_line(path: str) -> int:
    import ijson
    from sign_datasets.formats import json_urls
    count = 0
    with open(path, "rb") as stream:
        for line_no, raw in enumerate(stream, 1):
            for value in ijson.items(raw, "", use_float=True):
                count += bool(json_urls._record(value, path, line_no))
    return count


def current_base64(path: str) -> int:
    from sign_datasets.formats import base64_json
    with open(path, "rb") as stream:
        return sum(1 for _ in base64_json.read(stream, path))


def ijson_base64(path: str) -> int:
    import ijson
    from sign_datasets.formats import base64_json
    # The pairs of an object are kept until its end, as the current reader
    # must to tell a {"label", "image"} record from label -> image pairs.
    with open(path, "rb") as stream:
        pairs = list(ijson.kvitems(stream, "", use_float=True))
    return sum(1 for n, (key, value) in enumerate(pairs, 1)
               if base64_json.Base64Entry(path, n, 0, key, value))


READERS = {f.__name__: f for f in (current_jsonl, ijson_jsonl, ijson_jsonl_per_line,
                                   current_base64, ijson_base64)}


def child(reader: str, path: str) -> None:
    """Prints seconds, peak growth in MB and the record count as JSON."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    count = READERS[reader](path)
    seconds = time.perf_counter() - start
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "count": count}))


def warm_imports() -> None:
    import ijson  # noqa: F401
    from sign_datasets.formats import base64_json, json_urls  # noqa: F401


# --- the inputs -------------------------------------------------------------------

def write_jsonl(path: Path, records: int) -> None:
    with open(path, "wb") as out:
        for i in range(records):
            line = {"content": f"https://storage.googleapis.com/bucket/img_mnist/{i}_{LETTERS[i % 24]}.jpg",
                    "label": LETTERS[i % 24].lower()}
            out.write(json.dumps(line).encode() + b"\n")


def write_base64(path: Path, entries: int, entry_bytes: int) -> None:
    payload = base64.b64encode(b"\xff\xd8\xff" + os.urandom(entry_bytes * 3 // 4 - 3)).decode()
    with open(path, "w") as out:
        out.write("{\n")
        out.write(",\n".join(f'  "{LETTERS[i % 24].lower()}": "{payload}"' for i in range(entries)))
        out.write("\n}\n")


# --- the run ----------------------------------------------------------------------

def measure(reader: str, path: Path, rounds: int) -> dict:
    runs = []
    for _ in range(rounds):
        done = subprocess.run([sys.executable, __file__, "--child", reader, str(path)],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    return {"seconds": min(r["seconds"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs),
            "count": runs[0]["count"]}


def report(title: str, size_mb: float, results: dict[str, dict], baseline: str) -> None:
    print(f"\n{title} ({size_mb:.0f} MB)")
    base = results[baseline]["seconds"]
    for name, r in results.items():
        print(f"  {name:22s} {r['seconds']:6.2f} s  {base / r['seconds']:5.2f}x  "
              f"peak +{r['peak_mb']:6.1f} MB  {r['count']} records")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, one round")
    parser.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        warm_imports()
        child(*args.child)
        return
    import ijson
    print(f"ijson {ijson.__version__}, backend {ijson.backend}; Python {sys.version.split()[0]}")
    scale, rounds = (10, 1) if args.quick else (1, 3)
    with tempfile.TemporaryDirectory() as tmp:
        jsonl, b64 = Path(tmp, "urls.json"), Path(tmp, "base64.json")
        write_jsonl(jsonl, JSONL_RECORDS // scale)
        write_base64(b64, BASE64_ENTRIES // scale, BASE64_ENTRY_BYTES)
        report(f"JSON Lines, {JSONL_RECORDS // scale:,} records", jsonl.stat().st_size / 1e6,
               {r: measure(r, jsonl, rounds) for r in ("current_jsonl", "ijson_jsonl",
                                                       "ijson_jsonl_per_line")}, "current_jsonl")
        report(f"base64 object, {BASE64_ENTRIES // scale:,} entries", b64.stat().st_size / 1e6,
               {r: measure(r, b64, rounds) for r in ("current_base64", "ijson_base64")},
               "current_base64")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
