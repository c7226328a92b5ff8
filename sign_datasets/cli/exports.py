"""`sign-datasets export NAME[/CONFIG] --to parquet --out DIR`: a built
dataset as Parquet files, a dataset card and croissant.json (read/export.py).
A dataset not built yet is built first, as show and train do; --no-build
refuses instead."""

from __future__ import annotations

import sys
from pathlib import Path

from sign_datasets.catalog import page, registry
from sign_datasets.read import export


def cmd_export(args) -> int:
    out = Path(args.out)
    try:
        export.check_out(out)  # before a build that could take long
        builder = registry.prepared_builder(args.name, args.data_dir, build=not args.no_build)
        creator, date = page.published_by(args.name)
        export.export(builder, out, creator, date, progress=sys.stderr.isatty())
    except export.ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(out.resolve())
    return 0


def add_commands(commands) -> None:
    parser = commands.add_parser(
        "export", help="a built dataset as Parquet files with a dataset card and Croissant "
                       "metadata, for Hugging Face datasets, mlcroissant and other tools")
    parser.add_argument("name", help="e.g. sign_mnist_csv or sign_mnist_csv/dirty")
    parser.add_argument("--to", choices=("parquet",), default="parquet",
                        help="the format of the files (parquet, the default)")
    parser.add_argument("--out", required=True,
                        help="folder to write; empty, new, or an earlier export it replaces")
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS_DATA_DIR or "
                                           "~/tensorflow_datasets)")
    parser.add_argument("--no-build", action="store_true",
                        help="refuse a dataset not built yet instead of building it first")
    parser.set_defaults(func=cmd_export)
