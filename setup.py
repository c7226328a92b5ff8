"""Package list only; everything else is in setup.cfg.

builders/ and models/ keep TFDS's top-level folder layout in the repo, but
install as sign_datasets.builders and sign_datasets.models, so that the only
top-level name in site-packages is sign_datasets.
"""

from setuptools import find_packages, setup

packages = find_packages(include=["sign_datasets", "sign_datasets.*"])
for folder in ("builders", "models"):
    packages.append(f"sign_datasets.{folder}")
    packages += [f"sign_datasets.{folder}.{sub}" for sub in find_packages(folder)]

setup(packages=packages)
