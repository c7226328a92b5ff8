"""The `sign-datasets` command line.

TensorFlow is imported only by the commands that need it, so `replica` and
`--help` answer at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tensorflow_datasets.core import constants

from sign_datasets.catalog import registry
from sign_datasets.cli import bench, builds, catalog_commands, demo, exports, runner, training
from sign_datasets.core.cleaning import format_quality, format_report
from sign_datasets.io import guards
from sign_datasets.replica import DEFAULT_SCALE, ReplicaServer, make_replica


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", dest="source_base",
        help="base URL, file:// URL or folder that replaces the course bucket "
             "(same as SIGN_DATASETS_SOURCE)")


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS_DATA_DIR or "
                                           "~/tensorflow_datasets)")


def cmd_replica_make(args) -> int:
    manifest = make_replica(Path(args.dir), scale=args.scale, seed=args.seed, progress=True)
    total = sum(f.stat().st_size for f in Path(args.dir).rglob("*") if f.is_file())
    print(f"replica written to {Path(args.dir).resolve()} (scale {manifest['scale']}, "
          f"seed {manifest['seed']}, {total / 1e6:.1f} MB)")
    return 0


def cmd_replica_serve(args) -> int:
    server = ReplicaServer(Path(args.dir), port=args.port, latency=args.latency,
                           fail_rate=args.fail_rate)
    server.start()
    print(server.base_url, flush=True)
    print(f"serving {Path(args.dir).resolve()}; use SIGN_DATASETS_SOURCE={server.base_url} "
          "(Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def data_dir_of(args) -> str:
    """The data dir a command uses: --data-dir, else TFDS's default."""
    return args.data_dir or constants.get_default_data_dir()


def cmd_build(args) -> int:
    if args.all == bool(args.names):
        print("error: name datasets to build, or --all (not both)", file=sys.stderr)
        return 2
    guards.writable_folder(data_dir_of(args), "data dir")
    names = registry.all_dataset_names() if args.all else args.names
    for name in names:
        registry.check_name(name)  # a misspelt name is a usage error: before any build
    if args.beam:
        # Checked once here: a missing apache-beam or empty options would
        # otherwise fail every dataset the same way.
        try:
            from sign_datasets.generate import beam  # imports apache-beam, an optional extra
            beam.pipeline_options(args.beam)
        except (ImportError, ValueError) as error:
            print(f"error: --beam: {error}", file=sys.stderr)
            return 2
    results = builds.build_many(names, data_dir=args.data_dir, file_format=args.file_format,
                                beam_options=args.beam)
    print(builds.format_summary(results))
    failed = [r for r in results if r.error]
    for result in failed:
        named = result.error.startswith((result.name, repr(result.name)))
        print(f"error: {result.error if named else f'{result.name}: {result.error}'}",
              file=sys.stderr)
    return 1 if failed else 0


def cmd_report(args) -> int:
    try:
        reports = registry.stored_report(args.name, data_dir=args.data_dir)
    except registry.NotBuiltError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_report(reports, title=f"Cleaning report of {args.name}"))
    quality = registry.stored_quality(args.name, data_dir=args.data_dir)
    if quality:
        print(format_quality(quality))
    return 0


def cmd_demo(args) -> int:
    return demo.run(out=Path(args.out), scale=args.scale, epochs=args.epochs, seed=args.seed)


def cmd_bench(args) -> int:
    return bench.run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sign-datasets",
        description="Clean, cached TFDS datasets from the course's messy sources.")
    commands = parser.add_subparsers(dest="command", required=True)

    replica = commands.add_parser("replica", help="the offline replica of the course bucket")
    replica_commands = replica.add_subparsers(dest="replica_command", required=True)
    make = replica_commands.add_parser("make", help="write every bucket object into DIR")
    make.add_argument("dir")
    make.add_argument("--scale", type=float, default=DEFAULT_SCALE,
                      help=f"share of the real counts (1 = real counts; default {DEFAULT_SCALE})")
    make.add_argument("--seed", type=int, default=0)
    make.set_defaults(func=cmd_replica_make)
    serve = replica_commands.add_parser("serve", help="serve DIR on 127.0.0.1")
    serve.add_argument("dir")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    serve.add_argument("--fail-rate", type=float, default=0.0,
                       help="share of requests answered 503")
    serve.set_defaults(func=cmd_replica_serve)

    build = commands.add_parser("build", help="download, clean and prepare datasets")
    build.add_argument("names", nargs="*", help="e.g. sign_mnist_csv or sign_mnist_csv/dirty")
    build.add_argument("--all", action="store_true",
                       help="every dataset/config of the catalogs (see `sign-datasets list`)")
    _add_source(build)
    _add_data_dir(build)
    build.add_argument("--file-format", choices=("tfrecord", "array_record"),
                       help="storage of the examples (default tfrecord); array_record allows "
                            "random access with tfds.data_source")
    build.add_argument("--beam", metavar="OPTIONS",
                       help="generate on Apache Beam with these pipeline options, passed through "
                            "unchanged, e.g. 'runner=DirectRunner,direct_num_workers=2,"
                            "direct_running_mode=multi_processing' (needs sign-datasets[beam])")
    build.set_defaults(func=cmd_build)

    report = commands.add_parser("report", help="print the cleaning and quality reports of a built dataset")
    report.add_argument("name", help="e.g. sign_mnist_csv/dirty")
    _add_data_dir(report)
    report.set_defaults(func=cmd_report)

    demo_parser = commands.add_parser("demo", help="replica -> builds -> a small CNN, end to end")
    demo_parser.add_argument("--out", default="demo-output",
                             help="folder for the data dir, the replica and the pictures")
    demo_parser.add_argument("--scale", type=float, default=0.1, help="replica scale")
    demo_parser.add_argument("--epochs", type=int, default=2)
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.set_defaults(func=cmd_demo)

    bench_parser = commands.add_parser(
        "bench", help="run every benchmark of scripts/ and rewrite docs/BENCHMARKS.md")
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(func=cmd_bench)

    catalog_commands.add_commands(commands)
    exports.add_commands(commands)
    training.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return runner.run(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
