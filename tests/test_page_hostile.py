"""Hostile text on pages and pictures (issue 17): a catalog's strings reach the
catalog site and matplotlib as the plain text they are.

A hostile team catalog is built with TFDS (class names that are mathtext or
HTML, descriptions, citations, licenses and release notes holding script
tags, homepages that are javascript: or data: URLs). Values a stricter
catalog validation may refuse (a backslash or slash in a class name, a
homepage that is no http(s) URL) are each in a catalog file of their own:
either the catalog refuses them naming entry and field, or the page shows
them as text. A builder written in Python here carries what no catalog may
hold (a 1 MB description, a 10,000-character class name, more homepage
spellings), since the page must be safe whatever a builder holds.
Every page of the site is opened in headless Chromium and its DOM checked.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PWN = "window.__pwned=1"
SCRIPT = f"<script>{PWN}</script>"
# Each is accepted by any catalog validation: no slash, backslash or control.
TEAM_CLASSES = ("$x^$", f'"><img src=x onerror="{PWN}">', "{{7*7}}", f"<svg onload={PWN}>",
                "$a_{$")
# May be refused by the catalog (a slash, a backslash): then a page never sees them.
SLASH_CLASSES = (r"$\frac{1}{0}$", SCRIPT)
HOSTILE_HOMEPAGES = {
    "hostile_js_home": f" JaVaScRiPt:{PWN}",
    "hostile_data_home": f"data:text/html,{SCRIPT}",
    "hostile_tab_home": f"\tjavascript:{PWN}",
}
TEAM_TEXTS = {
    "description": f"Shapes <b>bold</b> {SCRIPT} `<i>code</i>` {{{{7*7}}}}",
    "license": f"<a href=\"javascript:{PWN}\">MIT</a>",
    "citation": f"@misc{{x, title = {{</pre>{SCRIPT}}}}}",
    "note": f"<img src=x onerror=\"{PWN}\"> {SCRIPT}",
}
LONG_CLASS = "w" * 10_000
PROBE_HOMEPAGES = {
    "js": f" JaVaScRiPt:{PWN}",
    "data": f"data:text/html,{SCRIPT}",
    "tab": f"\tjavascript:{PWN}",
    "newline": f"java\nscript:{PWN}",
    "ctrl": f"\x01javascript:{PWN}",
    "entity": f"&#106;avascript:{PWN}",
    "quote": f'https://example.org/?q="><script>{PWN}</script>',
}


# --- a builder in Python: what no catalog may hold --------------------------------

def _probe_builder_class():
    import tensorflow_datasets as tfds

    class HostilePageProbe(tfds.core.GeneratorBasedBuilder):
        """Class names, description and homepages no catalog would accept."""

        VERSION = tfds.core.Version("1.0.0")
        RELEASE_NOTES = {"1.0.0": SCRIPT, "not-a-version": f"<b>{PWN}</b>"}
        BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="classes")] + [
            tfds.core.BuilderConfig(name=f"home_{key}") for key in PROBE_HOMEPAGES]

        def _info(self):
            config = self.builder_config.name
            homepage = PROBE_HOMEPAGES.get(config.removeprefix("home_"), "https://example.org/")
            # Not dataset_info_from_configs: it reads a README beside the module.
            return tfds.core.DatasetInfo(
                builder=self, description=f"{SCRIPT}\n\n" + "<b>x</b> " * 120_000,  # about 1 MB
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(names=[*SLASH_CLASSES, LONG_CLASS]),
                }),
                supervised_keys=("image", "label"), homepage=homepage,
                citation=f"</pre>{SCRIPT}" + "c" * 100_000, license=SCRIPT)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i in range(6):
                pixels = np.full((8, 8, 1), 40 * i, dtype=np.uint8)
                yield i, {"image": pixels, "label": i % 3}

    return HostilePageProbe


def _shapes_csv(path: Path, labels: int) -> None:
    rng = np.random.default_rng(0)
    header = ",".join(["label"] + [f"pixel{i}" for i in range(1, 65)])
    rows = [",".join(str(v) for v in [i % labels, *rng.integers(0, 256, 64)])
            for i in range(3 * labels)]
    path.write_text("\n".join([header, *rows]) + "\n")


def _toml(value: str) -> str:
    # A TOML basic string: escape backslashes, quotes and control characters.
    import json
    return json.dumps(value, ensure_ascii=False)


def _entry(name: str, classes, homepage: str = "https://example.org/team?a=1&b=2") -> str:
    return textwrap.dedent(f"""\
        [[dataset]]
        name = "{name}"
        version = "1.1.0"
        description = {_toml(TEAM_TEXTS["description"])}
        format = "csv_pixels"
        classes = [{", ".join(_toml(c) for c in classes)}]
        image = {{ mode = "L", size = [8, 8] }}
        homepage = {_toml(homepage)}
        license = {_toml(TEAM_TEXTS["license"])}
        citation = {_toml(TEAM_TEXTS["citation"])}
        sources = [{{ location = "shapes.csv" }}]
        release_notes = {{ "1.0.0" = {_toml(TEAM_TEXTS["note"])}, "1.1.0" = "Second." }}
        """)


def _register_or_refused(path: Path, entry: str, field: str) -> bool:
    """True when the catalog registered; False when it refused the entry,
    naming the entry and the field (a safe outcome too)."""
    from sign_datasets.catalog import entries, teams

    try:
        teams.register_file(path)
    except entries.CatalogError as error:
        assert entry in str(error) and field in str(error), str(error)
        return False
    return True


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import page, teams

    root = tmp_path_factory.mktemp("hostile_page")
    _shapes_csv(root / "shapes.csv", len(TEAM_CLASSES))
    (root / "team.toml").write_text(_entry("hostile_team", TEAM_CLASSES))
    teams.register_file(root / "team.toml")
    names = ["hostile_team"]
    for name, homepage in HOSTILE_HOMEPAGES.items():
        path = root / f"{name}.toml"
        path.write_text(_entry(name, TEAM_CLASSES, homepage))
        if _register_or_refused(path, name, "homepage"):
            names.append(name)
    (root / "slash.toml").write_text(_entry("hostile_slash", SLASH_CLASSES))
    if _register_or_refused(root / "slash.toml", "hostile_slash", "classes"):
        names.append("hostile_slash")

    _probe_builder_class()
    data_dir = root / "data"
    for name in ("hostile_team", "hostile_page_probe/classes"):
        tfds.builder(name, data_dir=str(data_dir)).download_and_prepare()
    names += ["hostile_page_probe/classes"] + [f"hostile_page_probe/home_{k}"
                                               for k in PROBE_HOMEPAGES]
    out = root / "site"
    index = page.write_site(out, data_dir=str(data_dir), names=names)
    return {"index": index, "out": out, "data_dir": str(data_dir), "names": names}


# --- the site in a browser ---------------------------------------------------------

DOM_REPORT = """() => ({
  pwned: typeof window.__pwned,
  scripts: Array.from(document.scripts).map(s => s.type).filter(t => t !== "application/ld+json"),
  handlers: Array.from(document.querySelectorAll("*")).flatMap(e =>
      Array.from(e.attributes).map(a => a.name)).filter(n => n.toLowerCase().startsWith("on")),
  links: Array.from(document.querySelectorAll("[href]")).map(a => a.href),
  embeds: document.querySelectorAll(
      "iframe, object, embed, form, base, meta[http-equiv=refresh]").length,
  text: document.body.innerText,
})"""


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"dialogs": [], "requests": []}
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: seen["requests"].append(request.url))
    # Nothing leaves the machine, whatever a page asks for.
    page.route(lambda u: not u.startswith("file:"), lambda route: route.abort())
    page.goto(url)
    page.wait_for_load_state("load")
    return page, seen


def _expected_text(name: str) -> list[str]:
    if name.startswith("hostile_page_probe"):
        texts = [*SLASH_CLASSES, SCRIPT, "w" * 299 + "\u2026", f"<b>{PWN}</b>"]
        key = name.rsplit("_", 1)[-1] if "/home_" in name else None
        if key in ("js", "data", "entity"):
            texts.append(PROBE_HOMEPAGES[key].strip())
        return texts
    classes = SLASH_CLASSES if name == "hostile_slash" else TEAM_CLASSES
    texts = [*classes, SCRIPT, "<b>bold</b>", "<i>code</i>", "{{7*7}}", TEAM_TEXTS["license"],
             TEAM_TEXTS["citation"], TEAM_TEXTS["note"]]
    if name in HOSTILE_HOMEPAGES:
        texts.append(HOSTILE_HOMEPAGES[name].strip())
    return texts


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(.ci/run installs it)")
def test_hostile_catalog_pages_in_headless_chromium(hostile):
    sync_api = pytest.importorskip("playwright.sync_api")
    site = hostile["out"].resolve().as_uri() + "/"
    pages = sorted(hostile["out"].glob("*.html"))
    assert len(pages) == len(hostile["names"]) + 1
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for path in pages:
                page, seen = _open(browser, path.resolve().as_uri())
                report = page.evaluate(DOM_REPORT)
                where = path.name
                assert seen["dialogs"] == [], where
                assert report["pwned"] == "undefined", where
                assert report["scripts"] == [] and report["handlers"] == [], (where, report)
                assert report["embeds"] == 0, where
                for link in report["links"]:
                    assert link.startswith(("http://", "https://", site)), (where, link)
                assert all(url.startswith(site) for url in seen["requests"]), seen["requests"]
                images = page.eval_on_selector_all(
                    "img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
                assert all(images), where
                if path.name != "index.html":
                    name = next(n for n in hostile["names"]
                                if catalog_page_name(n) == path.name)
                    for expected in _expected_text(name):
                        assert expected in report["text"], (where, expected[:80])
                    assert "w" * 301 not in report["text"], where
                if path.name == "hostile_team.html":
                    page.screenshot(path=str(ARTIFACTS / "catalog-hostile_team.png"),
                                    full_page=True)
                page.close()
        finally:
            browser.close()


def catalog_page_name(name: str) -> str:
    from sign_datasets.catalog.page import page_name
    return page_name(name)


class _Tags(HTMLParser):
    """Every tag and attribute of a page, as a browser's tokenizer sees them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


JSON_LD = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.DOTALL)


def test_hostile_pages_link_only_http_and_cut_long_values(hostile):
    """Checked on the files too, so that a machine without Chromium still tests it."""
    import json

    for path in hostile["out"].glob("*.html"):
        text = path.read_text()
        parser = _Tags()
        parser.feed(text)
        tags = parser.tags
        # The one script a page may hold is its Croissant JSON-LD, a data block
        # in which no <, > or & can close the element.
        blocks = JSON_LD.findall(text)
        assert len(blocks) == sum(tag == "script" for tag, _ in tags) <= 1, path.name
        for block in blocks:
            assert not set("<>&") & set(block), path.name
            assert json.loads(block)["@type"] == "sc:Dataset"
        assert not [tag for tag, attrs in tags if tag in ("iframe", "object", "embed", "form",
                                                          "base")
                    or tag == "script" and attrs.get("type") != "application/ld+json"], path.name
        assert not [name for _, attrs in tags for name in attrs if name.startswith("on")]
        for _, attrs in tags:
            href = attrs.get("href")
            if href is not None:
                assert re.match(r"^(https?://|[A-Za-z0-9_.-]+\.html$|"
                                r"data/[A-Za-z0-9_.-]+/croissant\.json$)", href), (path.name, href)
        assert any(tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
                   for tag, attrs in tags), path.name
    team = JSON_LD.findall((hostile["out"] / "hostile_team.html").read_text())[0]
    assert "\\u003cscript\\u003e" + PWN in team  # the description's script tag, as text
    probe = (hostile["out"] / catalog_page_name("hostile_page_probe/classes")).read_text()
    assert len(probe) < 400_000  # the 1 MB description and 100 kB citation are cut
    assert "w" * 301 not in probe and "w" * 299 + "\u2026" in probe


# --- the example grid and the training plots --------------------------------------

def test_example_grid_draws_math_and_html_class_names_as_text(hostile, tmp_path):
    import matplotlib.pyplot as plt

    from sign_datasets.read import visualize

    for name, classes in (("hostile_team", TEAM_CLASSES),
                          ("hostile_page_probe/classes", (*SLASH_CLASSES, LONG_CLASS))):
        out = visualize.example_grid(name, data_dir=hostile["data_dir"],
                                     out=tmp_path / f"{name.replace('/', '-')}.png",
                                     rows=2, cols=4)
        assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 1000
        # Every example of the split, so every class name is drawn whatever
        # order the shuffle takes (another test may have set TF's global seed).
        figure = visualize.grid_figure(name, data_dir=hostile["data_dir"], rows=6, cols=6)
        try:
            titles = [axis.title.get_text() for axis in figure.axes if axis.images]
            assert not any(axis.title.get_parse_math() for axis in figure.axes)
            figure.canvas.draw()  # an invalid mathtext would raise here
        finally:
            plt.close(figure)
        shown = {visualize.short(c) for c in classes}
        assert titles and set(titles) <= shown, titles
        assert "$x^$" in titles or r"$\frac{1}{0}$" in titles, titles


def test_show_examples_draws_math_class_names_as_text(hostile):
    """Raw-pixel features (the catalog's CSV) and tfds.features.Image (the probe)."""
    import matplotlib.pyplot as plt
    import tensorflow_datasets as tfds

    import sign_datasets  # noqa: F401  (registers the plain-text visualizer)

    for name, expected in (("hostile_team", "$x^$ ("), ("hostile_page_probe/classes",
                                                        r"$\frac{1}{0}$ (")):
        dataset, info = tfds.load(name, split="train", data_dir=hostile["data_dir"],
                                  with_info=True)
        figure = tfds.show_examples(dataset, info, rows=2, cols=3)
        try:
            figure.canvas.draw()  # an invalid mathtext would raise here
            labels = [axis.get_xlabel() for axis in figure.axes]
            assert not any(axis.xaxis.label.get_parse_math() for axis in figure.axes)
        finally:
            plt.close(figure)
        assert any(label.startswith(expected) for label in labels), labels


def test_training_plots_draw_class_names_as_text(tmp_path):
    import matplotlib.pyplot as plt

    from sign_datasets.models import plots

    names = [*TEAM_CLASSES, *SLASH_CLASSES]
    matrix = np.eye(len(names), dtype=int) * 3
    out = plots.plot_confusion_matrix(matrix, names, tmp_path / "cm.png", "$x^$ of {{7*7}}")
    assert out.read_bytes().startswith(b"\x89PNG")
    assert not plt.get_fignums()  # every figure closed
    out = plots.plot_history({"accuracy": [0.1, 0.5], "loss": [2.0, 1.0]}, tmp_path / "h.png",
                             r"$\frac{1}{0}$", best_epoch=1)
    assert out.read_bytes().startswith(b"\x89PNG")


# --- links, one spelling at a time --------------------------------------------------

@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "\tjavascript:x",
    "\njavascript:x", "\x00javascript:x", "java\tscript:x", "java\nscript:x",
    "&#106;avascript:x", "&#x6A;avascript:x", "data:text/html,<script>x</script>",
    "DATA:text/html,x", "vbscript:x", "//evil.example/x", "https:evil.example", "http://",
    "https://example.org/\u202e", "https://exa mple.org/", " https://example.org/",
    "file:///etc/passwd",
])
def test_non_http_urls_are_text_not_links(url):
    from sign_datasets.catalog.page import link_or_text

    rendered = link_or_text(url)
    assert "<a " not in rendered and "href" not in rendered
    assert "<script" not in rendered


def test_http_urls_are_escaped_links():
    from sign_datasets.catalog.page import link_or_text

    rendered = link_or_text('HTTPS://example.org/?q="><script>x</script>&a=1')
    assert rendered.startswith('<a href="HTTPS://example.org/?q=&quot;&gt;&lt;script&gt;'
                               'x&lt;/script&gt;&amp;a=1" rel="noopener noreferrer nofollow">')


def test_page_names_stay_plain_file_names():
    from sign_datasets.catalog.page import page_name

    assert page_name("page_pets/default") == "page_pets--default.html"
    assert page_name("sign_language_img/28x28") == "sign_language_img--28x28.html"
    for hostile_name in ("../../x", "a/..", "javascript:x/y", ".hidden", "x/" + "y" * 500):
        name = page_name(hostile_name)
        assert "/" not in name and ":" not in name and not name.startswith(".")
        assert len(name) < 200
