"""The TFDS-style builder tests read their dummy_data/ as the source.

Bucket objects are not fetched through TFDS's download manager (whose
`download` these tests mock) but through the project's URL policy
(`downloads.download_source`). Each dummy_data/ folder has the bucket's
layout, so pointing SIGN_DATASETS_SOURCE at it makes the builders read the
dummy objects where they are, through the real download path.
"""

import pytest


@pytest.fixture(autouse=True)
def dummy_data_is_the_source(request, monkeypatch):
    dummy = getattr(request.cls, "dummy_data", None) if request.cls else None
    if dummy is not None:
        monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(dummy))
