"""Trust boundary (issue 17): generated catalogs and inputs against real, watched builds.

A catalog, its source files and every HTTP server are untrusted; the
environment of whoever builds is trusted. For any generated team catalog
(three formats, sources spelled as plain, absolute, `../`, `~`, file://,
percent-encoded, NFD, symlinked paths and objects, URLs on a forbidden
loopback server in odd spellings, with credentials or behind a redirect, and
data.json files listing such URLs), a real build in this process, watched by
an audit hook (tests/trust/world.py), must:

* read nothing in the secret folders outside every allowed root (no open or
  listing there, no access time moved, no secret bytes in its output);
* write nothing outside the data, download and temp dirs;
* send nothing to the forbidden server nor connect to its port, send no
  credentials, look up or connect to nothing off loopback;
* repeat in no message the content of what it should not have read;
* finish with records == kept + drops, or stop with a one-line CatalogError /
  SourceError; a config name that would name another folder is refused.

The build's temp dir is its own per example (TMPDIR and tempfile.tempdir);
writes there are allowed. `tests/trust/scan.py` runs every spelling alone.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from trust import cases
from trust.cases import SourceSpec, Spec
from trust.world import Watcher, World

EXAMPLES = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import sign_datasets  # noqa: F401  (registers the builders)

    world = World(tmp_path_factory.mktemp("trust"))
    try:
        cases.warm_up(world)
        yield world
    finally:
        world.close()


def _located(templates):
    return st.sampled_from(templates).map(lambda t: SourceSpec("location", t))


def source_specs(fmt: str):
    choices = [_located(cases.BENIGN_LOCATIONS), _located(cases.PATH_ATTACKS),
               _located(cases.NET_ATTACKS),
               st.sampled_from(cases.BENIGN_OBJECTS + cases.OBJECT_ATTACKS)
               .map(lambda t: SourceSpec("object", t))]
    if fmt == "csv_pixels":
        choices.append(st.sampled_from(cases.MEMBER_ATTACKS)
                       .map(lambda m: SourceSpec("location", "csvs.zip", m)))
    if fmt == "zip_folders":
        choices.append(st.just(SourceSpec("location", "evil.zip")))
    return st.one_of(choices)


@st.composite
def specs(draw) -> Spec:
    fmt = draw(st.sampled_from(sorted(cases.FORMATS)))
    mode = draw(st.sampled_from(["folder", "http"]))
    count = 1 if fmt == "zip_folders" else draw(st.integers(1, 2))
    sources = tuple(SourceSpec(s.key, s.template, s.member, split)
                    for s, split in zip((draw(source_specs(fmt)) for _ in range(count)),
                                        ("train", "test")))
    # Mostly no config: a refused config name stops an example before its build.
    config = draw(st.sampled_from((None,) * 2 * len(cases.CONFIG_NAMES) + cases.CONFIG_NAMES))
    urls, share = (), None
    if fmt == "json_urls":
        urls = tuple(draw(st.lists(st.sampled_from(cases.BENIGN_URLS + cases.URL_ATTACKS),
                                   min_size=1, max_size=3)))
        share = draw(st.sampled_from([None, 1.0]))
    return Spec(fmt, mode, sources, config, urls, share)


def _only(template: str, fmt="csv_pixels", mode="folder", key="location") -> Spec:
    return Spec(fmt, mode, (SourceSpec(key, template),), max_failed_share=1.0)


@EXAMPLES
@given(spec=specs())
# A benign build of each format, so the accounting is checked on kept records too.
@example(spec=_only("good.{X}"))
@example(spec=Spec("json_urls", "http", (SourceSpec("location", "good.{X}"),),
                   urls=cases.BENIGN_URLS + ("file://{SECRET}/secret.png",),
                   max_failed_share=1.0))
@example(spec=_only("good.{X}", fmt="zip_folders", mode="http", key="object"))
def test_a_build_stays_inside_the_trust_boundary(world, spec):
    check(world, spec)


# Spellings that name nothing (kept out of the examples above: a failing
# explicit example would stop hypothesis before it generates any).
@pytest.mark.parametrize("spec", [
    _only("{ROOT}/%2e%2e/sécret/secret.{X}"),
    Spec("csv_pixels", "folder", (SourceSpec("location", "csvs.zip", "../../sécret/secret.csv"),)),
    _only("r/0.{X}", key="object"),
], ids=["missing-path", "missing-member", "missing-object"])
def test_a_source_that_is_not_there_is_a_clear_error(world, spec):
    check(world, spec)


def check(world: World, spec: Spec) -> None:
    """Builds `spec` and asserts every property, each on its own line (so
    hypothesis reports each broken property as a bug of its own)."""
    outcome = cases.run(world, spec)
    folder = world.base / "ex" / str(world.counter)
    what = cases.describe(world, outcome)

    reads = cases.secret_reads(world, outcome)
    assert not reads, f"read a secret: {reads}\n{what}"
    writes = cases.outside_writes(world, outcome, folder)
    assert not writes, f"wrote outside the data and download dirs: {writes}\n{what}"
    connections = cases.refused_connections(world, outcome)
    assert not connections, f"reached what the URL policy refuses: {connections}\n{what}"
    repeated = cases.repeated_content(outcome)
    assert not repeated, f"repeated content it should not have read: {repeated}\n{what}"
    unclear = cases.unclear_error(outcome)
    assert unclear is None, f"neither counted nor a clear error: {unclear}\n{what}"
    if cases.path_like_config(spec):
        from sign_datasets.catalog.entries import CatalogError
        # Refused for this or another field: either way nothing is built.
        assert isinstance(outcome.error, CatalogError), \
            f"a config name that names another folder was not refused\n{what}"


# --- the instruments -------------------------------------------------------------------

def test_the_watcher_sees_reads_in_python_and_in_tensorflow(world):
    """Reads of a secret through Python's open and through tf.io.gfile (C++,
    no audit event) are both seen: the checks above can fail."""
    import tensorflow as tf

    for read in (lambda p: open(p, "rb").read(), lambda p: tf.io.gfile.GFile(p, "rb").read()):
        times = world.secret_times()
        outcome = cases.Outcome(cases.Spec("csv_pixels", "folder", ()), "")
        outcome.seen = Watcher.get().start()
        try:
            read(str(world.secret / "secret.csv"))
        finally:
            Watcher.get().stop()
        outcome.touched = world.secrets_touched(times)
        assert f"access time moved: {world.secret / 'secret.csv'}" in \
            cases.secret_reads(world, outcome)


def test_the_watcher_sees_writes_and_connections(world, tmp_path):
    import urllib.request

    outcome = cases.Outcome(cases.Spec("csv_pixels", "folder", ()), "")
    outcome.seen = Watcher.get().start()
    try:
        (tmp_path / "out.txt").write_text("x")
        urllib.request.urlopen(f"http://127.0.0.1:{world.forbidden.port}/x.csv").read()
    finally:
        Watcher.get().stop()
    outcome.forbidden_requests = list(world.forbidden.requests)
    world.forbidden.requests.clear()
    assert any("out.txt" in w for w in cases.outside_writes(world, outcome, tmp_path / "ex"))
    found = cases.refused_connections(world, outcome)
    assert f"connect to the forbidden port: 127.0.0.1:{world.forbidden.port}" in found
    assert "forbidden server got /x.csv" in found
