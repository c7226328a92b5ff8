"""Bad-input cases of team catalogs (SIGN_DATASETS_CATALOG): refused when read,
naming file, entry and field."""

from __future__ import annotations

from badinputs.sources import CATALOG_SOURCE, catalog_entry, catalog_source
from badinputs.table import CaseList, Expect, fails

CASES = CaseList()
case = CASES.case


def _catalog_error(entry: str, field: str, problem: str) -> Expect:
    return fails("CatalogError", rf"{CATALOG_SOURCE}: entry {entry}: field {field}: {problem}")


@case("catalog_unknown_key", "catalog", "an entry with a key the catalog does not know",
      _catalog_error("'team_letters'", r"'colour'", "unknown key"))
def _(folder):
    catalog_source(folder, catalog_entry(extra='colour = "blue"\n'))


@case("catalog_wrong_type", "catalog", "a version written as a number",
      _catalog_error("'team_letters'", r"'version'", "expected a string, found an integer"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('version = "1.0.0"', "version = 1"))


@case("catalog_missing_classes", "catalog", "an entry without class names",
      _catalog_error("'team_letters'", r"'classes'", "missing"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('classes = ["A", "B"]\n', ""))


@case("catalog_duplicate_name", "catalog", "two entries of one file with the same name",
      _catalog_error("'team_letters'", r"'name'", "duplicate name: entry #1 of this file"))
def _(folder):
    catalog_source(folder, catalog_entry() + "\n" + catalog_entry())


@case("catalog_name_of_the_project", "catalog", "an entry named like a project dataset",
      _catalog_error("'sign_mnist_csv'", r"'name'", r"duplicate name: .*catalog\.toml"))
def _(folder):
    catalog_source(folder, catalog_entry(name="sign_mnist_csv"))


@case("catalog_clash_with_tfds", "catalog", "an entry named like a dataset TFDS has (mnist)",
      _catalog_error("'mnist'", r"'name'", "'mnist' clashes with a dataset TFDS already has"))
def _(folder):
    catalog_source(folder, catalog_entry(name="mnist"))


@case("catalog_source_neither_url_nor_path", "catalog", "a source at ftp://",
      _catalog_error("'team_letters'", r"'sources\[0\]\.location'",
                     "'ftp://files.example.org/letters.zip' is neither a URL"))
def _(folder):
    catalog_source(folder, catalog_entry(location="ftp://files.example.org/letters.zip"))


@case("catalog_source_outside_allowed_roots", "catalog",
      "a source path that climbs out of the catalog's folder (../../.. up to /srv)",
      _catalog_error("'team_letters'", r"'sources\[0\]\.location'",
                     r"/srv/letters\.zip is outside the allowed roots \(<source>\)"))
def _(folder):
    # Deep enough to reach / from any temporary folder, so the message is the same everywhere.
    catalog_source(folder, catalog_entry(location="../" * 40 + "srv/letters.zip"))


@case("catalog_source_absolute_outside_roots", "catalog", "a source at /etc/passwd",
      _catalog_error("'team_letters'", r"'sources\[0\]\.location'",
                     "/etc/passwd is outside the allowed roots .*SIGN_DATASETS_ALLOWED_ROOTS"))
def _(folder):
    catalog_source(folder, catalog_entry(location="/etc/passwd"))


@case("catalog_not_toml", "catalog", "a catalog that is not TOML",
      fails("CatalogError", rf"{CATALOG_SOURCE}: not valid TOML"))
def _(folder):
    catalog_source(folder, catalog_entry() + "[[dataset]\n")
