"""What a hostile catalog entry may not say (catalog/schema.py; issue 17,
docs/SECURITY.md): names that become parts of paths, class names, caps on
sizes and counts, and wrong types deep inside an entry. Each is one clear
error naming file, entry and field; the project's own names still load.
Catalogs are real files written by the tests; one point runs a real TFDS
build.
"""

from __future__ import annotations

import base64
import json
import textwrap

import pytest

from catalog_helpers import entry_text, picture, png_bytes
from catalog_refusals import assert_refused, write

pytest_plugins = ("catalog_refusals",)


# --- names that become parts of paths -----------------------------------------------------

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


# --- class names --------------------------------------------------------------------------

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


# --- caps ---------------------------------------------------------------------------------

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


def test_sizes_within_the_caps_load(team_dir):
    from sign_datasets.catalog.loader import load_catalog

    (entry,) = load_catalog(write(team_dir / "ok.toml", entry_text().replace(
        "size = [8, 8]", "size = [1000, 1000]")))
    assert entry.size == (1000, 1000)


# --- a wrong type deep inside an entry ----------------------------------------------------

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
