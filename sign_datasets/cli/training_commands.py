"""`python -m sign_datasets.cli.training_commands`: the training commands
(cli/training.py) on their own, without the rest of the command line.

Nothing in the package imports this module, so that `python -m` runs it
fresh rather than after the package has loaded it.
"""

from __future__ import annotations

import argparse
import sys

from sign_datasets.cli import runner, training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sign_datasets.cli.training_commands",
                                     description="Train, evaluate and use the course's models.")
    training.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    return runner.run(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
