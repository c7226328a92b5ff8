"""sign-datasets: messy dataset sources turned into clean, cached TFDS datasets.

Importing the package registers every builder with TFDS, so that
`tfds.load("sign_mnist_csv")` works from any project, registers every dataset
of the team catalogs named by SIGN_DATASETS_CATALOG (catalog_file.py), and
lets `tfds.show_examples` draw the raw-pixel datasets. `sign_datasets.pipeline()`
is the fast training read path (sign_datasets/pipeline.py).
"""

__version__ = "0.1.0"

from sign_datasets import determinism as _determinism

_determinism.install()

# Registration happens on import of each builder module.
from sign_datasets.builders import registered as _registered  # noqa: E402,F401

# The project's catalog.toml, then the team catalogs of SIGN_DATASETS_CATALOG:
# a bad catalog stops the import with its file, entry and field.
from sign_datasets import catalog_file as _catalog_file  # noqa: E402

_catalog_file.register_from_env()

from sign_datasets import tfds_logs as _tfds_logs  # noqa: E402

_tfds_logs.quiet_tfds_internal_warnings()

from sign_datasets import visualize as _visualize  # noqa: E402

_visualize.register_show_examples()

# TensorFlow itself is imported only when a pipeline is built.
from sign_datasets.pipeline import pipeline  # noqa: E402,F401
