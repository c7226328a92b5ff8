"""sign-datasets: messy dataset sources turned into clean, cached TFDS datasets.

Importing the package registers every builder with TFDS, so that
`tfds.load("sign_mnist_csv")` works from any project, registers every dataset
of the team catalogs named by SIGN_DATASETS_CATALOG (catalog/teams.py), and
lets `tfds.show_examples` draw the raw-pixel datasets. `sign_datasets.pipeline()`
is the fast training read path (sign_datasets/read/pipeline.py);
`sign_datasets.batches()` reads the same builds as NumPy arrays without
TensorFlow (sign_datasets/read/batches.py).
"""

__version__ = "0.1.0"

import sys as _sys

# The errors a user can fix; these modules import no builder, so they load
# even when a builder's import is what fails.
from sign_datasets.catalog.entries import CatalogError as _CatalogError
from sign_datasets.catalog.paths import PathRefused as _PathRefused
from sign_datasets.io.settings import SettingsError as _SettingsError
from sign_datasets.io.sources import SourceConfigError as _SourceConfigError


def _imported_for_command_line() -> bool:
    """Whether this import is Python loading the package on the way to one of
    our command-line modules (the console script, `python -m sign_datasets`).

    A package runs before its submodules; the import machinery's frames above
    this one name the module actually asked for.
    """
    wanted = {"sign_datasets.cli", "sign_datasets.cli.commands", "sign_datasets.__main__",
              "sign_datasets.cli.training_commands"}
    frame = _sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen "):  # importlib, runpy
            names = frame.f_locals
            if names.get("name") in wanted or names.get("mod_name") in wanted:
                return True
        frame = frame.f_back
    return False


def _is_users_error(error: Exception) -> bool:
    return isinstance(error, (_CatalogError, _PathRefused, _SettingsError, _SourceConfigError))


# A broken catalog or setting met here, kept for the command line to report
# as one line (`--help` included); anyone else gets the exception.
startup_error: Exception | None = None
try:
    # Registration happens on import of each builder module; they read the
    # project's catalog.toml.
    from sign_datasets.builders import registered as _registered  # noqa: F401

    # Then the team catalogs of SIGN_DATASETS_CATALOG: a bad catalog stops
    # the import with its file, entry and field.
    from sign_datasets.catalog import teams as _teams

    _teams.register_from_env()
except Exception as _error:  # noqa: BLE001 - re-raised unless the CLI reports it
    if not (_is_users_error(_error) and _imported_for_command_line()):
        raise
    startup_error = _error

from sign_datasets.generate import tfds_logs as _tfds_logs  # noqa: E402

_tfds_logs.quiet_tfds_internal_warnings()

from sign_datasets.read import visualize as _visualize  # noqa: E402

_visualize.register_show_examples()

# TensorFlow itself is imported only when a pipeline is built; batches()
# never imports it.
from sign_datasets.read.batches import batches  # noqa: E402,F401
from sign_datasets.read.random_access import ArrayRecordSource  # noqa: E402,F401
from sign_datasets.read.pipeline import pipeline  # noqa: E402,F401


def __getattr__(name: str):
    # Beam resolves `runner=sign_datasets.DaskRunner` through this attribute;
    # it imports Beam and Dask, so only when a build names it.
    if name == "DaskRunner":
        from sign_datasets.generate.dask_runner import DaskRunner

        return DaskRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
