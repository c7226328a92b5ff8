"""A team catalog is untrusted input (issue 17, docs/SECURITY.md).

One test (or one parametrized group) per point: names that become paths,
class names, caps, the paths a catalog names (checked when it is read and
again right before the build opens them), sources sharing a file name, and
catalog files that are broken in every way a file can be. Catalogs, CSVs,
JSON files and symlinks are real ones written by the tests; the build-time
points run real TFDS builds.
"""

from __future__ import annotations

import base64
import json
import os
import textwrap
from pathlib import Path

import pytest

from catalog_helpers import SHAPE_FILE_LABELS, csv_text, entry_text, picture, png_bytes, shape_row

SECRET = "TOP-SECRET-ROW"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def catalog_error(path: Path):
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.catalog.loader import load_catalog

    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    return error.value


def assert_refused(path: Path, entry: str | None, field: str | None, problem: str) -> str:
    error = catalog_error(path)
    message = str(error)
    assert message.startswith(f"{path}: "), message
    if entry is not None:
        assert f"entry {entry}" in message, message
    if field is not None:
        assert f"field {field!r}" in message, message
    assert problem in message, message
    assert "\n" not in message, message
    return message


@pytest.fixture
def secret(tmp_path) -> Path:
    """A folder outside every allowed root, holding a valid-looking CSV."""
    folder = tmp_path / "secret"
    write(folder / "secret.csv", csv_text([shape_row(3, 1)]) + SECRET + "\n")
    return folder


@pytest.fixture
def team_dir(tmp_path) -> Path:
    folder = tmp_path / "team"
    folder.mkdir()
    return folder


# --- 1. names that become parts of paths -------------------------------------------------

CONFIGS = 'configs = [{{ name = "{config}" }}]\n'

BAD_NAMES = {
    "name_too_long": (lambda: entry_text(name="t" * 65), "name", "not a dataset name"),
    "name_with_newline": (lambda: entry_text(name="team_ok\\n"), "name", "not a dataset name"),
    "config_dotdot": (lambda: entry_text() + CONFIGS.format(config="../../x"),
                      "configs[0].name", "not a config name"),
    "config_uppercase": (lambda: entry_text() + CONFIGS.format(config="Big"),
                         "configs[0].name", "not a config name"),
    "config_leading_underscore": (lambda: entry_text() + CONFIGS.format(config="_x"),
                                  "configs[0].name", "not a config name"),
    "config_too_long": (lambda: entry_text() + CONFIGS.format(config="c" * 65),
                        "configs[0].name", "not a config name"),
    "version_newline": (lambda: entry_text().replace('"1.0.0"', '"1.0.0\\n"'), "version",
                        "not MAJOR.MINOR.PATCH"),
    "version_arabic_digit": (lambda: entry_text().replace('"1.0.0"', '"\u0661.0.0"'), "version",
                             "not MAJOR.MINOR.PATCH"),
    "split_dotdot": (lambda: entry_text().replace('location = "shapes.csv"',
                                                  'location = "shapes.csv", split = "../x"'),
                     "sources[0].split", "not a split name"),
    "split_too_long": (lambda: entry_text().replace(
        'location = "shapes.csv"', f'location = "shapes.csv", split = "{"s" * 65}"'),
        "sources[0].split", "not a split name"),
    "release_notes_key": (lambda: entry_text() + 'release_notes = { "../1.0.0" = "x" }\n',
                          "release_notes.../1.0.0", "not a MAJOR.MINOR.PATCH version"),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_names_that_become_paths_match_strict_patterns(case, team_dir):
    make, field, problem = BAD_NAMES[case]
    path = write(team_dir / "bad.toml", make())
    assert_refused(path, None, field, problem)


def test_the_projects_own_config_names_are_accepted(team_dir):
    from sign_datasets.catalog.loader import load_catalog, project_entries

    names = [c.name for e in project_entries() for c in e.configs]
    assert {"original", "dirty", "default", "28x28", "28x28_no_leakage", "native", "124x124",
            "640x480"} <= set(names)
    configs = ", ".join(f'{{ name = "{n}" }}' for n in ("a" * 64, "9lives", "x_1"))
    (entry,) = load_catalog(write(team_dir / "ok.toml", entry_text(name="t" * 64)
                                  + f"configs = [{configs}]\n"))
    assert entry.name == "t" * 64 and len(entry.configs) == 3


# --- 2. class names --------------------------------------------------------------------

BAD_CLASSES = {
    "empty": ('["a", ""]', "classes[1]", "is empty"),
    "blank": ('["a", "  "]', "classes[1]", "is empty"),
    "newline": ('["a", "b\\nc"]', "classes[1]", "control or format character '\\n'"),
    "bidi_override": ('["a", "b\\u202ec"]', "classes[1]", "control or format character"),
    "zero_width": ('["a", "b\\u200bc"]', "classes[1]", "control or format character"),
    "line_separator": ('["a", "b\\u2028c"]', "classes[1]", "control or format character"),
    "slash": ('["a", "b/c"]', "classes[1]", "holds '/'"),
    "backslash": ('["a", "b\\\\c"]', "classes[1]", "holds '/' or '\\'"),
    "leading_space": ('["a", " b"]', "classes[1]", "leading or trailing whitespace"),
    "trailing_nbsp": ('["a", "b\\u00a0"]', "classes[1]", "leading or trailing whitespace"),
    "dot": ('["a", "."]', "classes[1]", "is '.' or '..'"),
    "dotdot": ('["..", "a"]', "classes[0]", "is '.' or '..'"),
    "too_long": (json.dumps(["a", "b" * 201]), "classes[1]", "201 characters long"),
    "not_a_string": ('["a", 3]', "classes[1]", "expected a string, found an integer"),
    "case_twins": ('["Cat", "dog", "cat"]', "classes",
                   "classes[0] 'Cat' and classes[2] 'cat' differ only in letter case"),
    "sharp_s_twins": ('["strasse", "stra\\u00dfe"]', "classes", "differ only in letter case"),
    "normalisation_twins": ('["caf\\u00e9", "cafe\\u0301"]', "classes",
                            "classes[0] 'caf\\xe9' and classes[1] 'cafe\\u0301' differ only "
                            "by Unicode normalisation"),
    "repeated": ('["a", "b", "a"]', "classes", "classes[0] and classes[2] are both 'a'"),
    "too_many": (json.dumps([f"c{i}" for i in range(10_001)]), "classes",
                 "10,001 classes, more than the 10,000"),
}


@pytest.mark.parametrize("case", sorted(BAD_CLASSES))
def test_bad_class_names_are_refused_naming_the_class(case, team_dir):
    classes, field, problem = BAD_CLASSES[case]
    text = entry_text().replace('["circle", "square"]', classes)
    assert_refused(write(team_dir / "bad.toml", text), "'team_ok'", field, problem)


def test_class_names_are_nfc_and_may_be_named_like_splits(team_dir):
    from sign_datasets.catalog.loader import load_catalog

    text = entry_text().replace('["circle", "square"]',
                                '["cafe\\u0301", "train", "test", "validation"]')
    text += "csv_labels = [0, 1, 2, 3]\n"
    (entry,) = load_catalog(write(team_dir / "ok.toml", text))
    assert entry.classes == ("caf\u00e9", "train", "test", "validation")


def test_json_labels_match_exactly_after_nfc(team_dir, tmp_path):
    """A decomposed label (as macOS writes it) is its class; a label in
    another letter case or with a space is an unknown_label drop, counted."""
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams

    def record(label: str, seed: int) -> str:
        image = base64.b64encode(png_bytes(picture(seed, (6, 6), "L"))).decode()
        return json.dumps({"label": label, "image": image})

    labels = ["caf\u00e9", "cafe\u0301", "Caf\u00e9", "th\u00e9", "th\u00e9 ", "TH\u00c9"]
    write(team_dir / "drinks.jsonl", "\n".join(record(l, i) for i, l in enumerate(labels)) + "\n")
    catalog = write(team_dir / "drinks.toml", textwrap.dedent("""\
        [[dataset]]
        name = "trust_drinks"
        version = "1.0.0"
        description = "Drinks."
        format = "base64_json"
        classes = ["cafe\\u0301", "th\\u00e9"]
        image = { mode = "L", size = [6, 6] }
        sources = [{ location = "drinks.jsonl" }]
        """))
    teams.register_file(catalog)
    builder = tfds.builder("trust_drinks", data_dir=str(tmp_path / "data"))
    builder.download_and_prepare()
    assert builder.info.features["label"].names == ["caf\u00e9", "th\u00e9"]
    report = builder.info.metadata["cleaning"]["train"]
    assert report["records"] == 6 and report["kept"] == 3
    assert report["drops"] == {"unknown_label": 3}
    got = sorted(int(e["label"]) for e in tfds.as_numpy(builder.as_dataset(split="train")))
    assert got == [0, 0, 1]


# --- 3. caps -----------------------------------------------------------------------------

def many_sources(count: int) -> str:
    return ", ".join(f'{{ location = "s{i}.csv" }}' for i in range(count))


CAPS = {
    "side": (lambda: entry_text().replace("size = [8, 8]", "size = [16385, 1]"),
             "image.size", "a side may be at most 16,384"),
    "csv_columns": (lambda: entry_text().replace("size = [8, 8]", "size = [1001, 1000]"),
                    "image.size", "1,001,000 values per image, more than 1,000,000"),
    "image_values": (lambda: entry_text().replace('"csv_pixels"', '"base64_json"')
                     .replace('mode = "L", size = [8, 8]', 'mode = "RGB", size = [4000, 4000]'),
                     "image.size", "48,000,000 values per image, more than 40,000,000"),
    "config_size": (lambda: entry_text(location="pets.zip").replace('"csv_pixels"',
                                                                    '"zip_folders"')
                    + 'configs = [{ name = "big", size = [16384, 16384] }]\n',
                    "configs[0].size", "more than 40,000,000"),
    "sources": (lambda: entry_text().replace('[{ location = "shapes.csv" }]',
                                             f"[{many_sources(1001)}]"),
                "sources", "1,001 sources, more than the 1,000"),
    "configs": (lambda: entry_text() + "configs = ["
                + ", ".join(f'{{ name = "c{i}" }}' for i in range(101)) + "]\n",
                "configs", "101 configs, more than the 100"),
    "description": (lambda: entry_text().replace('"Some shapes."', '"' + "d" * 65537 + '"'),
                    "description", "65,537 characters, more than 65,536"),
    "citation": (lambda: entry_text() + 'citation = "' + "c" * 65537 + '"\n',
                 "citation", "more than 65,536"),
    "license": (lambda: entry_text() + 'license = "' + "l" * 65537 + '"\n',
                "license", "more than 65,536"),
    "homepage_javascript": (lambda: entry_text() + 'homepage = "javascript:alert(1)"\n',
                            "homepage", "not an http(s) URL"),
    "homepage_ftp": (lambda: entry_text() + 'homepage = "ftp://example.org/x"\n',
                     "homepage", "not an http(s) URL"),
    "homepage_gs": (lambda: entry_text() + 'homepage = "gs://bucket/x"\n',
                    "homepage", "not an http(s) URL"),
}


@pytest.mark.parametrize("case", sorted(CAPS))
def test_past_a_cap_one_clear_error(case, team_dir):
    make, field, problem = CAPS[case]
    assert_refused(write(team_dir / "big.toml", make()), "'team_ok'", field, problem)


def test_caps_on_the_whole_file(team_dir):
    many = write(team_dir / "many.toml",
                 "\n".join(entry_text(name=f"team_{i}") for i in range(1001)))
    assert_refused(many, None, "dataset", "1,001 entries, more than 1,000")
    huge = team_dir / "huge.toml"
    with open(huge, "w") as out:
        out.write(entry_text())
        line = "# " + "x" * 1022 + "\n"
        for _ in range(17 * 1024):
            out.write(line)
    assert_refused(huge, None, None, "larger than 16 MiB")


def test_sizes_within_the_caps_load(team_dir):
    from sign_datasets.catalog.loader import load_catalog

    (entry,) = load_catalog(write(team_dir / "ok.toml", entry_text().replace(
        "size = [8, 8]", "size = [1000, 1000]")))
    assert entry.size == (1000, 1000)


# --- 4. paths a catalog names --------------------------------------------------------------

def test_paths_outside_the_roots_are_refused_in_every_spelling(team_dir, secret,
                                                              monkeypatch):
    os.symlink(secret, team_dir / "link_to_secret")
    os.symlink(secret / "secret.csv", team_dir / "secret_file.csv")
    home = secret.parent
    monkeypatch.setenv("HOME", str(home))
    rel = os.path.relpath(secret, team_dir)
    spellings = {
        "file_url_percent": f"file://{team_dir}/%2e%2e/secret/secret.csv",
        "file_url_upper": f"file://{team_dir}/%2E%2E/secret/secret.csv",
        "file_url_localhost": f"file://localhost{secret}/secret.csv",
        "file_url_slash": f"file://{team_dir}/..%2fsecret/secret.csv",
        "dotdot": f"{rel}/secret.csv",
        "dotdot_deep": f"sub/../../secret/./secret.csv",
        "double_slash": f"{team_dir}//..//secret//secret.csv",
        "home": "~/secret/secret.csv",
        "symlinked_folder": "link_to_secret/secret.csv",
        "symlinked_file": "secret_file.csv",
    }
    for name, location in spellings.items():
        path = write(team_dir / f"{name}.toml", entry_text(location=location))
        message = assert_refused(path, "'team_ok'", "sources[0].location",
                                 "outside the allowed roots")
        assert SECRET not in message


def test_unknown_user_and_control_characters_are_catalog_errors(team_dir):
    cases = {
        "~nosuchuser_xyz/x.csv": "no user 'nosuchuser_xyz' on this machine",
        "a\\u0000b.csv": "neither a URL",
        "a\\u0007b.csv": "neither a URL",
        "file:///tmp/a%00b.csv": "neither a URL",
        "http://[::1/x": "neither a URL",
    }
    for location, problem in cases.items():
        path = write(team_dir / "bad.toml", entry_text(location=location))
        assert_refused(path, "'team_ok'", "sources[0].location", problem)


BAD_OBJECTS = {
    "%2e%2e/secret/secret.csv": "'.' or '..' part",
    "%252e%252e/secret/secret.csv": "'.' or '..' part",
    "sub/..%2f..%2fsecret/secret.csv": "'.' or '..' part",
    "../secret/secret.csv": "'.' or '..' part",
    "sub\\\\..\\\\x.csv": "backslash",
    "/etc/passwd": "relative to SIGN_DATASETS_SOURCE",
    "~root/x.csv": "relative to SIGN_DATASETS_SOURCE",
    "a.csv?x=1": "'?' or '#'",
    "a\\u0000.csv": "control character",
    "a%00.csv": "control character",
    "link/secret.csv": "outside the allowed roots",
}


@pytest.mark.parametrize("name", sorted(BAD_OBJECTS))
def test_object_names_are_checked_after_decoding(name, tmp_path, secret, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    os.symlink(secret, source / "link")
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    catalogs = tmp_path / "catalogs"
    text = entry_text().replace('location = "shapes.csv"', f'object = "{name}"')
    message = assert_refused(write(catalogs / "bad.toml", text), "'team_ok'",
                             "sources[0].object", BAD_OBJECTS[name])
    assert SECRET not in message


def swap_for_symlink(path: Path, target: Path) -> None:
    path.unlink()
    os.symlink(target, path)


def test_a_symlink_swapped_after_reading_the_catalog_is_refused_at_build(team_dir, secret,
                                                                        tmp_path):
    """The catalog was fine when read; then the file became a symlink out of
    the roots. The build refuses it naming entry and field, and never reads it."""
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.entries import CatalogError

    rows = [shape_row(SHAPE_FILE_LABELS[i % 2], 40 + i) for i in range(4)]
    write(team_dir / "data" / "rows.csv", csv_text(rows))
    write(team_dir / "folder" / "rows.csv", csv_text(rows))
    catalog = write(team_dir / "swap.toml",
                    entry_text(name="trust_swapped_file", location="data/rows.csv")
                    + entry_text(name="trust_swapped_folder", location="folder/rows.csv"))
    teams.register_file(catalog)
    swap_for_symlink(team_dir / "data" / "rows.csv", secret / "secret.csv")
    (team_dir / "folder" / "rows.csv").unlink()
    (team_dir / "folder").rmdir()
    os.symlink(secret, team_dir / "folder")
    for name in ("trust_swapped_file", "trust_swapped_folder"):
        with pytest.raises(CatalogError) as error:
            tfds.builder(name, data_dir=str(tmp_path / "data")).download_and_prepare(
                download_dir=str(tmp_path / "downloads"))
        message = str(error.value)
        assert message.startswith(f"{catalog}: entry '{name}': field 'sources[0].location': ")
        assert "outside the allowed roots" in message and SECRET not in message


def test_a_symlink_swapped_under_an_object_is_refused_at_build(tmp_path, secret, monkeypatch):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.entries import CatalogError

    source = tmp_path / "source"
    write(source / "rows.csv", csv_text([shape_row(3, 9)]))
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    text = entry_text(name="trust_swapped_object").replace('location = "shapes.csv"',
                                                           'object = "rows.csv"')
    catalog = write(tmp_path / "catalogs" / "object.toml", text)
    teams.register_file(catalog)
    swap_for_symlink(source / "rows.csv", secret / "secret.csv")
    with pytest.raises(CatalogError) as error:
        tfds.builder("trust_swapped_object", data_dir=str(tmp_path / "data")).download_and_prepare(
            download_dir=str(tmp_path / "downloads"))
    message = str(error.value)
    assert "field 'sources[0].object'" in message and "outside the allowed roots" in message
    assert not (tmp_path / "downloads").exists() or SECRET not in "".join(
        p.read_text(errors="replace") for p in (tmp_path / "downloads").rglob("*") if p.is_file())


def test_a_fifo_source_is_refused_not_waited_for(team_dir, tmp_path):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.entries import CatalogError

    os.mkfifo(team_dir / "pipe.csv")
    catalog = write(team_dir / "fifo.toml", entry_text(name="trust_fifo", location="pipe.csv"))
    teams.register_file(catalog)
    with pytest.raises(CatalogError) as error:
        tfds.builder("trust_fifo", data_dir=str(tmp_path / "data")).download_and_prepare()
    assert "not a regular file" in str(error.value)


def test_open_beneath_checks_the_file_actually_opened(team_dir, secret):
    from sign_datasets.catalog.paths import PathRefused, open_beneath

    write(team_dir / "ok.csv", "fine\n")
    with open_beneath(team_dir / "ok.csv", [team_dir]) as stream:
        assert stream.read() == b"fine\n"
    os.symlink(secret / "secret.csv", team_dir / "link.csv")
    with pytest.raises(PathRefused):
        open_beneath(team_dir / "link.csv", [team_dir])


# --- 5. sources sharing a file name --------------------------------------------------------

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


# --- 6. any broken catalog file: one CatalogError --------------------------------------------

def test_broken_files_give_one_catalog_error(team_dir):
    (team_dir / "folder.toml").mkdir()
    assert_refused(team_dir / "folder.toml", None, None, "is a folder")
    latin = team_dir / "latin.toml"
    latin.write_bytes(entry_text().replace("Some shapes.", "Caf\xe9").encode("latin-1"))
    assert_refused(latin, None, None, "not UTF-8 text")
    deep = write(team_dir / "deep.toml", "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert_refused(deep, None, None, "nested too deeply")
    os.mkfifo(team_dir / "fifo.toml")
    assert_refused(team_dir / "fifo.toml", None, None, "not a regular file")
    assert_refused(team_dir / "missing.toml", None, None, "no such catalog file")


WRONG_TYPES = {
    "location_table": ('[{ location = "shapes.csv" }]', "[{ location = { x = [1] } }]",
                       "sources[0].location", "expected a string, found a table"),
    "source_number": ('[{ location = "shapes.csv" }]', "[3]",
                      "sources[0]", "expected a table, found an integer"),
    "nested_class": ('["circle", "square"]', '[["circle"], "square"]',
                     "classes[0]", "expected a string, found an array"),
    "size_float": ("size = [8, 8]", "size = [8, 8.5]", "image.size", "two positive integers"),
    "size_nested": ("size = [8, 8]", "size = [[8], 8]", "image.size", "two positive integers"),
    "note_array": ('version = "1.0.0"', 'version = "1.0.0"\nrelease_notes = { "1.0.0" = [1] }',
                   "release_notes.1.0.0", "expected a string, found an array"),
    "config_size": ('version = "1.0.0"',
                    'version = "1.0.0"\nconfigs = [{ name = "x", size = [[1], 2] }]',
                    "configs[0].size", "only zip_folders configs have it"),
    "date": ('version = "1.0.0"', "version = 2024-01-01", "version",
             "expected a string, found date"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_a_wrong_type_deep_inside_names_its_field(case, team_dir):
    old, new, field, problem = WRONG_TYPES[case]
    text = entry_text()
    assert old in text
    assert_refused(write(team_dir / "types.toml", text.replace(old, new, 1)), "'team_ok'",
                   field, problem)


def test_entries_that_are_not_tables_and_hostile_keys(team_dir):
    assert_refused(write(team_dir / "a.toml", "dataset = [1, 2]\n"), "#1 (no name)", None,
                   "expected a table, found an integer")
    assert_refused(write(team_dir / "b.toml", "dataset = 3\n"), None, "dataset",
                   "expected [[dataset]] entries")
    long_key = "k" * 5000
    message = assert_refused(write(team_dir / "c.toml", entry_text() + f"{long_key} = 1\n"),
                             "'team_ok'", None, "unknown key")
    assert len(message) < 600
    message = assert_refused(write(team_dir / "d.toml", entry_text(name="x" * 100_000)),
                             None, "name", "not a dataset name")
    assert len(message) < 600


# --- a swap in the instant between the last check and the open --------------------------

_SWAP: dict = {}


def _swap_at_first_open(event: str, args: tuple) -> None:
    """An audit hook (hooks cannot be removed: it acts once per armed swap)."""
    if event == "open" and _SWAP and os.fspath(args[0]) == _SWAP.get("path"):
        path, target = _SWAP.pop("path"), _SWAP.pop("target")
        swap_for_symlink(Path(path), Path(target))


def _letters_zip(path: Path, value: int) -> None:
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    with zipfile.ZipFile(path, "w") as zf:
        for member in ("Train/cat/a.png", "Train/dog/b.png", "Test/cat/c.png", "Test/dog/d.png"):
            buffer = io.BytesIO()
            Image.fromarray(np.full((8, 8), value, np.uint8)).save(buffer, "PNG")
            zf.writestr(member, buffer.getvalue())


@pytest.mark.parametrize("fmt", ["zip_folders", "csv_pixels"])
def test_a_file_swapped_between_check_and_open_is_refused(fmt, team_dir, secret, tmp_path):
    """The race a shared folder allows: the file is checked beneath the roots,
    then replaced by a symlink out of them before it is opened. What is opened
    must be the file that was checked (guards.open_source), so the build stops
    and nothing of the other file is stored."""
    import sys

    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.core.cleaning import SourceError

    name = f"trust_race_{fmt}"
    if fmt == "zip_folders":
        _letters_zip(team_dir / "pets.zip", 10)
        _letters_zip(secret / "private.zip", 255)
        target, text = team_dir / "pets.zip", (
            f'[[dataset]]\nname = "{name}"\nversion = "1.0.0"\ndescription = "Race."\n'
            'format = "zip_folders"\nclasses = ["cat", "dog"]\nimage = { mode = "L" }\n'
            'sources = [{ location = "pets.zip" }]\n')
        outside = secret / "private.zip"
    else:
        rows = [shape_row(SHAPE_FILE_LABELS[i % 2], 60 + i) for i in range(4)]
        write(team_dir / "race.csv", csv_text(rows))
        target, text = team_dir / "race.csv", entry_text(name=name, location="race.csv")
        outside = secret / "secret.csv"
    teams.register_file(write(team_dir / f"{fmt}.toml", text))
    if not getattr(sys, "_sign_datasets_swap_hook", False):
        sys.addaudithook(_swap_at_first_open)
        sys._sign_datasets_swap_hook = True
    _SWAP.update(path=str(target.resolve()), target=str(outside))
    with pytest.raises((SourceError, CatalogError)) as error:
        tfds.builder(name, data_dir=str(tmp_path / "data")).download_and_prepare(
            download_dir=str(tmp_path / "downloads"))
    assert not _SWAP, "the swap never happened: the test did not test the race"
    assert "symbolic link after it was checked" in str(error.value)
    assert SECRET not in str(error.value)
    assert not tfds.builder(name, data_dir=str(tmp_path / "data")).is_prepared()
