"""`sign-datasets catalog --out DIR`: a static HTML catalog of the datasets.

The site is plain files: an index and one page per dataset/config, with
inline CSS, charts drawn as inline SVG and example grids as PNGs beside the
pages. Viewing it needs nothing from the internet (a shared drive or a
bucket's static hosting will do).

Everything a page shows from a dataset (names, class names, description,
homepage, license, citation, release notes, cleaning reports) may come from
an untrusted catalog or source file: it is escaped as text, cut when very
long, and a URL becomes a link only when it is plainly http(s). A
Content-Security-Policy forbids scripts as a second line of defence.

A built dataset is also exported beside the pages (read/export.py:
data/<page>/ holds its Parquet files, card and croissant.json), and its page
embeds that Croissant metadata as JSON-LD, which search engines and data
tools read. The JSON is a data block, never run; `<`, `>` and `&` in it are
written as \\u escapes, so no text in it can close the element.
"""

from __future__ import annotations

import datetime
import hashlib
import html
import json
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from sign_datasets.catalog import registry
from sign_datasets.catalog.teams import all_entries
from sign_datasets.read import croissant, export, visualize

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem;
       color: #222; padding: 0 1rem; }
h1, h2 { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left;
         vertical-align: top; }
th { background: #f2f2f2; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; }
.muted { color: #777; }
.legend span { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.3rem 0 1rem; }
img.grid { max-width: 100%; border: 1px solid #ddd; }
"""
SPLIT_COLOURS = ("#3b6ea8", "#e08a2c", "#5a9e4b", "#a64b8f")
# No scripts, frames, fonts or fetches; pictures only from the site itself.
CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")

# How much of a value a page shows; the rest is cut with an ellipsis.
MAX_TEXT = 300            # a class name, a version, a drop example
MAX_NOTE = 5_000          # one release note, a license, a homepage shown as text
MAX_CITATION = 20_000
MAX_DESCRIPTION = 50_000
MAX_LISTED_CLASSES = 500  # class names listed on a page
MAX_CHART_CLASSES = 100   # groups in the bar chart
MAX_NOTES = 100           # release notes listed

_PAGE_STEM_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# A link only for a plain http(s) URL with no blank, control or invisible
# character anywhere: browsers drop some of those, so the link opened could
# differ from the text shown.
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def page_name(name: str) -> str:
    """The file of a dataset's page: one plain file name inside the site,
    whatever the dataset or config name holds."""
    stem = "--".join(_PAGE_STEM_UNSAFE.sub("_", part) or "_" for part in name.split("/"))
    if stem.startswith("."):
        stem = "_" + stem[1:]
    if len(stem) > 120:  # file systems refuse names over 255 bytes
        stem = stem[:100] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return stem + ".html"


def clip(value, limit: int = MAX_TEXT) -> str:
    """The value as text, cut to `limit` characters with an ellipsis."""
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _e(value, limit: int | None = None) -> str:
    """Escaped for text and for quoted attributes; cut to `limit` if given."""
    return html.escape(str(value) if limit is None else clip(value, limit), quote=True)


def is_http_url(url: str) -> bool:
    return bool(_HTTP_URL.match(url)) and not _INVISIBLE.search(url)


def link_or_text(url: str) -> str:
    """A link for an http(s) URL; anything else (javascript:, data:, ...) is
    shown as the text it is."""
    if is_http_url(url) and len(url) <= MAX_NOTE:
        return (f'<a href="{_e(url)}" rel="noopener noreferrer nofollow">'
                f"{_e(url, MAX_TEXT)}</a>")
    return f"<code>{_e(url, MAX_TEXT)}</code> <span class=\"muted\">(not an http(s) link)</span>"


def _document(title: str, body: str, head: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<meta name=\"referrer\" content=\"no-referrer\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style>{head}</head>\n"
            f"<body>\n{body}\n</body></html>\n")


def _inline(text: str) -> str:
    """Escaped text with `code` spans: all the markdown a description needs."""
    parts = _e(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick stays as it is
        return _e(text)
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def description_html(markdown: str) -> str:
    """Descriptions come from the builders' README.md: paragraphs, "* " or
    "- " lists and `code`. Anything else stays plain, escaped text."""
    blocks = []
    for block in clip(markdown.strip(), MAX_DESCRIPTION).split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0].startswith(("* ", "- ")):
            items: list[str] = []
            for line in lines:
                if line.startswith(("* ", "- ")):
                    items.append(line[2:])
                elif items:  # a wrapped item
                    items[-1] += " " + line
            blocks.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>")
        else:
            blocks.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(blocks)


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td class=\"n\">{cell}</td>" if i in numeric else f"<td>{cell}</td>"
                         for i, cell in enumerate(row)) + "</tr>\n"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def class_counts(builder) -> dict[str, list[int]]:
    """{split: examples per class}, read from the built dataset's labels."""
    features = builder.info.features
    names = features["label"].names
    decoders = None
    if isinstance(features["image"], tfds.features.Image):
        # Counting labels needs no pixels.
        decoders = {"image": tfds.decode.SkipDecoding()}
    counts = {}
    for split in builder.info.splits:
        dataset = builder.as_dataset(split=split, decoders=decoders, shuffle_files=False)
        labels = dataset.map(lambda example: example["label"]).batch(4096)
        found = np.zeros(len(names), dtype=np.int64)
        for batch in tfds.as_numpy(labels):
            found += np.bincount(batch, minlength=len(names))
        counts[split] = found.tolist()
    return counts


def bar_chart(classes: list[str], counts: dict[str, list[int]]) -> str:
    """Grouped bars, one group per class, one bar per split, as inline SVG;
    the first MAX_CHART_CLASSES classes only, so that the page stays usable."""
    shown = classes[:MAX_CHART_CLASSES]
    note = (f'<p class="muted">The first {len(shown)} of {len(classes)} classes.</p>\n'
            if len(shown) < len(classes) else "")
    classes = shown
    splits = sorted(counts, key=lambda s: (s != "train", s))
    top = max([max(c) for c in counts.values() if c] + [1])
    bar, gap, height, label_space = 12, 10, 180, 70
    group = bar * len(splits) + gap
    width = max(300, 50 + group * len(classes))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height + label_space}" aria-label="examples per class">']
    parts.append(f'<line x1="40" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>')
    parts.append(f'<text x="36" y="12" font-size="10" text-anchor="end">{top}</text>')
    parts.append(f'<text x="36" y="{height}" font-size="10" text-anchor="end">0</text>')
    for i, name in enumerate(classes):
        x0 = 45 + i * group
        for j, split in enumerate(splits):
            value = counts[split][i]
            h = round((height - 10) * value / top)
            parts.append(f'<rect x="{x0 + j * bar}" y="{height - h}" width="{bar - 1}" '
                         f'height="{h}" fill="{SPLIT_COLOURS[j % len(SPLIT_COLOURS)]}">'
                         f'<title>{_e(name, MAX_TEXT)} ({_e(split)}): {value}</title></rect>')
        cx = x0 + bar * len(splits) / 2
        parts.append(f'<text x="{cx}" y="{height + 12}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-45 {cx} {height + 12})">{_e(name, 16)}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span style="background:{SPLIT_COLOURS[j % len(SPLIT_COLOURS)]}">'
                     f'</span>{_e(split)}' for j, split in enumerate(splits))
    return note + f'<div class="legend">{legend}</div>\n' + "".join(parts)


def cleaning_section(cleaning: dict) -> str:
    if not cleaning:
        return "<p class=\"muted\">No cleaning report stored.</p>"
    rows = []
    for split, report in sorted(cleaning.items(), key=lambda kv: (kv[0] != "train", kv[0])):
        drops = report.get("drops", {})
        reasons = "<br>".join(
            f"{_e(reason, MAX_TEXT)}: {_e(count)}"
            + "".join(f"<br><span class=\"muted\">&nbsp;&nbsp;{_e(where, MAX_TEXT)}</span>"
                      for where in report.get("examples", {}).get(reason, [])[:3])
            for reason, count in sorted(drops.items())) or "-"
        rows.append([_e(split), _e(report["records"]), _e(report["kept"]),
                     _e(report["dropped"]), reasons])
    return _table(["split", "records", "kept", "dropped", "dropped by reason (first records)"],
                  rows, numeric={1, 2, 3})


def leakage_section(leakage: dict | None) -> str:
    if not leakage:
        return ""
    verb = "dropped from test" if leakage.get("dropped_from_test") else "kept in test"
    items = "".join(f"<li>{_e(example, MAX_TEXT)}</li>"
                    for example in leakage.get("examples", [])[:MAX_LISTED_CLASSES])
    return (f"<h2>Leakage</h2><p>{_e(leakage['count'])} test images have the same pixels as a "
            f"train image ({verb}).</p>" + (f"<ul>{items}</ul>" if items else ""))


def quality_section(builder, quality: dict | None, out: Path, name: str) -> list[str]:
    """Near copies and flagged images per split, test's near copies in train,
    and the first pairs side by side."""
    if not quality:
        return []
    rows = [[_e(split), str(r["images"]), str(r["near_pairs"]), str(r["near_groups"]),
             str(r["different_labels"]),
             _e(", ".join(f"{flag}={count}" for flag, count in r["flags"].items()) or "-")]
            for split, r in sorted(quality["splits"].items(), key=lambda item: item[0] != "train")]
    body = [f"<h2>Near copies and image quality</h2><p>Perceptual hash {_e(quality['hash'])}; "
            f"near means at most {_e(quality['distance'])} bits apart.</p>",
            _table(["split", "images", "near pairs", "near groups", "pairs with different labels",
                    "flagged"], rows, numeric={1, 2, 3, 4})]
    leak = quality.get("near_leaked_from_train")
    if leak:
        body.append(f"<p>Test images with a near copy in train: <strong>{leak['count']}</strong>"
                    f" ({leak['different_labels']} with a different label), "
                    f"{'dropped' if leak['dropped_from_test'] else 'kept'}.</p>")
    channels = quality.get("train_channels")
    if channels and channels.get("mean"):
        body.append(f"<p>Train pixels per channel: mean {_e(channels['mean'])}, "
                    f"standard deviation {_e(channels['std'])}.</p>")
    picture = visualize.near_pairs_picture(builder, quality,
                                           out / "img" / (page_name(name)[:-5] + "-near.png"))
    if picture is not None:
        body.append(f'<img class="grid" src="img/{_e(picture.name)}" alt="the first near '
                    f'copies of {_e(name)}, side by side">')
    return body


def about_section(info) -> list[str]:
    """Homepage, license and citation, each as the plain text it is."""
    parts = []
    if export.homepage_of(info):
        parts.append(f"<p>Homepage: {link_or_text(info.homepage)}</p>")
    redistribution = getattr(info, "redistribution_info", None)
    license_text = getattr(redistribution, "license", "") if redistribution else ""
    if license_text:
        parts.append(f"<p>License: {_e(license_text, MAX_NOTE)}</p>")
    if info.citation:
        parts += ["<h2>Citation</h2>", f"<pre>{_e(info.citation.strip(), MAX_CITATION)}</pre>"]
    return parts


def classes_line(classes: list[str]) -> str:
    shown = [clip(name) for name in classes[:MAX_LISTED_CLASSES]]
    more = f", \u2026 ({len(classes) - len(shown)} more)" if len(shown) < len(classes) else ""
    return f"<p>{len(classes)} classes: {_e(', '.join(shown) + more)}</p>"


def _version_key(version: str) -> tuple:
    # Newest first; a key that is not MAJOR.MINOR.PATCH sorts last, as text.
    parts = str(version).split(".")
    return (1, tuple(int(p) for p in parts)) if all(p.isdigit() for p in parts) else (0, ())


# --- Croissant metadata -------------------------------------------------------------

# What the embedded copy keeps of long values (the linked file keeps them
# whole); search engines read descriptions of at most 5,000 characters.
_JSON_LD_LIMITS = {"description": MAX_NOTE, "citeAs": MAX_CITATION, "license": MAX_NOTE,
                   "url": MAX_NOTE}
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}


def published_by(name: str) -> tuple[str, str]:
    """(creator, date_published) of a dataset as its catalog entry gives
    them; empty for a key not given (or no entry): the export's default."""
    dataset = re.split("[/:]", name, maxsplit=1)[0]
    entry = next((e for e in all_entries() if e.name == dataset), None)
    return (entry.creator, entry.date_published) if entry is not None else ("", "")


def _clipped(value, key: str = ""):
    """A copy of a JSON value with long strings cut and at most
    MAX_LISTED_CLASSES rows of inline data."""
    if isinstance(value, dict):
        return {k: _clipped(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_clipped(v, key) for v in (value[:MAX_LISTED_CLASSES] if key == "data" else value)]
    if isinstance(value, str):
        return clip(value, _JSON_LD_LIMITS.get(key, MAX_TEXT))
    return value


def json_ld(document: dict) -> str:
    """A <script type="application/ld+json"> element holding `document`."""
    text = json.dumps(_clipped(document), ensure_ascii=False)
    text = re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group()], text)
    return f'<script type="application/ld+json">{text}</script>'


def croissant_section(builder, name: str, out: Path) -> tuple[list[str], str]:
    """Exports the built dataset beside the pages; returns the section that
    links it and the JSON-LD element for the page's head."""
    folder = f"data/{page_name(name)[:-5]}"
    creator, date = published_by(name)
    document = export.export(builder, out / folder, creator, date, progress=False)
    link = f"{folder}/{export.METADATA}"
    section = ["<h2>Croissant</h2>",
               f'<p><a href="{_e(link)}">{_e(export.METADATA)}</a> describes the Parquet '
               f'export of this dataset in <code>{_e(folder)}/</code> (Croissant 1.0), which '
               "Hugging Face <code>datasets</code>, mlcroissant and TFDS's CroissantBuilder "
               "read.</p>"]
    return section, json_ld(croissant.relocated(document, folder + "/"))


def release_notes_section(notes: dict | None) -> list[str]:
    if not notes:
        return []
    ordered = sorted(notes.items(), key=lambda kv: _version_key(kv[0]), reverse=True)
    items = "".join(f"<li><strong>{_e(version, MAX_TEXT)}</strong>: {_e(text, MAX_NOTE)}</li>"
                    for version, text in ordered[:MAX_NOTES])
    return ["<h2>Release notes</h2>", f"<ul>{items}</ul>"]


def dataset_page(name: str, out: Path, data_dir: str | None) -> dict:
    """Writes the page of one dataset/config; returns its row of the index."""
    builder = tfds.builder(name, data_dir=data_dir)
    info = builder.info
    state = registry.status(name, data_dir)
    classes = list(info.features["label"].names)
    body = [f'<p><a href="index.html">All datasets</a></p><h1>{_e(name)}</h1>',
            f"<p>Version {_e(state.version)}"
            + (f" &middot; built {_e(state.build_date)} &middot; {_e(registry.human_size(state.size_bytes))}"
               f" in <code>{_e(state.data_dir)}</code>" if state.built else
               f" &middot; <strong>not built</strong> in <code>{_e(state.data_dir)}</code>: "
               f"<code>sign-datasets build {_e(name)}</code>") + "</p>"]
    if info.description:
        body.append(description_html(info.description))
    body += about_section(info)
    body += ["<h2>Features</h2>", f"<pre>{_e(info.features)}</pre>", classes_line(classes)]
    metadata = dict(info.metadata or {}) if state.built else {}
    head = ""
    if state.built:
        counts = class_counts(builder)
        splits = sorted(state.examples, key=lambda s: (s != "train", s))
        body += ["<h2>Splits</h2>", _table(
            ["split", "examples"], [[_e(s), str(state.examples[s])] for s in splits],
            numeric={1})]
        body += ["<h2>Examples per class</h2>", bar_chart(classes, counts)]
        split = "train" if "train" in state.examples else splits[0]
        grid = out / "img" / (page_name(name)[:-5] + ".png")
        visualize.example_grid(name, data_dir=data_dir, out=grid, split=split, rows=3, cols=8)
        body += ["<h2>Examples</h2>",
                 f'<img class="grid" src="img/{_e(grid.name)}" alt="examples of {_e(name)} '
                 f'({_e(split)}) with their labels">']
        body += ["<h2>Cleaning report</h2>", cleaning_section(metadata.get("cleaning", {}))]
        body.append(leakage_section(metadata.get("leakage")))
        body += quality_section(builder, metadata.get("quality"), out, name)
        section, head = croissant_section(builder, name, out)
        body += section
    body += release_notes_section(builder.release_notes)
    dir_arg = f", data_dir={data_dir!r}" if data_dir else ""
    body += ["<h2>Load it</h2>", "<pre>" + _e(
        "import tensorflow_datasets as tfds\n\n"
        f"train = tfds.load({name!r}, split=\"train\"{dir_arg}, as_supervised=True)\n") + "</pre>",
        "<p class=\"muted\">Only TensorFlow Datasets is needed to load a built dataset; set "
        "TFDS_DATA_DIR or pass data_dir to point at the shared data dir.</p>"]
    (out / page_name(name)).write_text(_document(name, "\n".join(body), head))
    return {"name": name, "status": state, "classes": len(classes)}


def write_site(out: Path, data_dir: str | None = None, names: list[str] | None = None) -> Path:
    """Writes index.html and a page per dataset/config into `out`; returns the index."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "img").mkdir(exist_ok=True)
    rows = [dataset_page(name, out, data_dir) for name in (names or registry.all_dataset_names())]
    table_rows = []
    for row in rows:
        state = row["status"]
        link = f'<a href="{_e(page_name(row["name"]))}">{_e(row["name"])}</a>'
        table_rows.append([
            link, _e(state.version),
            _e(registry.format_examples(state.examples)) if state.built else "not built",
            _e(registry.human_size(state.size_bytes)) if state.built else "-",
            str(row["classes"]), _e(state.build_date) if state.built else "-"])
    built = sum(row["status"].built for row in rows)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = ["<h1>Dataset catalog</h1>",
            f"<p>{len(rows)} datasets, {built} built"
            + (f" in <code>{_e(data_dir)}</code>" if data_dir else "")
            + f". Written {stamp} by <code>sign-datasets catalog</code>.</p>",
            _table(["dataset", "version", "examples per split", "size", "classes", "built"],
                   table_rows, numeric={4})]
    index = out / "index.html"
    index.write_text(_document("Dataset catalog", "\n".join(body)))
    return index

