"""sign-datasets: messy dataset sources turned into clean, cached TFDS datasets.

Importing the package registers every builder with TFDS, so that
`tfds.load("sign_mnist_csv")` works from any project.
"""

__version__ = "0.1.0"

from sign_datasets import determinism as _determinism

_determinism.install()

# Registration happens on import of each builder module.
from sign_datasets.builders import registered as _registered  # noqa: E402,F401
