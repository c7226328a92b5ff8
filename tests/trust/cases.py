"""Generated team catalogs that try to cross the trust boundary, and one run of each.

A `Spec` is one catalog entry (format, sources, config name, and for
json_urls the URLs its data.json lists) and where SIGN_DATASETS_SOURCE points
(the allowed server or the `src/` folder). `run` registers it and builds it
through TFDS while the watcher records; `Outcome` holds what happened and
`violations` says which properties broke.

Templates: {SECRET} the secret folder, {SECRETQ} it percent-encoded,
{SECRET_NFD} / {NFD} NFD spellings, {ROOT} the catalog folder, {SRC} the
source folder, {BASE} the source base URL, {A} / {F} the allowed and
forbidden ports, {X} the extension the format reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
from pathlib import Path

from .world import (CANARIES, FORBIDDEN_CANARIES, REDIRECT_TARGETS, Seen, Watcher, World,
                    environment, temp_dir)

FORMATS = {"csv_pixels": "csv", "zip_folders": "zip", "json_urls": "json"}

BENIGN_LOCATIONS = ("good.{X}", "{ROOT}/good.{X}", "file://{ROOT}/good.{X}",
                    "http://127.0.0.1:{A}/good.{X}")
BENIGN_OBJECTS = ("good.{X}",)

# Local spellings of a secret file.
PATH_ATTACKS = (
    "{SECRET}/secret.{X}",
    "../{NFD}/secret.{X}",
    "../sécret/secret.{X}",
    "./../sécret/secret.{X}",
    "sub/../../sécret/secret.{X}",
    "..//sécret//secret.{X}",
    "{ROOT}/../sécret/secret.{X}",
    "link.{X}",
    "{ROOT}/link.{X}",
    "linkdir/secret.{X}",
    "~/secret.{X}",
    "~/../sécret/secret.{X}",
    "file://{SECRET}/secret.{X}",
    "file://{SECRETQ}/secret.{X}",
    "file://localhost{SECRET}/secret.{X}",
    "file://{ROOT}/%2e%2e/sécret/secret.{X}",
    "file://{ROOT}/%2E%2E/s%C3%A9cret/secret.{X}",
    "file://{ROOT}/link.{X}",
    "file://{ROOT}/linkdir/secret.{X}",
    "file:///{SECRET}/secret.{X}",
    "file://{ROOT}/..%2fsécret%2fsecret.{X}",
    "{SECRET_NFD}/secret.{X}",
    "{SECRET}/./secret.{X}.",
    "{SECRET}./secret.{X}",
    "//{SECRET}//secret.{X}",
    "{ROOT}/%2e%2e/sécret/secret.{X}",
)

# URLs on the forbidden server, in every spelling, directly or through the allowed one.
NET_ATTACKS = (
    "http://127.0.0.1:{F}/secret.{X}",
    "http://2130706433:{F}/secret.{X}",
    "http://0x7f.1:{F}/secret.{X}",
    "http://127.1:{F}/secret.{X}",
    "http://[::ffff:127.0.0.1]:{F}/secret.{X}",
    "http://localhost:{F}/secret.{X}",
    "http://127.0.0.1.:{F}/secret.{X}",
    "http://0177.0.0.1:{F}/secret.{X}",
    "http://u:p@127.0.0.1:{F}/secret.{X}",
    "http://u:p@127.0.0.1:{A}/good.{X}",
    "http://127.0.0.1:{A}@127.0.0.1:{F}/secret.{X}",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
) + tuple(f"http://127.0.0.1:{{A}}/r/{k}.{{X}}" for k in range(len(REDIRECT_TARGETS)))

# Names under SIGN_DATASETS_SOURCE.
OBJECT_ATTACKS = (
    "../sécret/secret.{X}",
    "%2e%2e/sécret/secret.{X}",
    "%2E%2E/s%C3%A9cret/secret.{X}",
    "a/%2e%2e/%2e%2e/sécret/secret.{X}",
    "..%2fsécret%2fsecret.{X}",
    ".%2e/sécret/secret.{X}",
    "%252e%252e/sécret/secret.{X}",
    "link.{X}",
    "linkdir/secret.{X}",
    "~/secret.{X}",
    "./../sécret/secret.{X}",
    "..\\sécret\\secret.{X}",
    "%2F{SECRET}/secret.{X}",
    "/{SECRET}/secret.{X}",
    "//127.0.0.1:{F}/secret.{X}",
    "@127.0.0.1:{F}/secret.{X}",
    "r/0.{X}",
)

# What a data.json may list (each fetched by the build).
URL_ATTACKS = PATH_ATTACKS + NET_ATTACKS + (
    "https://storage.googleapis.com/platzi-tf2/%2e%2e/sécret/secret.png",
    "https://storage.googleapis.com/platzi-tf2/../sécret/secret.png",
    "https://storage.googleapis.com/platzi-tf2/linkdir/secret.png",
    "file://{SRC}/%2e%2e/sécret/secret.png",
    "file://{SRC}/link.png",
    "file://{SRC}/linkdir/secret.png",
    "file://{SRC}/../sécret/secret.png",
)
BENIGN_URLS = ("{BASE}good.png", "https://storage.googleapis.com/platzi-tf2/good.png")

MEMBER_ATTACKS = ("../../sécret/secret.csv", "{SECRET}/secret.csv", "train.csv")

# Config names become folders of the data dir.
CONFIG_NAMES = ("small", "../../../esc_cfg", "a/../../../../esc_cfg", "{SECRET}/esc_cfg", "..",
                ".", "~", "x/y", "Big.One", "\u00e9t\u00e9")


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    key: str                # "location" or "object"
    template: str
    member: str | None = None
    split: str = "train"


@dataclasses.dataclass(frozen=True)
class Spec:
    fmt: str
    mode: str               # "http": the allowed server is the source; "folder": src/ is
    sources: tuple[SourceSpec, ...]
    config: str | None = None
    urls: tuple[str, ...] = ()
    max_failed_share: float | None = None   # json_urls: 1.0 counts every failed URL as a drop


@dataclasses.dataclass
class Outcome:
    spec: Spec
    catalog_text: str
    error: BaseException | None = None
    cleaning: dict | None = None
    examples: dict | None = None
    seen: Seen | None = None
    touched: list[str] = dataclasses.field(default_factory=list)
    new_names: list[str] = dataclasses.field(default_factory=list)
    leaked: list[str] = dataclasses.field(default_factory=list)
    fetched_forbidden: list[str] = dataclasses.field(default_factory=list)
    output: str = ""
    forbidden_requests: list = dataclasses.field(default_factory=list)
    credential_requests: list = dataclasses.field(default_factory=list)


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)


def source_base(world: World, spec: Spec) -> str:
    if spec.mode == "http":
        return f"http://127.0.0.1:{world.allowed.port}/"
    return world.src.as_uri() + "/"


def catalog_text(world: World, spec: Spec, name: str) -> str:
    ext = FORMATS[spec.fmt]
    base = source_base(world, spec)
    lines = [f'[[dataset]]\nname = "{name}"\nversion = "1.0.0"\n'
             f'description = "A trust-boundary example."\nformat = "{spec.fmt}"\n'
             'classes = ["a", "b"]\nimage = { mode = "L", size = [2, 2] }\nsources = [']
    for source in spec.sources:
        fields = [f"{source.key} = {_toml(world.fill(source.template, ext, base))}"]
        if source.member is not None:
            fields.append(f"member = {_toml(world.fill(source.member, ext, base))}")
        if spec.fmt != "zip_folders":
            fields.append(f'split = "{source.split}"')
        lines.append("  { " + ", ".join(fields) + " },")
    lines.append("]")
    if spec.max_failed_share is not None and spec.fmt == "json_urls":
        lines.append(f"cleaning = {{ max_failed_share = {spec.max_failed_share} }}")
    if spec.config is not None:
        lines.append(f"configs = [{{ name = {_toml(world.fill(spec.config, ext, base))} }}]")
    return "\n".join(lines) + "\n"


def data_json(world: World, spec: Spec) -> bytes:
    base = source_base(world, spec)
    return b"".join(json.dumps({"content": world.fill(url, "png", base), "label": "ab"[i % 2]})
                    .encode() + b"\n" for i, url in enumerate(spec.urls))


def _publish_data_json(world: World, spec: Spec) -> None:
    data = data_json(world, spec) or b'{"content": "x", "label": "a"}\n'
    for folder in (world.root, world.src):
        (folder / "good.json").write_bytes(data)
    world.allowed.files["/good.json"] = data


def warm_up(world: World) -> None:
    """One build with HOME elsewhere: TensorFlow, Keras and matplotlib write
    their caches under HOME when first imported, which a build does lazily."""
    run(world, Spec("csv_pixels", "folder", (SourceSpec("location", "good.{X}"),)),
        home=world.base / "warm-up-home")


def run(world: World, spec: Spec, home: Path | None = None) -> Outcome:
    """Registers and builds `spec` in this process while the watcher records."""
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams

    number, folder = world.new_example_dirs()
    name = f"trust_case_{number}"
    catalog = world.root / f"catalog_{number}.toml"
    text = catalog_text(world, spec, name)
    catalog.write_text(text, encoding="utf-8")
    _publish_data_json(world, spec)
    outcome = Outcome(spec, text)
    env = {"SIGN_DATASETS_SOURCE": source_base(world, spec) if spec.mode == "http"
           else str(world.src),
           "HOME": str(home or world.home), "SIGN_DATASETS_WORKERS": "1",
           "SIGN_DATASETS_FETCH_RETRIES": "0", "SIGN_DATASETS_FETCH_WORKERS": "2",
           "SIGN_DATASETS_FETCH_TIMEOUT": "5", "SIGN_DATASETS_ALLOWED_ROOTS": None,
           "SIGN_DATASETS_ALLOWED_HOSTS": None, "SIGN_DATASETS_CATALOG": None}
    data_dir, downloads = folder / "data", folder / "downloads"
    before_tree = world.tree()
    world.forbidden.requests.clear()
    world.allowed.requests.clear()
    times = world.secret_times()
    output = io.StringIO()
    watcher = Watcher.get()
    with environment(env), temp_dir(folder / "tmp"), contextlib.redirect_stdout(output), \
            contextlib.redirect_stderr(output):
        outcome.seen = watcher.start()
        try:
            entry = teams.register_file(catalog)[0]
            builder = tfds.builder(entry.name, data_dir=str(data_dir),
                                   **({"config": entry.configs[0].name} if entry.configs else {}))
            builder.download_and_prepare(download_dir=str(downloads))
            metadata = dict(builder.info.metadata or {})
            outcome.cleaning = {split: dict(report)
                                for split, report in metadata.get("cleaning", {}).items()}
            outcome.examples = {split: info.num_examples
                                for split, info in builder.info.splits.items()}
        except Exception as error:  # noqa: BLE001 - the error is the outcome
            outcome.error = error
        finally:
            watcher.stop()
    outcome.touched = world.secrets_touched(times)
    outcome.new_names = sorted(world.tree() - before_tree)
    _remove(outcome.new_names)
    outcome.leaked = _canaries_in(CANARIES, data_dir, downloads)
    outcome.fetched_forbidden = _canaries_in(FORBIDDEN_CANARIES, data_dir, downloads)
    outcome.output = output.getvalue()
    outcome.forbidden_requests = list(world.forbidden.requests)
    outcome.credential_requests = [r for r in world.allowed.requests if r[1]]
    return outcome


def _remove(names: list[str]) -> None:
    """Takes away what an example left outside its dirs: the next one (and a
    replay of this one) starts from the same world."""
    for name in sorted(names, key=len, reverse=True):
        if os.path.isdir(name) and not os.path.islink(name):
            shutil.rmtree(name, ignore_errors=True)
        elif os.path.lexists(name):
            os.unlink(name)


def _canaries_in(canaries, *folders: Path) -> list[str]:
    found = []
    for top in folders:
        for folder, _, files in os.walk(top):
            for name in files:
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    data = f.read()
                found += [f"{path}: {c!r}" for c in canaries if c in data]
    return found


def _inside(path: str, folders) -> bool:
    real = os.path.realpath(path)
    return any(real == str(f) or real.startswith(str(f) + os.sep) for f in folders)


# --- the properties ------------------------------------------------------------------------

def secret_reads(world: World, outcome: Outcome) -> list[str]:
    """Opens or listings that reach a secret, and secrets whose access time moved."""
    seen = outcome.seen
    found = [f"open {p}" for p in seen.reads if _inside(p, world.secrets) and os.path.exists(p)]
    found += [f"listing {p}" for p in seen.listings if _inside(p, world.secrets)]
    found += [f"access time moved: {p}" for p in outcome.touched]
    found += [f"secret bytes in the build's output: {p}" for p in outcome.leaked]
    return sorted(set(found))


def outside_writes(world: World, outcome: Outcome, folder: Path) -> list[str]:
    allowed = [folder / "data", folder / "downloads", folder / "tmp", Path("/dev/null")]
    allowed = [Path(os.path.realpath(p)) for p in allowed]
    found = [f"{event} {p}" for event, p in outcome.seen.writes if not _inside(p, allowed)]
    found += [f"new file outside the data and download dirs: {n}" for n in outcome.new_names]
    return sorted(set(found))


def refused_connections(world: World, outcome: Outcome) -> list[str]:
    found = [f"forbidden server got {path}" for path, _ in outcome.forbidden_requests]
    found += [f"connect to the forbidden port: {host}:{port}"
              for host, port in outcome.seen.connects if port == world.forbidden.port]
    found += [f"off loopback: {what}" for what in outcome.seen.off_loopback]
    found += [f"forbidden server's bytes in the build's output: {p}"
              for p in outcome.fetched_forbidden]
    found += [f"credentials sent to the allowed server: {path}"
              for path, _ in outcome.credential_requests]
    return sorted(set(found))


def unclear_error(outcome: Outcome) -> str | None:
    """Why the outcome is neither a counted build nor a clear error (None if it is one)."""
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.core.cleaning import SourceError

    error = outcome.error
    if error is None:
        for split, report in (outcome.cleaning or {}).items():
            drops = sum(report["drops"].values())
            if report["records"] != report["kept"] + drops:
                return f"{split}: records {report['records']} != kept + drops {report}"
            if outcome.examples.get(split) != report["kept"]:
                return f"{split}: {outcome.examples.get(split)} examples, {report['kept']} kept"
        return None
    message = str(error)
    if not isinstance(error, (CatalogError, SourceError)):
        return f"{type(error).__module__}.{type(error).__name__}: {message[:300]}"
    if "\n" in message.strip():
        return f"{type(error).__name__} over {message.count(chr(10)) + 1} lines: {message[:300]}"
    return None


def repeated_content(outcome: Outcome) -> list[str]:
    """Canaries of files and responses it should not have read, in its messages."""
    texts = [outcome.output] + ([str(outcome.error)] if outcome.error else [])
    return [f"{c!r} in {'error' if i else 'output'}" for i, text in enumerate(texts)
            for c in CANARIES + FORBIDDEN_CANARIES if c.decode("latin-1") in text]


def path_like_config(spec: Spec) -> bool:
    """A config name that would name another folder than its own (it must be refused)."""
    name = spec.config
    return name is not None and (name in (".", "..") or "/" in name or "\\" in name)


def describe(world: World, outcome: Outcome) -> str:
    if outcome.error is not None:
        result = f"{type(outcome.error).__name__}: {str(outcome.error)[:400]}"
    else:
        result = f"built: {outcome.cleaning}"
    text = outcome.catalog_text.replace(str(world.base), "<base>")
    return f"--- catalog (source {outcome.spec.mode}) ---\n{text}--- outcome ---\n" + \
        result.replace(str(world.base), "<base>")
