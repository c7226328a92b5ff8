"""TFDS's warning about its own use of a deprecated attribute stays out of
users' output; the same warning for the user's own use stays in."""

from __future__ import annotations

import subprocess
import sys

DTYPE_WARNING = "`FeatureConnector.dtype` is deprecated"

DECODE = """
import numpy as np, tensorflow as tf, tensorflow_datasets as tfds
{setup}
feature = tfds.features.Tensor(shape=(2,), dtype=np.uint8, encoding="bytes")
print(feature.decode_example(tf.constant(b"ab")).numpy().tolist())
{after}
"""


def _stderr_and_stdout(setup: str, after: str = "") -> tuple[str, str]:
    # A fresh process: TFDS logs the warning only for its first ten calls.
    done = subprocess.run([sys.executable, "-c", DECODE.format(setup=setup, after=after)],
                          capture_output=True, text=True, timeout=300, check=True)
    return done.stderr, done.stdout


def test_decoding_a_bytes_tensor_logs_no_deprecation_once_sign_datasets_is_imported():
    stderr, stdout = _stderr_and_stdout("")
    assert DTYPE_WARNING in stderr  # what TFDS alone prints
    assert stdout.strip() == "[97, 98]"
    stderr, stdout = _stderr_and_stdout("import sign_datasets")
    assert DTYPE_WARNING not in stderr
    assert stdout.strip() == "[97, 98]"


def test_the_users_own_use_of_the_deprecated_attribute_still_warns():
    # A new feature: the attribute is cached once read.
    stderr, _ = _stderr_and_stdout(
        "import sign_datasets", after="tfds.features.Tensor(shape=(2,), dtype=np.uint8).dtype")
    assert DTYPE_WARNING in stderr
