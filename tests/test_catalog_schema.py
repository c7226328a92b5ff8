"""What a catalog file may say (catalog/schema.py, loader.py, paths.py): each
invalid catalog gives a message naming file, entry and field; the README's
example is valid; the project's catalog declares what its builders build.
"""

from __future__ import annotations

import pytest

from catalog_helpers import bad_catalog, entry_text
from conftest import REPO


INVALID = {
    "unknown_key": (lambda: entry_text() + 'colour = "blue"\n', "'team_ok'", "colour",
                    "unknown key"),
    "unknown_key_in_image": (lambda: entry_text().replace('mode = "L"', 'mode = "L", depth = 8'),
                             "'team_ok'", "image.depth", "unknown key"),
    "wrong_type": (lambda: entry_text().replace('version = "1.0.0"', "version = 1"),
                   "'team_ok'", "version", "expected a string, found an integer"),
    "wrong_type_size": (lambda: entry_text().replace("size = [8, 8]", 'size = "8x8"'),
                        "'team_ok'", "image.size", "expected an array, found a string"),
    "missing_class_names": (lambda: entry_text().replace('classes = ["circle", "square"]\n', ""),
                            "'team_ok'", "classes", "missing"),
    "empty_class_names": (lambda: entry_text().replace('["circle", "square"]', "[]"),
                          "'team_ok'", "classes", "empty"),
    "duplicate_name_in_file": (lambda: entry_text() + "\n" + entry_text(), "'team_ok'", "name",
                               "duplicate name"),
    "neither_url_nor_path": (lambda: entry_text(location="ftp://files.example.org/shapes.csv"),
                             "'team_ok'", "sources[0].location", "neither a URL"),
    "url_without_host": (lambda: entry_text(location="https:///shapes.csv"),
                         "'team_ok'", "sources[0].location", "neither a URL"),
    "outside_allowed_roots": (lambda: entry_text(location="/etc/passwd"),
                              "'team_ok'", "sources[0].location", "outside the allowed roots"),
    "escapes_by_dotdot": (lambda: entry_text(location="../../elsewhere/shapes.csv"),
                          "'team_ok'", "sources[0].location", "outside the allowed roots"),
    "unknown_format": (lambda: entry_text().replace('"csv_pixels"', '"parquet"'),
                       "'team_ok'", "format", "not one of csv_pixels"),
    "entry_without_name": (lambda: entry_text().replace('name = "team_ok"\n', ""),
                           "#1 (no name)", "name", "missing"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_catalog_names_file_entry_and_field(case, tmp_path):
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.catalog.loader import load_catalog

    make, entry, field, problem = INVALID[case]
    path = bad_catalog(tmp_path, make())
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    message = str(error.value)
    assert message.startswith(str(path) + ": "), message
    assert f"entry {entry}" in message, message
    assert f"field {field!r}" in message, message
    assert problem in message, message



def test_allowed_roots_setting_admits_another_folder(tmp_path, monkeypatch):
    from sign_datasets.catalog.loader import load_catalog
    from sign_datasets.catalog.paths import ALLOWED_ROOTS_ENV

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    catalog_dir = tmp_path / "catalogs"
    catalog_dir.mkdir()
    path = bad_catalog(catalog_dir, entry_text(location=str(elsewhere / "shapes.csv")))
    monkeypatch.setenv(ALLOWED_ROOTS_ENV, str(elsewhere))
    (entry,) = load_catalog(path)
    assert entry.sources[0].kind == "path"
    assert entry.sources[0].target == str((elsewhere / "shapes.csv").resolve())



def test_the_readme_example_catalog_is_valid(tmp_path):
    from sign_datasets.catalog import loader, teams

    readme = (REPO / "README.md").read_text()
    start = readme.index("```toml\n# /shared/catalog/team.toml\n") + len("```toml\n")
    text = readme[start:readme.index("```", start)]
    path = tmp_path / "team.toml"
    path.write_text(text)
    entries = loader.load_catalog(path)
    # Not names TFDS has (the team catalog of catalog_helpers uses the same names).
    ours = {entry.name for entry in teams.all_entries()}
    assert not {entry.name for entry in entries} & (teams._tfds_names() - ours)
    shapes, pets = entries
    assert (shapes.name, shapes.format, shapes.splits) == ("team_shapes", "csv_pixels",
                                                          ("train", "test"))
    assert shapes.sources[0].target == str(tmp_path / "shapes" / "train.csv")
    assert shapes.sources[1].kind == "url" and pets.sources[0].kind == "url"
    assert [c.name for c in pets.configs] == ["native", "128x128"]



# --- the project's own catalog -------------------------------------------------------------

def test_the_seven_builders_declare_what_the_project_catalog_says():
    import tensorflow_datasets as tfds

    from sign_datasets.catalog.loader import project_entries
    from sign_datasets.core.labels import CSV_LABEL_TO_INDEX

    entries = {e.name: e for e in project_entries()}
    assert sorted(entries) == sorted(
        p.name for p in (REPO / "builders").iterdir() if (p / f"{p.name}_dataset_builder.py").exists())
    for name, entry in entries.items():
        cls = tfds.builder_cls(name)
        assert str(cls.VERSION) == entry.version, name
        assert cls.RELEASE_NOTES == entry.release_notes and entry.version in cls.RELEASE_NOTES
        assert [c.name for c in cls.BUILDER_CONFIGS] == [c.name for c in entry.configs], name
        builder = tfds.builder(name)
        assert builder.info.features["label"].names == list(entry.classes), name
        channels = builder.info.features["image"].shape[-1]
        assert channels == entry.channels, name
    csv = entries["sign_mnist_csv"]
    assert dict(zip(csv.file_labels(), range(24))) == CSV_LABEL_TO_INDEX

