"""The static catalog site (issue 5, section 4), viewed in headless Chromium.

Two team datasets are built (one with a train/test leak), the site is
written, and a real browser opens the index, follows a link to a dataset
page, reads the visible text and checks that every image loaded and that no
request left the site's folder. A screenshot of each page is kept in
test-artifacts/.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import textwrap

import numpy as np
import pytest

from conftest import REPO
from catalog_helpers import make_pets_zip, make_shapes_csvs

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog import page

    root = tmp_path_factory.mktemp("page_team")
    make_pets_zip(root / "pets.zip", leak=True)
    make_shapes_csvs(root / "shapes")
    sha = hashlib.sha256((root / "pets.zip").read_bytes()).hexdigest()
    (root / "catalog.toml").write_text(textwrap.dedent(f"""\
        [[dataset]]
        name = "page_pets"
        version = "1.1.0"
        description = "Cats and dogs of the team's photo booth."
        format = "zip_folders"
        classes = ["cat", "dog"]
        image = {{ mode = "RGB", size = [16, 20] }}
        sources = [{{ location = "pets.zip", sha256 = "{sha}" }}]
        release_notes = {{ "1.0.0" = "First release.", "1.1.0" = "More dogs." }}

        [[dataset]]
        name = "page_shapes"
        version = "1.0.0"
        description = "Hand-drawn shapes."
        format = "csv_pixels"
        classes = ["circle", "square", "triangle"]
        csv_labels = [3, 5, 7]
        image = {{ mode = "L", size = [8, 8] }}
        sources = [{{ location = "shapes/train.csv" }}, {{ location = "shapes/test.csv", split = "test" }}]
        """))
    teams.register_file(root / "catalog.toml")
    data_dir = root / "data"
    for name in ("page_pets", "page_shapes"):
        tfds.builder(name, data_dir=str(data_dir)).download_and_prepare()
    out = root / "site"
    index = page.write_site(out, data_dir=str(data_dir),
                                    names=["page_pets/default", "page_shapes",
                                           "sign_mnist_csv/dirty"])
    return {"index": index, "out": out, "data_dir": data_dir}


def test_the_page_shows_the_first_near_copies_side_by_side(site):
    """page_pets' test leak (a train picture copied into test) is a near
    copy at 0 bits: the page draws it beside its train original."""
    from PIL import Image

    page = (site["out"] / "page_pets--default.html").read_text()
    assert "Near copies and image quality" in page and "page_pets--default-near.png" in page
    with Image.open(site["out"] / "img" / "page_pets--default-near.png") as picture:
        assert picture.format == "PNG" and picture.size[0] >= 600
        pixels = np.asarray(picture.convert("L"))
    assert pixels.std() > 10  # pictures drawn, not a blank canvas


def test_site_files_are_self_contained(site):
    index = site["index"].read_text()
    assert "page_pets/default" in index and "train=10, test=5" in index
    assert "not built" in index  # sign_mnist_csv/dirty was not built here
    for page in site["out"].glob("*.html"):
        # The Croissant JSON-LD names its vocabularies by http:// URIs; no
        # page loads them.
        text = re.sub(r'<script type="application/ld\+json">.*?</script>', "",
                      page.read_text(), flags=re.DOTALL)
        assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "<script" not in text and "<link" not in text


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(.ci/run installs it)")
def test_catalog_site_in_headless_chromium(site):
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        # As root (CI) Chromium refuses its sandbox.
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(site["index"].as_uri())
            text = page.inner_text("body")
            assert "Dataset catalog" in text and "3 datasets, 2 built" in text
            rows = page.eval_on_selector_all(
                "tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText))")
            by_name = {row[0]: row for row in rows}
            assert by_name["page_pets/default"][1:3] == ["1.1.0", "train=10, test=5"]
            assert by_name["page_pets/default"][4] == "2"
            assert by_name["page_shapes"][2] == "train=9, test=3"
            assert by_name["page_shapes"][4] == "3"
            assert by_name["sign_mnist_csv/dirty"][2] == "not built"
            page.screenshot(path=str(ARTIFACTS / "catalog-index.png"), full_page=True)

            page.click("text=page_pets/default")
            page.wait_for_load_state("load")
            assert page.url.endswith("/page_pets--default.html")
            text = page.inner_text("body")
            for expected in ("Cats and dogs of the team's photo booth.", "Features",
                             "ClassLabel(shape=(), dtype=int64, num_classes=2)",
                             "Examples per class", "Cleaning report", "duplicate_image: 1",
                             "not_an_image: 1", "Leakage",
                             "1 test images have the same pixels as a train image (kept in test)",
                             "Near copies and image quality",
                             "Test images with a near copy in train: 1",
                             "1.1.0: More dogs.", "1.0.0: First release.",
                             'tfds.load(\'page_pets/default\', split="train"'):
                assert expected in text, expected
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
            assert images and all(complete and width > 0 for _, complete, width in images), images
            bars = page.eval_on_selector_all("svg rect", "rects => rects.map(r => r.textContent)")
            assert sorted(bars) == ["cat (test): 3", "cat (train): 5", "dog (test): 2",
                                    "dog (train): 5"]
            page.screenshot(path=str(ARTIFACTS / "catalog-page_pets.png"), full_page=True)
            assert requests and all(url.startswith("file://") for url in requests), requests
        finally:
            browser.close()
    assert (ARTIFACTS / "catalog-page_pets.png").stat().st_size > 10_000


def test_descriptions_render_lists_and_code_and_escape_the_rest():
    from sign_datasets.catalog.page import description_html

    html = description_html("Rows of `label,pixel1` <b>raw</b>\nwrapped.\n\nConfigs:\n\n"
                            "* `original` (default): train\n  and test\n* `dirty`: the copy\n\n"
                            "an odd ` tick")
    assert html.split("\n") == [
        "<p>Rows of <code>label,pixel1</code> &lt;b&gt;raw&lt;/b&gt; wrapped.</p>",
        "<p>Configs:</p>",
        "<ul><li><code>original</code> (default): train and test</li>"
        "<li><code>dirty</code>: the copy</li></ul>",
        "<p>an odd ` tick</p>",
    ]
