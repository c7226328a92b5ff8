"""The benchmark suite's plumbing (not the figures: those are measured by hand)."""

from __future__ import annotations

import sys

from sign_datasets.cli import bench


def test_write_section_replaces_only_its_own_section(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nintro\n\n## A\n\nold a\n\n## B\n\nkeep b\n")
    bench.write_section("## A", "## A\n\nnew a\n", doc)
    assert doc.read_text() == "# Benchmarks\n\nintro\n\n## A\n\nnew a\n\n## B\n\nkeep b\n"
    bench.write_section("## C", "## C\n\nnew c\n", doc)
    assert doc.read_text().endswith("## B\n\nkeep b\n\n## C\n\nnew c\n")
    bench.write_section("## B", "## B\n\nnew b\n", doc)
    assert "keep b" not in doc.read_text() and "new a" in doc.read_text()


def test_every_script_has_a_preset_and_quick_runs_write_nothing(tmp_path):
    scripts = bench.discover()
    assert {s.name for s in scripts} >= {"bench_csv.py", "bench_fetch.py", "bench_folders.py",
                                         "bench_read.py"}
    assert all(s.name in bench.PRESETS for s in scripts)
    read = next(s for s in scripts if s.name == "bench_read.py")
    assert bench.command_for(read, quick=True, write=False) == [
        sys.executable, str(read), "--quick", "--no-write"]
    assert bench.command_for(read, quick=False, write=True) == [sys.executable, str(read)]
    fetch = next(s for s in scripts if s.name == "bench_fetch.py")
    assert "--write-doc" in bench.command_for(fetch, quick=False, write=True)
    assert "--write-doc" not in bench.command_for(fetch, quick=True, write=False)


def test_suite_runs_the_chosen_scripts_in_turn(tmp_path):
    (tmp_path / "bench_ok.py").write_text("print('ratio 2.0')\n")
    (tmp_path / "bench_broken.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "helper.py").write_text("raise SystemExit('not a benchmark')\n")
    runs = bench.run_suite(quick=True, scripts_dir=tmp_path)
    assert [(r.script, r.returncode) for r in runs] == [("bench_broken.py", 3), ("bench_ok.py", 0)]
    only = bench.run_suite(quick=True, only=["ok"], scripts_dir=tmp_path)
    assert [r.script for r in only] == ["bench_ok.py"]
    assert "FAILED (exit 3)" in bench.format_runs(runs, quick=True, write=False)
