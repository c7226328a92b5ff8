"""The team catalog of the catalog tests, as fixtures.

Test modules that use `team` or `built` name this module in `pytest_plugins`:
the catalog is registered once per process (a registration lasts for the
process; a second one with another server URL would be a duplicate name),
and both its datasets are built once.
"""

from __future__ import annotations

import hashlib

import pytest

from catalog_helpers import make_pets_zip, make_shapes_csvs, team_catalog_text

# Lets a build fetch from the team's loopback server.
ALLOWED_HOSTS_ENV = "SIGN_DATASETS_ALLOWED_HOSTS"


@pytest.fixture(scope="session")
def team_registered(tmp_path_factory):
    """The team's folder, served over HTTP too, and its registered catalog."""
    from sign_datasets.catalog import teams
    from sign_datasets.replica import ReplicaServer

    root = tmp_path_factory.mktemp("team")
    pets = make_pets_zip(root / "bucket" / "pets.zip")
    shapes = make_shapes_csvs(root / "shapes")
    sha = hashlib.sha256((root / "bucket" / "pets.zip").read_bytes()).hexdigest()
    with ReplicaServer(root / "bucket", port=0) as server:
        catalog = root / "catalog.toml"
        catalog.write_text(team_catalog_text(server.base_url + "pets.zip", sha))
        teams.register_file(catalog)
        yield {"root": root, "catalog": catalog, "pets": pets, "shapes": shapes,
               "server": server, "hosts": f"127.0.0.1:{server.port}"}


@pytest.fixture
def team(team_registered, monkeypatch):
    """The registered team catalog; a catalog may name a loopback server only
    when the one who builds allows it, as this test does."""
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, team_registered["hosts"])
    return team_registered


@pytest.fixture(scope="session")
def built(team_registered, tmp_path_factory):
    """Both team datasets built into two data dirs."""
    import tensorflow_datasets as tfds

    dirs = {"team_pets": tmp_path_factory.mktemp("data_pets"),
            "team_shapes": tmp_path_factory.mktemp("data_shapes")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ALLOWED_HOSTS_ENV, team_registered["hosts"])
        for name, data_dir in dirs.items():
            tfds.builder(name, data_dir=str(data_dir)).download_and_prepare()
    return dirs
