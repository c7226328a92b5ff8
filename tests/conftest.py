"""Shared fixtures: one replica and one loopback server per test session.

Tests go through the real download path: a real HTTP server on 127.0.0.1,
real zips, real TFDS builds. Nothing is mocked.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

# Helper modules that assert, or that test modules also name in
# pytest_plugins: their asserts explain a failure as a test's do.
pytest.register_assert_rewrite("image_helpers", "zip_helpers", "catalog_refusals", "loopback_http")

REPO = Path(__file__).resolve().parents[1]
REAL_BUCKET_COPY = REPO.parent / "shared" / "reference" / "platzi-tf2"


@pytest.fixture(scope="session")
def replica_dir(tmp_path_factory) -> Path:
    from sign_datasets.replica import DEFAULT_SCALE, make_replica
    root = tmp_path_factory.mktemp("replica")
    make_replica(root, scale=DEFAULT_SCALE, seed=0)
    return root


@pytest.fixture(scope="session")
def replica_manifest(replica_dir) -> dict:
    import json
    return json.loads((replica_dir / "replica-manifest.json").read_text())


@pytest.fixture(scope="session")
def replica_server(replica_dir):
    from sign_datasets.replica import ReplicaServer
    with ReplicaServer(replica_dir, port=0) as server:
        yield server


@pytest.fixture
def source(replica_server, monkeypatch) -> str:
    """Points SIGN_DATASETS_SOURCE at the served replica for one test."""
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
    return replica_server.base_url


@pytest.fixture
def real_bucket_copy() -> Path:
    """The real small objects from ../shared, when this checkout has them."""
    if not REAL_BUCKET_COPY.is_dir():
        pytest.skip("../shared/reference/platzi-tf2 is not present")
    return REAL_BUCKET_COPY


def quiet_env(**extra: str) -> dict:
    """Environment for subprocesses: quiet TensorFlow, the repo's Python."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def team_catalog(tmp_path_factory):
    """test_beam_catalog's team catalog, registered once per process (its
    names would collide if two modules registered it)."""
    from test_beam_catalog import make_team_catalog
    yield from make_team_catalog(tmp_path_factory)
