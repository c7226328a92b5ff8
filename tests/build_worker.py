"""Builds datasets in a process of its own, for the fault and determinism tests.

    python tests/build_worker.py DATA_DIR NAME [NAME ...] [--download-dir DIR]
        [--kill-in-split SPLIT --kill-after N] [--pause-in-split SPLIT --pause-seconds S]

--kill-after: the process sends itself SIGKILL once N examples of SPLIT
have been generated. SIGKILL cannot be caught or cleaned up after, so the
state left behind is that of a build killed from outside at that point,
without the race of aiming an outside kill at the middle of a fast build.

--pause-*: prints "GENERATING <pid>" and sleeps once the first example of
SPLIT is generated, so another build can be started while this one runs.

The source is SIGN_DATASETS_SOURCE, as for any build. Prints "BUILT <name>"
after each build.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def hook_generation(kill_split: str | None, kill_after: int, pause_split: str | None,
                    pause_seconds: float) -> None:
    from sign_datasets.generate.builder import CleanedBuilder

    original = CleanedBuilder._local_examples

    def watched(self, plan):
        split = plan.split
        for count, example in enumerate(original(self, plan), start=1):
            if split == pause_split and count == 1:
                print(f"GENERATING {os.getpid()}", flush=True)
                time.sleep(pause_seconds)
            if split == kill_split and count == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            yield example

    CleanedBuilder._local_examples = watched


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("names", nargs="+")
    parser.add_argument("--download-dir")
    parser.add_argument("--kill-in-split")
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--pause-in-split")
    parser.add_argument("--pause-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)

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
