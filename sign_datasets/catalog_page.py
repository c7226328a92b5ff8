"""`sign-datasets catalog --out DIR`: a static HTML catalog of the datasets.

The site is plain files: an index and one page per dataset/config, with
inline CSS, charts drawn as inline SVG and example grids as PNGs beside the
pages. Viewing it needs nothing from the internet (a shared drive or a
bucket's static hosting will do).
"""

from __future__ import annotations

import datetime
import html
from pathlib import Path

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


def page_name(name: str) -> str:
    return name.replace("/", "--") + ".html"


def _e(value) -> str:
    return html.escape(str(value))


def _document(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n"
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
    for block in markdown.strip().split("\n\n"):
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
    import numpy as np
    import tensorflow_datasets as tfds

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
    """Grouped bars, one group per class, one bar per split, as inline SVG."""
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
                         f'<title>{_e(name)} ({_e(split)}): {value}</title></rect>')
        cx = x0 + bar * len(splits) / 2
        parts.append(f'<text x="{cx}" y="{height + 12}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-45 {cx} {height + 12})">{_e(name[:16])}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span style="background:{SPLIT_COLOURS[j % len(SPLIT_COLOURS)]}">'
                     f'</span>{_e(split)}' for j, split in enumerate(splits))
    return f'<div class="legend">{legend}</div>\n' + "".join(parts)


def cleaning_section(cleaning: dict) -> str:
    if not cleaning:
        return "<p class=\"muted\">No cleaning report stored.</p>"
    rows = []
    for split, report in sorted(cleaning.items(), key=lambda kv: (kv[0] != "train", kv[0])):
        drops = report.get("drops", {})
        reasons = "<br>".join(
            f"{_e(reason)}: {count}"
            + "".join(f"<br><span class=\"muted\">&nbsp;&nbsp;{_e(where)}</span>"
                      for where in report.get("examples", {}).get(reason, [])[:3])
            for reason, count in sorted(drops.items())) or "-"
        rows.append([_e(split), str(report["records"]), str(report["kept"]),
                     str(report["dropped"]), reasons])
    return _table(["split", "records", "kept", "dropped", "dropped by reason (first records)"],
                  rows, numeric={1, 2, 3})


def leakage_section(leakage: dict | None) -> str:
    if not leakage:
        return ""
    verb = "dropped from test" if leakage.get("dropped_from_test") else "kept in test"
    items = "".join(f"<li>{_e(example)}</li>" for example in leakage.get("examples", []))
    return (f"<h2>Leakage</h2><p>{leakage['count']} test images have the same pixels as a "
            f"train image ({verb}).</p>" + (f"<ul>{items}</ul>" if items else ""))


def dataset_page(name: str, out: Path, data_dir: str | None) -> dict:
    """Writes the page of one dataset/config; returns its row of the index."""
    import tensorflow_datasets as tfds

    from sign_datasets import catalog, visualize

    builder = tfds.builder(name, data_dir=data_dir)
    info = builder.info
    state = catalog.status(name, data_dir)
    classes = list(info.features["label"].names)
    body = [f'<p><a href="index.html">All datasets</a></p><h1>{_e(name)}</h1>',
            f"<p>Version {_e(state.version)}"
            + (f" &middot; built {_e(state.build_date)} &middot; {_e(catalog.human_size(state.size_bytes))}"
               f" in <code>{_e(state.data_dir)}</code>" if state.built else
               f" &middot; <strong>not built</strong> in <code>{_e(state.data_dir)}</code>: "
               f"<code>sign-datasets build {_e(name)}</code>") + "</p>"]
    if info.description:
        body.append(description_html(info.description))
    # TFDS fills in a tensorflow.org address for builders without a homepage.
    if info.homepage and not info.homepage.startswith("https://www.tensorflow.org/datasets/"):
        body.append(f'<p>Homepage: <a href="{_e(info.homepage)}">{_e(info.homepage)}</a></p>')
    body += ["<h2>Features</h2>", f"<pre>{_e(info.features)}</pre>",
             f"<p>{len(classes)} classes: {_e(', '.join(classes))}</p>"]
    metadata = dict(info.metadata or {}) if state.built else {}
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
    notes = builder.release_notes
    if notes:
        ordered = sorted(notes.items(), key=lambda kv: tuple(int(p) for p in kv[0].split(".")),
                         reverse=True)
        body += ["<h2>Release notes</h2>", "<ul>" + "".join(
            f"<li><strong>{_e(v)}</strong>: {_e(t)}</li>" for v, t in ordered) + "</ul>"]
    dir_arg = f", data_dir={data_dir!r}" if data_dir else ""
    body += ["<h2>Load it</h2>", "<pre>" + _e(
        "import tensorflow_datasets as tfds\n\n"
        f"train = tfds.load({name!r}, split=\"train\"{dir_arg}, as_supervised=True)\n") + "</pre>",
        "<p class=\"muted\">Only TensorFlow Datasets is needed to load a built dataset; set "
        "TFDS_DATA_DIR or pass data_dir to point at the shared data dir.</p>"]
    (out / page_name(name)).write_text(_document(name, "\n".join(body)))
    return {"name": name, "status": state, "classes": len(classes)}


def write_site(out: Path, data_dir: str | None = None, names: list[str] | None = None) -> Path:
    """Writes index.html and a page per dataset/config into `out`; returns the index."""
    from sign_datasets import catalog

    out.mkdir(parents=True, exist_ok=True)
    (out / "img").mkdir(exist_ok=True)
    rows = [dataset_page(name, out, data_dir) for name in (names or catalog.all_dataset_names())]
    table_rows = []
    for row in rows:
        state = row["status"]
        link = f'<a href="{_e(page_name(row["name"]))}">{_e(row["name"])}</a>'
        table_rows.append([
            link, _e(state.version),
            _e(catalog.format_examples(state.examples)) if state.built else "not built",
            _e(catalog.human_size(state.size_bytes)) if state.built else "-",
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

