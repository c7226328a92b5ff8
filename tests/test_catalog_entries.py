"""Sources of a catalog entry that share a file name (catalog/entries.py):
each keeps a distinct label that drop examples trace back to, a lone file
name keeps its own label, and a source named twice is refused.
"""

from __future__ import annotations

from catalog_helpers import SHAPE_FILE_LABELS, csv_text, entry_text, shape_row
from catalog_refusals import assert_refused, write

pytest_plugins = ("catalog_refusals",)


# --- sources sharing a file name ----------------------------------------------------------

def test_sources_sharing_a_file_name_keep_distinct_traceable_keys(team_dir, tmp_path):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams

    for year, seed in (("2023", 10), ("2024", 20)):
        rows = [shape_row(SHAPE_FILE_LABELS[i % 2], seed + i) for i in range(3)]
        rows.append(shape_row(4, seed + 9))                      # unknown_label
        write(team_dir / year / "data.csv", csv_text(rows))
    text = entry_text(name="trust_years").replace(
        '[{ location = "shapes.csv" }]',
        '[{ location = "2023/data.csv" }, { location = "2024/data.csv" }]')
    text += "csv_labels = [3, 5]\n"
    catalog = write(team_dir / "years.toml", text)
    (entry,) = teams.register_file(catalog)
    assert [s.label for s in entry.sources] == ["2023/data.csv", "2024/data.csv"]
    builder = tfds.builder("trust_years", data_dir=str(tmp_path / "data"))
    builder.download_and_prepare()
    report = builder.info.metadata["cleaning"]["train"]
    assert report["kept"] == 6 and report["drops"] == {"unknown_label": 2}
    where = report["examples"]["unknown_label"]
    assert any(w.startswith("2023/data.csv:") for w in where), where
    assert any(w.startswith("2024/data.csv:") for w in where), where


def test_a_lone_file_name_keeps_its_label_and_repeats_are_refused(team_dir):
    from sign_datasets.catalog.loader import load_catalog

    text = entry_text().replace('[{ location = "shapes.csv" }]',
                                '[{ location = "a/data.csv" }, { location = "b/other.csv" }]')
    (entry,) = load_catalog(write(team_dir / "ok.toml", text))
    assert [s.label for s in entry.sources] == ["data.csv", "other.csv"]
    text = entry_text().replace('[{ location = "shapes.csv" }]',
                                '[{ location = "a/data.csv" }, { location = "a/data.csv" }]')
    assert_refused(write(team_dir / "twice.toml", text), "'team_ok'", "sources[1].location",
                   "repeats sources[0]")
