"""The `sign-datasets` command line."""

from sign_datasets.cli.commands import main  # noqa: F401  (the console script's entry point)
