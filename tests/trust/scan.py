"""Runs every attack of tests/trust/cases.py alone and prints which properties it breaks.

    .venv/bin/python tests/trust/scan.py [FILTER]

One line per attack (format, source mode, the spelling): "ok" or the broken
properties with their evidence. Not a test: a map for whoever fixes them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trust import cases  # noqa: E402
from trust.cases import SourceSpec, Spec  # noqa: E402
from trust.world import World  # noqa: E402


def specs():
    for fmt in cases.FORMATS:
        for mode in ("folder", "http"):
            for template in cases.BENIGN_LOCATIONS + cases.PATH_ATTACKS + cases.NET_ATTACKS:
                yield Spec(fmt, mode, (SourceSpec("location", template),), max_failed_share=1.0)
            for template in cases.BENIGN_OBJECTS + cases.OBJECT_ATTACKS:
                yield Spec(fmt, mode, (SourceSpec("object", template),), max_failed_share=1.0)
    for mode in ("folder", "http"):
        for member in cases.MEMBER_ATTACKS:
            yield Spec("csv_pixels", mode, (SourceSpec("location", "csvs.zip", member),))
        yield Spec("zip_folders", mode, (SourceSpec("location", "evil.zip"),))
        for url in cases.BENIGN_URLS + cases.URL_ATTACKS:
            # A good URL beside it: a split of refused URLs alone is empty.
            yield Spec("json_urls", mode, (SourceSpec("location", "good.json"),),
                       urls=(url, "{BASE}good.png"), max_failed_share=1.0)
        for config in cases.CONFIG_NAMES:
            yield Spec("csv_pixels", mode, (SourceSpec("location", "good.csv"),), config=config)
            yield Spec("zip_folders", mode, (SourceSpec("location", "good.zip"),), config=config)


def verdict(world: World, outcome: cases.Outcome) -> list[str]:
    folder = world.base / "ex" / str(world.counter)
    found = []
    for label, items in (("READ", cases.secret_reads(world, outcome)),
                         ("WRITE", cases.outside_writes(world, outcome, folder)),
                         ("NET", cases.refused_connections(world, outcome)),
                         ("CONTENT", cases.repeated_content(outcome))):
        if items:
            found.append(f"{label}: " + "; ".join(items)[:1500])
    unclear = cases.unclear_error(outcome)
    if unclear:
        found.append(f"UNCLEAR: {unclear}")
    if cases.path_like_config(outcome.spec) and outcome.error is None:
        found.append("CONFIG: path-like config name accepted")
    return found


def main(argv: list[str]) -> int:
    wanted = argv[0] if argv else ""
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp))
        try:
            cases.warm_up(world)
            for spec in specs():
                text = f"{spec.fmt} {spec.mode} {spec.sources[0].key}=" \
                       f"{spec.sources[0].template} member={spec.sources[0].member} " \
                       f"config={spec.config} urls={spec.urls}"
                if wanted not in text:
                    continue
                outcome = cases.run(world, spec)
                found = [f.replace(str(world.base), "<base>") for f in verdict(world, outcome)]
                result = ("error " + type(outcome.error).__name__) if outcome.error else "built"
                print(f"{text} -> {result}: " + (" | ".join(found) or "ok"), flush=True)
        finally:
            world.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
