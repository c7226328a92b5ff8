"""Team catalogs in force (catalog/teams.py): registered on `import
sign_datasets` from SIGN_DATASETS_CATALOG, and a name used once across the
project, the team catalogs and TFDS.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from catalog_helpers import bad_catalog, entry_text
from conftest import REPO, quiet_env

pytest_plugins = ("catalog_fixtures",)


def test_a_name_the_project_has_is_a_duplicate(tmp_path):
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.catalog.teams import register_file

    path = bad_catalog(tmp_path, entry_text(name="sign_mnist_csv"))
    with pytest.raises(CatalogError) as error:
        register_file(path)
    message = str(error.value)
    assert str(path) in message and "entry 'sign_mnist_csv'" in message
    assert "field 'name'" in message and "duplicate name" in message
    assert "catalog.toml" in message  # where the first one is


def test_a_name_tfds_has_is_refused(tmp_path):
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.catalog.teams import register_file

    path = bad_catalog(tmp_path, entry_text(name="mnist"))
    with pytest.raises(CatalogError) as error:
        register_file(path)
    message = str(error.value)
    assert str(path) in message and "entry 'mnist'" in message and "field 'name'" in message
    assert "clashes with a dataset TFDS already has" in message


def test_a_second_catalog_reusing_a_team_name_is_a_duplicate(team, tmp_path):
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.catalog.teams import register_file

    path = bad_catalog(tmp_path, entry_text(name="team_shapes"))
    with pytest.raises(CatalogError) as error:
        register_file(path)
    assert "duplicate name" in str(error.value) and str(team["catalog"]) in str(error.value)



def test_a_bad_catalog_stops_import_sign_datasets(tmp_path):
    path = bad_catalog(tmp_path, entry_text() + "colour = 3\n")
    env = quiet_env(SIGN_DATASETS_CATALOG=str(path))
    done = subprocess.run([sys.executable, "-c", "import sign_datasets"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert done.returncode != 0
    assert f"{path}: entry 'team_ok': field 'colour': unknown key" in done.stderr


def test_catalog_env_registers_datasets_on_import(team):
    env = quiet_env(SIGN_DATASETS_CATALOG=f"{team['catalog']}")
    code = ("import sign_datasets, tensorflow_datasets as tfds; "
            "b = tfds.builder('team_shapes'); "
            "print(b.info.full_name, b.info.features['label'].names)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=str(REPO))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "team_shapes/1.0.0 ['circle', 'square', 'triangle']" in done.stdout

