"""The team catalogs in force: each file of SIGN_DATASETS_CATALOG checked and
its datasets registered with TFDS, one generated builder class per entry.

`import sign_datasets` runs `register_from_env` after the course builders
are registered. A name may be used once across the project's catalog, the
team catalogs and TFDS's own datasets.
"""

from __future__ import annotations

from pathlib import Path

from tensorflow_datasets.core.registered import list_imported_builders

from sign_datasets.catalog import generated
from sign_datasets.catalog.entries import Entry
from sign_datasets.catalog.loader import (CATALOG_ENV, PROJECT_CATALOG, load_catalog,
                                          project_entries)
from sign_datasets.io import settings

# name -> (entry, generated class) of every team dataset registered in this process
_TEAM: dict[str, tuple[Entry, type]] = {}


def team_entries() -> list[Entry]:
    return [entry for entry, _ in _TEAM.values()]


def all_entries() -> list[Entry]:
    return project_entries() + team_entries()


def catalog_paths_from_env() -> list[Path]:
    return settings.path_list(CATALOG_ENV)


def _tfds_names() -> set[str]:
    return set(list_imported_builders())


def check_names(entries: list[Entry]) -> None:
    """Refuses a name used twice (by the project or an earlier catalog) or one
    TFDS already has."""
    seen: dict[str, Entry] = {e.name: e for e in project_entries()}
    seen.update({name: entry for name, (entry, _) in _TEAM.items()})
    ours = set(seen)
    tfds_names = _tfds_names()
    for entry in entries:
        first = seen.get(entry.name)
        if first is not None and first is not entry:
            where = "the project's catalog (sign_datasets/catalog/catalog.toml)" \
                if first.file == PROJECT_CATALOG else f"{first.file} (entry #{first.index + 1})"
            raise entry.error("name", f"duplicate name: {where} declares {entry.name!r} too")
        if entry.name in tfds_names and entry.name not in ours:
            raise entry.error("name", f"{entry.name!r} clashes with a dataset TFDS already has; "
                                      "choose another name")
        seen[entry.name] = entry


def register_file(path: Path | str) -> list[Entry]:
    """Validates a team catalog and registers its datasets with TFDS.

    All-or-nothing: one bad entry registers none of the file's. A file already
    registered unchanged in this process is a no-op.
    """
    entries = load_catalog(path)
    fresh = [e for e in entries if not (e.name in _TEAM and _TEAM[e.name][0] == e)]
    check_names(fresh)
    for entry in fresh:
        _TEAM[entry.name] = (entry, generated.make_class(entry))
    return entries


def register_from_env() -> list[Entry]:
    """What `import sign_datasets` runs: the project catalog, then every file
    of SIGN_DATASETS_CATALOG."""
    project_entries()
    registered = []
    for path in catalog_paths_from_env():
        registered += register_file(path)
    return registered

