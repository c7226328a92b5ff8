"""Builds datasets in a process of its own, for the fault and determinism tests.

    python tests/build_worker.py DATA_DIR NAME [NAME ...] [--download-dir DIR]
        [--kill-in-split SPLIT --kill-after N] [--pause-in-split SPLIT --pause-seconds S]
        [--clock-offset-days D]

--kill-after: the process sends itself SIGKILL once N examples of SPLIT
have been generated. SIGKILL cannot be caught or cleaned up after, so the
state left behind is that of a build killed from outside at that point,
without the race of aiming an outside kill at the middle of a fast build.

--pause-*: prints "GENERATING <pid>" and sleeps once the first example of
SPLIT is generated, so another build can be started while this one runs.

--clock-offset-days: shifts time.time and time.time_ns when faketime is not
installed; libfaketime shifts every clock of the process, datetime's too.

The source is SIGN_DATASETS_SOURCE, as for any build. Prints "BUILT <name>"
after each build.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def shift_python_clocks(days: float) -> None:
    offset = days * 86400.0
    real_time, real_time_ns = time.time, time.time_ns
    time.time = lambda: real_time() + offset
    time.time_ns = lambda: real_time_ns() + int(offset * 1e9)

    # datetime.datetime cannot be swapped for a subclass: pandas' and
    # pyarrow's C code check its exact size and crash. Its now() reads the C
    # clock, which only libfaketime moves.


def hook_generation(kill_split: str | None, kill_after: int, pause_split: str | None,
                    pause_seconds: float) -> None:
    from sign_datasets.builder import CleanedBuilder

    original = CleanedBuilder.cleaned_examples

    def watched(self, split, *args, **kwargs):
        for count, example in enumerate(original(self, split, *args, **kwargs), start=1):
            if split == pause_split and count == 1:
                print(f"GENERATING {os.getpid()}", flush=True)
                time.sleep(pause_seconds)
            if split == kill_split and count == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            yield example

    CleanedBuilder.cleaned_examples = watched


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("names", nargs="+")
    parser.add_argument("--download-dir")
    parser.add_argument("--kill-in-split")
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--pause-in-split")
    parser.add_argument("--pause-seconds", type=float, default=0.0)
    parser.add_argument("--clock-offset-days", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.clock_offset_days:
        shift_python_clocks(args.clock_offset_days)

    import tensorflow_datasets as tfds

    import sign_datasets  # noqa: F401  (registers the builders)

    tfds.disable_progress_bar()
    hook_generation(args.kill_in_split, args.kill_after, args.pause_in_split, args.pause_seconds)
    for name in args.names:
        builder = tfds.builder(name, data_dir=args.data_dir)
        builder.download_and_prepare(download_dir=args.download_dir)
        print(f"BUILT {name} {builder.info.splits.total_num_examples}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
