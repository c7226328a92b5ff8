"""Fetch and source-download settings read from the environment
(io/fetch_settings.py): a bad value names its variable and value.
"""

from __future__ import annotations

import pytest

from sign_datasets.io import fetch_settings
from sign_datasets.io.settings import FetchConfigError


@pytest.mark.parametrize("name, value", [
    ("SIGN_DATASETS_FETCH_WORKERS", "lots"), ("SIGN_DATASETS_FETCH_WORKERS", "0"),
    ("SIGN_DATASETS_FETCH_WORKERS", ""), ("SIGN_DATASETS_FETCH_TIMEOUT", "-1"),
    ("SIGN_DATASETS_FETCH_TIMEOUT", "nan"), ("SIGN_DATASETS_FETCH_TIMEOUT", "1,2,3"),
    ("SIGN_DATASETS_FETCH_RETRIES", "-2"), ("SIGN_DATASETS_FETCH_BACKOFF", "inf"),
    ("SIGN_DATASETS_FETCH_MAX_BYTES", "1e9"), ("SIGN_DATASETS_ALLOWED_HOSTS", "http://x.org/path"),
    ("SIGN_DATASETS_ALLOWED_HOSTS", "gs://Bad Bucket"), ("SIGN_DATASETS_SOURCE_MAX_BYTES", "-5"),
    ("SIGN_DATASETS_SOURCE_TIMEOUT", "0"),
])
def test_bad_settings_name_the_variable_and_value(name, value):
    with pytest.raises(FetchConfigError) as bad:
        fetch_settings.source_settings({name: value})
    message = str(bad.value)
    assert "\n" not in message and name in message and repr(value.strip())[1:-1] in message
