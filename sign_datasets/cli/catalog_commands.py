"""The catalog commands of `sign-datasets`: list, info, show, new, catalog."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sign_datasets.catalog import page, proposal, registry
from sign_datasets.catalog.entries import CatalogError
from sign_datasets.catalog.teams import catalog_paths_from_env
from sign_datasets.read import visualize


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS_DATA_DIR or "
                                           "~/tensorflow_datasets)")


def cmd_list(args) -> int:
    statuses = [registry.status(name, args.data_dir) for name in registry.all_dataset_names()]
    print(registry.format_status_table(statuses))
    return 0


def cmd_info(args) -> int:
    print(registry.describe(args.name, args.data_dir))
    return 0


def cmd_show(args) -> int:
    out = args.out or f"{args.name.replace('/', '_')}-{args.split}.png"
    kinds = visualize.picture_formats()
    if Path(out).suffix.lower().lstrip(".") not in kinds:
        print(f"error: --out {out}: not a picture file name; end it in one of "
              f".{', .'.join(sorted(kinds))}", file=sys.stderr)
        return 2
    builder = registry.prepared_builder(args.name, args.data_dir, build=not args.no_build)
    if args.split not in builder.info.splits:
        print(f"error: {args.name} has no split {args.split!r}; it has "
              f"{', '.join(builder.info.splits)}", file=sys.stderr)
        return 2
    path = visualize.example_grid(args.name, data_dir=args.data_dir, out=out, split=args.split,
                                  rows=args.rows, cols=args.cols)
    print(path)
    return 0


def default_catalog() -> Path:
    """The first catalog of SIGN_DATASETS_CATALOG, else ./catalog.toml."""
    paths = catalog_paths_from_env()
    return paths[0] if paths else Path("catalog.toml")


def cmd_new(args) -> int:
    catalog = Path(args.catalog) if args.catalog else default_catalog()
    # A new catalog file is created; a new folder is not (a typo would hide it).
    if not catalog.parent.is_dir():
        print(f"error: {catalog.parent}: no such folder for the catalog {catalog.name}; create "
              "the folder first or choose another --catalog", file=sys.stderr)
        return 2
    try:
        text = proposal.propose(args.name, args.format, args.source, catalog, member=args.member)
    except (proposal.ProposalError, CatalogError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    proposal.append(catalog, text)
    print(text.lstrip("\n"))
    print(f"appended to {catalog}; review it before building "
          f"(SIGN_DATASETS_CATALOG={catalog.resolve()} sign-datasets build {args.name})",
          file=sys.stderr)
    return 0


def cmd_catalog(args) -> int:
    for name in args.names:
        registry.find_builder(name)  # an unknown name is one line, before any page
    index = page.write_site(Path(args.out), data_dir=args.data_dir, names=args.names or None)
    print(index)
    return 0


def add_commands(commands) -> None:
    listing = commands.add_parser("list", help="every dataset: version, built or not, examples "
                                               "per split, size on disk, data dir")
    _data_dir(listing)
    listing.set_defaults(func=cmd_list)

    info = commands.add_parser("info", help="features, splits, counts, cleaning report and "
                                            "release notes of one dataset")
    info.add_argument("name", help="e.g. sign_mnist_csv/dirty")
    _data_dir(info)
    info.set_defaults(func=cmd_info)

    show = commands.add_parser("show", help="a PNG grid of examples with their labels")
    show.add_argument("name")
    show.add_argument("--split", default="train")
    show.add_argument("--out", help="PNG file (default NAME-SPLIT.png)")
    show.add_argument("--rows", type=int, default=4)
    show.add_argument("--cols", type=int, default=8)
    show.add_argument("--no-build", action="store_true",
                      help="refuse a dataset not built yet instead of building it first")
    _data_dir(show)
    show.set_defaults(func=cmd_show)

    new = commands.add_parser("new", help="inspect a source and append a proposed entry to a "
                                          "catalog file")
    new.add_argument("name", help="the dataset's name (lowercase, digits, '_')")
    new.add_argument("--format", required=True,
                     choices=("csv_pixels", "json_urls", "base64_json", "zip_folders"))
    new.add_argument("--source", required=True, help="URL or path of the source")
    new.add_argument("--member", help="the file inside a zip source (csv/json formats)")
    new.add_argument("--catalog", help="catalog file to append to (default: the first of "
                                       "SIGN_DATASETS_CATALOG, else ./catalog.toml)")
    new.set_defaults(func=cmd_new)

    site = commands.add_parser("catalog", help="write a static HTML catalog of the datasets")
    site.add_argument("--out", required=True, help="folder for the site")
    site.add_argument("names", nargs="*", help="datasets/configs (default: every one)")
    _data_dir(site)
    site.set_defaults(func=cmd_catalog)
