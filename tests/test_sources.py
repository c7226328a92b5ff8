"""SIGN_DATASETS_SOURCE: every accepted form, and clear errors for the rest."""

import pytest

from sign_datasets.io import sources


def test_default_is_the_real_bucket(monkeypatch):
    monkeypatch.delenv("SIGN_DATASETS_SOURCE", raising=False)
    assert sources.source_base() == "https://storage.googleapis.com/platzi-tf2/"
    assert sources.object_url("databasesLoadData.zip") == \
        "https://storage.googleapis.com/platzi-tf2/databasesLoadData.zip"


@pytest.mark.parametrize("value", ["http://127.0.0.1:8000", "http://127.0.0.1:8000/"])
def test_http_base_gets_one_trailing_slash(monkeypatch, value):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", value)
    assert sources.object_url("a/b.jpg") == "http://127.0.0.1:8000/a/b.jpg"


def test_folder_and_file_url_become_the_same_file_url(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(tmp_path))
    from_folder = sources.source_base()
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", tmp_path.as_uri())
    assert sources.source_base() == from_folder == tmp_path.resolve().as_uri() + "/"
    url = sources.object_url("databasesLoadData.zip")
    assert sources.local_path(url) == tmp_path.resolve() / "databasesLoadData.zip"


def test_urls_inside_files_are_rebased(monkeypatch):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", "http://127.0.0.1:9/")
    real = "https://storage.googleapis.com/platzi-tf2/img_mnist/29_B.jpg"
    assert sources.rebase_url(real) == "http://127.0.0.1:9/img_mnist/29_B.jpg"
    elsewhere = "https://example.org/img.jpg"
    assert sources.rebase_url(elsewhere) == elsewhere


def test_missing_folder_and_odd_scheme_are_clear_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(tmp_path / "nope"))
    with pytest.raises(sources.SourceConfigError, match="does not exist.*replica make"):
        sources.source_base()
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", "ftp://host/path")
    with pytest.raises(sources.SourceConfigError, match="unsupported scheme 'ftp'"):
        sources.source_base()
