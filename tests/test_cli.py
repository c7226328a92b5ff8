"""The sign-datasets command, run as users run it: a separate process."""

import subprocess
import sys
from pathlib import Path

from conftest import quiet_env

SIGN_CLI = str(Path(sys.executable).parent / "sign-datasets")


def run(*args, timeout=600, **env):
    return subprocess.run([SIGN_CLI, *args], capture_output=True, text=True,
                          env=quiet_env(**env), timeout=timeout)


def test_python_dash_m_prints_help():
    result = subprocess.run([sys.executable, "-m", "sign_datasets", "--help"],
                            capture_output=True, text=True, env=quiet_env(), timeout=120)
    assert result.returncode == 0
    for command in ("replica", "build", "report", "demo"):
        assert command in result.stdout


def test_replica_make_writes_the_bucket_layout(tmp_path):
    result = run("replica", "make", str(tmp_path / "r"), "--scale", "0.01", "--seed", "3")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert names == ["MalariaCells.zip", "TomAndJerry.zip", "TumorClassification.zip",
                     "cifar100_labels.json", "databasesLoadData.zip", "img_mnist",
                     "replica-manifest.json", "sign-language-img.zip"]


def test_build_reports_failure_of_one_and_still_builds_the_other(tmp_path, replica_server):
    # A source that fails at build time (a CSV without its header); a name that
    # is no dataset at all is a usage error caught before any build (test_cli_errors).
    (tmp_path / "headerless.csv").write_text("0,1,2,3,4\n1,5,6,7,8\n")
    (tmp_path / "team.toml").write_text(
        '[[dataset]]\nname = "cli_headerless"\nversion = "1.0.0"\ndescription = "No header."\n'
        'format = "csv_pixels"\nclasses = ["a", "b"]\nimage = { mode = "L", size = [2, 2] }\n'
        'sources = [{ location = "headerless.csv" }]\n')
    result = run("build", "sign_mnist_csv/dirty", "cli_headerless", "--data-dir", str(tmp_path),
                 "--source", replica_server.base_url,
                 SIGN_DATASETS_CATALOG=str(tmp_path / "team.toml"))
    assert result.returncode == 1
    assert "headerless.csv: line 1 is a data row" in result.stderr
    summary = result.stdout
    assert "sign_mnist_csv/dirty" in summary and "duplicate_row=4, non_numeric_cell=3" in summary
    assert "FAILED" in summary
    assert (tmp_path / "sign_mnist_csv" / "dirty" / "2.0.0" / "dataset_info.json").exists()


def test_bad_source_is_one_clear_line(tmp_path):
    result = run("build", "sign_mnist_csv", "--data-dir", str(tmp_path),
                 "--source", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_demo_runs_end_to_end(tmp_path):
    result = run("demo", "--out", str(tmp_path / "demo"), "--scale", "0.02", "--epochs", "4",
                 timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # TFDS warns "Variant folder ... has no dataset_info.json" when asked
    # whether a dataset not built yet is prepared; builds ask it only after
    # checking the folder exists.
    assert "has no dataset_info.json" not in result.stderr
    # Nor TFDS's deprecation of an attribute only its own decoder reads
    # (it printed ten lines in the demo; sign_datasets/generate/tfds_logs.py).
    assert "`FeatureConnector.dtype` is deprecated" not in result.stderr
    assert "`shuffle=True` was passed" not in result.stderr  # keras' fit, given a shuffled dataset
    out = result.stdout
    assert "sign_mnist_csv/dirty" in out and "duplicate_row=4, non_numeric_cell=3" in out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.3  # chance is 1/24; 900 training rows
    grid = tmp_path / "demo" / "sign_mnist_csv_examples.png"
    assert grid.stat().st_size > 10_000
    # The catalog page lists every dataset the demo built, each with its own page.
    site = tmp_path / "demo" / "catalog"
    index = (site / "index.html").read_text()
    assert "browse it: file://" in out and index.count("<tr>") >= 13
    assert "sign_mnist_csv/dirty" in index and "tumor_classification/124x124" in index
    assert "not built" not in index
    pages = [p for p in site.glob("*.html") if p.name != "index.html"]
    assert len(pages) >= 12 and any("duplicate_row" in p.read_text() for p in pages)


def test_replica_serve_prints_its_url_and_serves_the_files(replica_dir):
    import urllib.request
    process = subprocess.Popen([SIGN_CLI, "replica", "serve", str(replica_dir), "--latency", "0.05"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=quiet_env())
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/")
        with urllib.request.urlopen(base_url + "cifar100_labels.json", timeout=10) as response:
            assert response.read() == (replica_dir / "cifar100_labels.json").read_bytes()
    finally:
        process.terminate()
        process.wait(timeout=10)
