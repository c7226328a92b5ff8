"""The `sign-datasets` command line.

TensorFlow is imported only by the commands that need it, so `replica` and
`--help` answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", dest="source_base",
        help="base URL, file:// URL or folder that replaces the course bucket "
             "(same as SIGN_DATASETS_SOURCE)")


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS_DATA_DIR or "
                                           "~/tensorflow_datasets)")


def _apply_source(args) -> None:
    if getattr(args, "source_base", None):
        from sign_datasets.io import sources
        os.environ[sources.SOURCE_ENV] = args.source_base
        sources.source_base()  # fail now, with the message, if it is unusable


def cmd_replica_make(args) -> int:
    from sign_datasets.replica import make_replica
    manifest = make_replica(Path(args.dir), scale=args.scale, seed=args.seed, progress=True)
    total = sum(f.stat().st_size for f in Path(args.dir).rglob("*") if f.is_file())
    print(f"replica written to {Path(args.dir).resolve()} (scale {manifest['scale']}, "
          f"seed {manifest['seed']}, {total / 1e6:.1f} MB)")
    return 0


def cmd_replica_serve(args) -> int:
    import time

    from sign_datasets.replica import ReplicaServer
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
    from tensorflow_datasets.core import constants
    return args.data_dir or constants.get_default_data_dir()


def cmd_build(args) -> int:
    from sign_datasets.catalog import registry
    from sign_datasets.cli import builds
    from sign_datasets.io import guards
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
            from sign_datasets.generate import beam
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
    from sign_datasets.catalog import registry
    from sign_datasets.core.cleaning import format_report
    try:
        reports = registry.stored_report(args.name, data_dir=args.data_dir)
    except registry.NotBuiltError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_report(reports, title=f"Cleaning report of {args.name}"))
    return 0


def cmd_demo(args) -> int:
    from sign_datasets.cli import demo
    return demo.run(out=Path(args.out), scale=args.scale, epochs=args.epochs, seed=args.seed)


def cmd_bench(args) -> int:
    from sign_datasets.cli import bench
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
    from sign_datasets.replica import DEFAULT_SCALE
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

    report = commands.add_parser("report", help="print the cleaning report of a built dataset")
    report.add_argument("name", help="e.g. sign_mnist_csv/dirty")
    _add_data_dir(report)
    report.set_defaults(func=cmd_report)

    demo = commands.add_parser("demo", help="replica -> builds -> a small CNN, end to end")
    demo.add_argument("--out", default="demo-output",
                      help="folder for the data dir, the replica and the pictures")
    demo.add_argument("--scale", type=float, default=0.1, help="replica scale")
    demo.add_argument("--epochs", type=int, default=2)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    bench_parser = commands.add_parser(
        "bench", help="run every benchmark of scripts/ and rewrite docs/BENCHMARKS.md")
    from sign_datasets.cli.bench import add_arguments as add_bench_arguments
    add_bench_arguments(bench_parser)
    bench_parser.set_defaults(func=cmd_bench)

    from sign_datasets.cli.catalog_commands import add_commands as add_catalog_commands
    add_catalog_commands(commands)

    from sign_datasets.cli.training_commands import add_commands as add_training_commands
    add_training_commands(commands)
    return parser


def report_error(error: BaseException) -> int | None:
    """Prints the one line for a user's error and returns its exit code (2);
    None for a bug of ours, which the caller re-raises."""
    from sign_datasets.cli import errors
    line = errors.users_message(error)
    if line is None:
        return None
    print(f"error: {line}", file=sys.stderr)
    return 2


def _check_data_dir(data_dir: str | None) -> None:
    """--data-dir of any command: given, it names a folder (or a remote one)."""
    from sign_datasets.io.settings import SettingsError
    if data_dir is None or "://" in data_dir:
        return
    if not data_dir.strip():
        raise SettingsError("--data-dir is empty; give a folder, or leave the option out for "
                            "TFDS's default")
    from sign_datasets.io import guards
    guards.no_file_for_folder(data_dir, "--data-dir")


def run(make_parser, argv: list[str] | None = None) -> int:
    """Parses and runs a command; a user's error becomes one line and exit 2.

    A broken catalog or setting met while importing the package is reported
    first, whatever the command (--help included); then every setting is
    checked once, before any work.
    """
    # TensorFlow's C++ start-up chatter buries our tables; users who want it
    # can still set the variable themselves.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import sign_datasets
    from sign_datasets.cli import settings_check
    try:
        if sign_datasets.startup_error is not None:
            settings_check.check_all()  # a bad setting is often the cause: name it
            raise sign_datasets.startup_error
        args = make_parser().parse_args(argv)
        _apply_source(args)  # --source replaces SIGN_DATASETS_SOURCE, so check it instead
        settings_check.check_all()
        _check_data_dir(getattr(args, "data_dir", None))
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI's one place to turn errors into words
        code = report_error(error)
        if code is None:
            raise
        return code


def main(argv: list[str] | None = None) -> int:
    return run(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
