"""Imports every builder folder so that TFDS registers it by name.

A folder of builders/ with a `<name>_dataset_builder.py` is a dataset; adding
one needs no edit here.
"""

import importlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent

BUILDERS = tuple(sorted(
    folder.name for folder in _HERE.iterdir()
    if (folder / f"{folder.name}_dataset_builder.py").is_file()
))

for _name in BUILDERS:
    importlib.import_module(f"sign_datasets.builders.{_name}.{_name}_dataset_builder")
