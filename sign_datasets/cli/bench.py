"""The project's benchmark suite: `sign-datasets bench [--quick]`.

Every `scripts/bench_*.py` of the checkout measures the project against a
baseline in the same run and prints the ratio; most also rewrite their own
section of docs/BENCHMARKS.md. This module runs them one after the other
(never two at once: they would slow each other down) with either the settings
their sections were measured with or a quick set, and holds the helpers the
scripts share: the machine's description and the section writer.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"


@dataclasses.dataclass(frozen=True)
class Preset:
    """Command-line arguments of one script, for the full run and for --quick.

    `writes`: the argument that makes the script rewrite its section, when it
    does not by default; `no_write`: the one that stops it, when it does."""

    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    no_write: tuple[str, ...] = ()


# A script without a preset runs with its defaults. Quick settings shrink the
# data (replica scale) and the repeats, so that the whole suite answers in a
# few minutes: a smoke test of every benchmark, not figures to publish.
PRESETS = {
    "bench_csv.py": Preset(full=("--scale", "1"), quick=("--scale", "0.1", "--skip-memory"),
                           writes=("--write-doc",)),
    "bench_fetch.py": Preset(full=("--scale", "0.7", "--latency", "0.02", "--workers", "16", "32", "64",
                                   "--repeat", "5"),
                             quick=("--scale", "0.1", "--latency", "0.02", "--workers", "32",
                                    "--repeat", "1"),
                             writes=("--write-doc",)),
    "bench_folders.py": Preset(full=("--scale", "0.1", "--sign-scale", "1.0", "--repeats", "5"),
                               quick=("--scale", "0.02", "--sign-scale", "0.1", "--repeats", "1"),
                               no_write=("--no-write",)),
    "bench_read.py": Preset(full=(), quick=("--quick",), no_write=("--no-write",)),
    "bench_beam.py": Preset(full=("--scale", "1"), quick=("--scale", "0.02"),
                            no_write=("--no-write",)),
    # Without --source only the search over synthetic hashes (the build's
    # cost needs a scale-1 replica: see docs/BENCHMARKS.md for the command).
    "bench_quality.py": Preset(full=(), quick=("--hashes", "50000")),
}


def discover(scripts_dir: Path = SCRIPTS) -> list[Path]:
    if not scripts_dir.is_dir():
        raise FileNotFoundError(f"{scripts_dir} not found: the benchmarks run from a checkout "
                                "of the project (pip install -e .)")
    return sorted(scripts_dir.glob("bench_*.py"))


def command_for(script: Path, quick: bool, write: bool) -> list[str]:
    preset = PRESETS.get(script.name, Preset())
    arguments = list(preset.quick if quick else preset.full)
    arguments += list(preset.writes if write else preset.no_write)
    return [sys.executable, str(script), *arguments]


@dataclasses.dataclass
class ScriptRun:
    script: str
    command: list[str]
    seconds: float
    returncode: int


def run_suite(quick: bool = False, write: bool | None = None, only: list[str] | None = None,
              scripts_dir: Path = SCRIPTS) -> list[ScriptRun]:
    """Runs the benchmark scripts in turn, their output passed through.

    write: rewrite docs/BENCHMARKS.md sections; by default only the full run
    does, so that quick figures never replace measured ones.
    """
    write = (not quick) if write is None else write
    scripts = discover(scripts_dir)
    if only:
        wanted = {name if name.endswith(".py") else f"{name}.py" for name in only}
        wanted |= {f"bench_{name}" for name in wanted if not name.startswith("bench_")}
        scripts = [s for s in scripts if s.name in wanted]
        if not scripts:
            raise FileNotFoundError(f"no benchmark named {only}; there are "
                                    f"{[s.stem for s in discover(scripts_dir)]}")
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    runs = []
    for script in scripts:
        command = command_for(script, quick, write)
        print(f"\n=== {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(command))}",
              flush=True)
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, env=env)
        runs.append(ScriptRun(script.name, command, time.perf_counter() - start, result.returncode))
    return runs


def format_runs(runs: list[ScriptRun], quick: bool, write: bool) -> str:
    lines = [f"{'benchmark':<20} {'seconds':>8}  result"]
    for run in runs:
        lines.append(f"{run.script:<20} {run.seconds:>8.1f}  "
                     f"{'ok' if run.returncode == 0 else f'FAILED (exit {run.returncode})'}")
    total = sum(run.seconds for run in runs)
    lines.append(f"{'total':<20} {total:>8.1f}  "
                 f"{'quick settings' if quick else 'full settings'}; "
                 f"{'sections of docs/BENCHMARKS.md rewritten' if write else 'docs not written'}")
    return "\n".join(lines)


# --- helpers shared by the scripts ---------------------------------------------------

def cpu_pressure() -> float | None:
    """The kernel's 'some' CPU pressure over the last 60 s, in percent: the
    share of time a runnable task waited for a core (other people's jobs)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None
    match = re.search(r"avg60=([0-9.]+)", line)
    return float(match.group(1)) if match else None


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 ** 2
    except OSError:
        pass
    return None


def machine() -> str:
    """Cores, memory and GPU, for the header of a section."""
    memory = memory_gib()
    gpu = "no GPU"
    try:
        import tensorflow as tf
        if tf.config.list_physical_devices("GPU"):
            gpu = "GPU"
    except ImportError:
        pass
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {gpu}" if memory else f"{os.cpu_count()} cores, {gpu}"


def contention() -> str:
    """Load and CPU pressure now, to note beside the figures."""
    pressure = cpu_pressure()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    parts = []
    if load is not None:
        parts.append(f"load average {load:.1f}")
    if pressure is not None:
        parts.append(f"CPU pressure {pressure:.0f} %")
    return ", ".join(parts) or "n/a"


def epoch_seconds(dataset) -> tuple[float, int]:
    """(seconds, images) of one pass over a dataset of (images, labels) batches."""
    start = time.perf_counter()
    count = 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return time.perf_counter() - start, count


def bar_chart(path: Path, title: str, bars: list[tuple[str, float]], unit: str,
              goal: float | None = None, goal_label: str = "goal") -> Path:
    """A horizontal bar chart of one benchmark's figures, for its section.

    bars: (label, value) from top to bottom; goal draws a dashed line (a
    ratio the issue asks for, say)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [label for label, _ in bars]
    values = [value for _, value in bars]
    figure, axes = plt.subplots(figsize=(8, 0.5 * len(bars) + 1.4))
    positions = range(len(bars))[::-1]
    axes.barh(list(positions), values, color="#4c72b0")
    axes.set_yticks(list(positions), labels, fontsize=8)
    for y, value in zip(positions, values):
        axes.text(value, y, f" {value:,.3g}", va="center", fontsize=8)
    if goal is not None:
        axes.axvline(goal, color="#c44e52", linestyle="--", linewidth=1, label=f"{goal_label} {goal:g}")
        axes.legend(loc="lower right", fontsize=8)
    axes.set_xlabel(unit)
    axes.set_xlim(0, max(values + [goal or 0]) * 1.18 or 1)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    # No timestamp in the PNG: rerunning with the same figures changes no bytes.
    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)
    return path


def write_section(heading: str, text: str, path: Path = BENCHMARKS) -> None:
    """Replaces the section that starts with `heading` (up to the next '## ')
    or appends it; every other section is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    start = current.find(heading + "\n")
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        following = current.find("\n## ", start + len(heading))
        rest = current[following + 1:] if following >= 0 else ""
        updated = current[:start] + text.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    path.write_text(updated.rstrip("\n") + "\n")


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="small data and one repeat: every benchmark in a few minutes; "
                             "does not touch docs/BENCHMARKS.md unless --write")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", dest="write", action="store_true", default=None,
                       help="rewrite the sections of docs/BENCHMARKS.md (default for full runs)")
    group.add_argument("--no-write", dest="write", action="store_false",
                       help="print the results only")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these, e.g. read folders (scripts/bench_NAME.py)")


def run_from_args(args) -> int:
    runs = run_suite(quick=args.quick, write=args.write, only=args.only)
    write = (not args.quick) if args.write is None else args.write
    print("\n" + format_runs(runs, args.quick, write))
    return 0 if all(run.returncode == 0 for run in runs) else 1

