"""Errors a person can act on: the sign-datasets command, run as users run it
(the console script or `python -m sign_datasets`, in a subprocess), answers a
user's mistake or a hostile input with one `error:` line and exit 2 (usage,
settings, catalog) or 1 (a failed build), never a traceback; a bug of ours
still shows its traceback.

Most cases stop before TensorFlow is imported, so a subprocess costs about a
second; the builds are grouped.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import quiet_env

SIGN_CLI = str(Path(sys.executable).parent / "sign-datasets")
# TensorFlow's and absl's own C++ log lines, which the brief tells us to ignore.
_NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")


def run(*args, env: dict | None = None, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([SIGN_CLI, *map(str, args)], capture_output=True, text=True,
                          env=quiet_env(**(env or {})), cwd=cwd, timeout=timeout)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_line(result: subprocess.CompletedProcess, code: int, *fragments: str,
                    only: bool = True) -> str:
    """Exit `code`, no traceback, one error line holding every fragment; with
    `only`, that line is all of stderr (TensorFlow's native log lines aside)."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == code, result.stderr[-3000:]
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr[-3000:]
    if only:
        rest = [line for line in result.stderr.splitlines()
                if line.strip() and not _NATIVE_LOG.match(line)]
        assert rest == lines, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --- a broken catalog, whatever the command ------------------------------------------

def test_missing_or_broken_catalog_is_one_line_for_any_command(tmp_path):
    missing = tmp_path / "missing.toml"
    for args in (["--help"], ["list"], ["replica", "make", tmp_path / "r"]):
        result = run(*args, env={"SIGN_DATASETS_CATALOG": str(missing)})
        assert_one_line(result, 2, str(missing), "no such catalog file")
    assert not (tmp_path / "r").exists()  # refused before any work

    broken = tmp_path / "broken.toml"
    broken.write_text("[[dataset]]\nname = \n")
    result = subprocess.run([sys.executable, "-m", "sign_datasets", "--help"],
                            capture_output=True, text=True, timeout=120,
                            env=quiet_env(SIGN_DATASETS_CATALOG=str(broken)))
    assert_one_line(result, 2, str(broken), "not valid TOML")


def test_control_characters_in_an_error_are_written_as_escapes(tmp_path):
    """A name with an escape sequence cannot clear the screen or fake a line."""
    hostile = tmp_path / "team\x1b[2J\r\x1b[1Aok.toml"
    result = run("list", env={"SIGN_DATASETS_CATALOG": str(hostile)})
    line = assert_one_line(result, 2, "no such catalog file", "team\\x1b[2J", "\\x1b[1Aok.toml")
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    assert line.startswith("error: ")


def test_library_users_still_get_the_catalog_error_from_the_import(tmp_path):
    result = subprocess.run([sys.executable, "-c", "import sign_datasets"], capture_output=True,
                            text=True, timeout=120,
                            env=quiet_env(SIGN_DATASETS_CATALOG=str(tmp_path / "missing.toml")))
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "CatalogError" in result.stderr


# --- settings ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def a_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "plain.txt"
    path.write_text("not a folder\n")
    return path


BAD_SETTINGS = [
    ("SIGN_DATASETS_WORKERS", "lots"), ("SIGN_DATASETS_WORKERS", "0"),
    ("SIGN_DATASETS_WORKERS", "-3"), ("SIGN_DATASETS_SHUFFLE_MEMORY_MB", "0"),
    ("SIGN_DATASETS_SHUFFLE_MEMORY_MB", "nan"), ("SIGN_DATASETS_BEAM_RANGE_BYTES", "8MB"),
    ("SIGN_DATASETS_BEAM_RANGE_BYTES", "0"), ("SIGN_DATASETS_FETCH_WORKERS", "0"),
    ("SIGN_DATASETS_FETCH_TIMEOUT", "lots"), ("SIGN_DATASETS_FETCH_RETRIES", "-1"),
    ("SIGN_DATASETS_FETCH_BACKOFF", "-1"), ("SIGN_DATASETS_FETCH_MAX_BYTES", "0"),
    ("SIGN_DATASETS_SOURCE_MAX_BYTES", "-5"), ("SIGN_DATASETS_SOURCE_TIMEOUT", "0"),
    ("SIGN_DATASETS_MAX_FAILED_SHARE", "2"), ("SIGN_DATASETS_ALLOWED_HOSTS", "http://x.org/p"),
    ("SIGN_DATASETS_ALLOWED_ROOTS", "~nosuchuser/x"), ("SIGN_DATASETS_ALLOWED_ROOTS", "FILE"),
    ("SIGN_DATASETS_SOURCE", "~nosuchuser/x"), ("SIGN_DATASETS_SOURCE", "FILE"),
    ("SIGN_DATASETS_CATALOG", "~nosuchuser/team.toml"),
]


@pytest.mark.parametrize("name, value", BAD_SETTINGS)
def test_a_bad_setting_is_one_line_naming_variable_and_value(name, value, a_file, tmp_path):
    value = str(a_file) if value == "FILE" else value
    result = run("list", "--data-dir", tmp_path, env={name: value})
    assert_one_line(result, 2, name, value)


def test_an_empty_setting_is_one_line_naming_it(tmp_path):
    """`X= sign-datasets ...` is refused like any bad value: a forgotten value
    must not silently become the default."""
    from sign_datasets.cli import settings_check
    names = [name for name, _ in settings_check.checks()]
    assert len(names) >= 14
    for name in ("SIGN_DATASETS_WORKERS", "SIGN_DATASETS_CATALOG", "SIGN_DATASETS_SOURCE"):
        result = run("list", "--data-dir", tmp_path, env={name: " "})
        assert_one_line(result, 2, name, "is empty", f"unset {name}")


def test_every_setting_of_the_package_is_checked_at_start():
    """A new SIGN_DATASETS_* variable must join settings_check.checks()."""
    from sign_datasets.cli import settings_check
    package = Path(settings_check.__file__).parents[1]
    defined = set()
    for path in package.rglob("*.py"):
        defined |= set(re.findall(r'^[A-Z_]+_ENV = "(SIGN_DATASETS_[A-Z_]+)"', path.read_text(),
                                  re.MULTILINE))
    assert "SIGN_DATASETS_WORKERS" in defined and "SIGN_DATASETS_CATALOG" in defined
    assert defined <= {name for name, _ in settings_check.checks()}


# --- folders that cannot be written ---------------------------------------------------------

@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mounts a small tmpfs (as root; skips otherwise) and unmounts it after the test."""
    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); root ignores "
                        "file permissions, so a read-only or full folder needs a mount")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def test_read_only_or_too_long_data_dir_is_one_line_before_any_work(tmp_path, mount_tmpfs):
    read_only = mount_tmpfs("ro,size=64k")
    result = run("build", "sign_mnist_csv", "--data-dir", read_only / "tfds")
    assert_one_line(result, 2, str(read_only / "tfds"), "read-only")

    too_long = tmp_path / ("x" * 300) / "tfds"
    result = run("build", "sign_mnist_csv", "--data-dir", too_long)
    assert_one_line(result, 2, "x" * 300, "too long")

    a_file = tmp_path / "tfds.txt"
    a_file.write_text("")
    result = run("build", "sign_mnist_csv", "--data-dir", a_file)
    assert_one_line(result, 2, str(a_file), "is a file, not a folder")

    result = run("catalog", "--out", read_only / "site", "--data-dir", tmp_path)
    assert_one_line(result, 2, str(read_only / "site"), "read-only")


def test_full_disk_fails_the_build_with_one_line(replica_dir, mount_tmpfs):
    small = mount_tmpfs("size=300k")
    result = run("build", "sign_mnist_csv/dirty", "--data-dir", small / "tfds",
                 "--source", replica_dir)
    line = assert_one_line(result, 1, "sign_mnist_csv/dirty", "ran out of space",
                           str(small / "tfds"), only=False)
    assert "Free some space" in line
    assert "FAILED" in result.stdout  # the summary table still comes


# --- `new` -------------------------------------------------------------------------------

def test_new_creates_the_catalog_file_but_not_its_folder(tmp_path):
    (tmp_path / "shapes.csv").write_text(
        "label,pixel1,pixel2,pixel3,pixel4\n0,1,2,3,4\n1,5,6,7,8\n")
    (tmp_path / "headerless.csv").write_text("0,1,2,3,4\n1,5,6,7,8\n")
    catalog = tmp_path / "team.toml"

    result = run("new", "shapes", "--format", "csv_pixels", "--source", "shapes.csv",
                 "--catalog", catalog, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'name = "shapes"' in catalog.read_text()

    result = run("new", "other", "--format", "csv_pixels", "--source", "shapes.csv",
                 "--catalog", tmp_path / "nowhere" / "team.toml", cwd=tmp_path)
    assert_one_line(result, 2, str(tmp_path / "nowhere"), "no such folder")
    assert not (tmp_path / "nowhere").exists()

    result = run("new", "headless", "--format", "csv_pixels", "--source", "headerless.csv",
                 "--catalog", catalog, cwd=tmp_path)
    assert_one_line(result, 2, "headerless.csv", "line 1 is a data row",
                    "Add the header line to the file")

    result = run("new", "zipped", "--format", "zip_folders", "--source", "shapes.csv",
                 "--catalog", catalog, cwd=tmp_path)
    assert_one_line(result, 2, "shapes.csv", "not a readable zip archive")

    result = run("new", "homeless", "--format", "csv_pixels", "--source", "~nosuchuser/s.csv",
                 "--catalog", catalog, cwd=tmp_path)
    assert_one_line(result, 2, "~nosuchuser/s.csv", "no such user")
    text = catalog.read_text()
    assert "headless" not in text and "zipped" not in text and "homeless" not in text


# --- builds that fail ---------------------------------------------------------------------

def test_a_failed_build_prints_the_table_and_one_line_per_dataset(tmp_path):
    (tmp_path / "headerless.csv").write_text("0,1,2,3,4\n1,5,6,7,8\n")
    catalog = tmp_path / "team.toml"
    catalog.write_text(textwrap.dedent("""\
        [[dataset]]
        name = "team_headerless"
        version = "1.0.0"
        description = "A CSV without its header line."
        format = "csv_pixels"
        classes = ["a", "b"]
        image = { mode = "L", size = [2, 2] }
        sources = [{ location = "headerless.csv", split = "train" }]
        """))
    env = {"SIGN_DATASETS_CATALOG": str(catalog)}
    result = run("build", "team_headerless", "--data-dir", tmp_path / "tfds", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "headerless.csv: line 1 is a data row" in lines[0] and "Add the header" in lines[0]
    assert result.stdout.count("FAILED") == 1

    # A name that is no dataset is a usage error: one line, exit 2, nothing built.
    for names, fragment in ((["no_such_dataset"], "no_such_dataset: no such dataset"),
                            (["team_headerless/nope"], "has no config 'nope'; it has none"),
                            (["Not A Name"], "'Not A Name' is not a dataset name"),
                            (["team_headerless:9.9.9"], "has no version 9.9.9; it has 1.0.0")):
        result = run("build", "team_headerless", *names, "--data-dir", tmp_path / "t2", env=env)
        assert_one_line(result, 2, fragment)
        assert "FAILED" not in result.stdout


def test_info_and_show_answer_bad_names_and_outputs_in_one_line(tmp_path):
    result = run("info", "sign_mnist_csv:9.9.9", "--data-dir", tmp_path)
    assert_one_line(result, 2, "sign_mnist_csv has no version 9.9.9")
    result = run("list", "--data-dir", "")
    assert_one_line(result, 2, "--data-dir is empty")
    (tmp_path / "plain").write_text("x")
    result = run("list", "--data-dir", tmp_path / "plain")
    assert_one_line(result, 2, "is a file, not a folder")


def test_a_bug_of_ours_still_shows_its_traceback(tmp_path):
    """A failure that is nobody's input: the build reports it with its
    traceback (exit 1), and any other command lets it through."""
    script = textwrap.dedent(f"""\
        import sys
        from sign_datasets.generate import builder
        from sign_datasets.catalog import registry
        from sign_datasets.cli.commands import main

        def broken(*args, **kwargs):
            raise TypeError("a bug of ours")

        builder.CleanedBuilder.download_and_prepare = broken
        print("build exit", main(["build", "sign_mnist_csv/dirty",
                                      "--data-dir", {str(tmp_path)!r}]), flush=True)
        registry.status = broken
        main(["list", "--data-dir", {str(tmp_path)!r}])
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=quiet_env(), timeout=300)
    assert "build exit 1" in result.stdout
    assert "error: sign_mnist_csv/dirty: TypeError: a bug of ours" in result.stderr
    assert result.stderr.count("Traceback") == 2, result.stderr[-3000:]
    assert result.returncode == 1 and result.stderr.rstrip().endswith("TypeError: a bug of ours")
