"""Prints the module-size table of docs/DESIGN.md ("Layers that follow the data"):
lines per module, layer by layer, largest first (`__init__.py` aside)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = [("cli", "sign_datasets/cli"), ("models", "models"), ("replica", "sign_datasets/replica"),
          ("builders", "builders"), ("catalog", "sign_datasets/catalog"),
          ("read", "sign_datasets/read"), ("generate", "sign_datasets/generate"),
          ("formats", "sign_datasets/formats"), ("io", "sign_datasets/io"),
          ("core", "sign_datasets/core")]


def sizes(layer: str, folder: Path) -> list[tuple[str, int]]:
    files = [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts
             and not p.name.endswith("_test.py") and p.name not in ("conftest.py", "__init__.py")]
    if layer == "builders":  # one row per dataset folder: its builder module
        return [(p.parent.name, len(p.read_text().splitlines()))
                for p in files if p.name.endswith("_dataset_builder.py")]
    return [(p.stem, len(p.read_text().splitlines())) for p in files]


def main() -> None:
    print("| layer | lines | modules (lines), largest first |")
    print("|---|---|---|")
    for layer, relative in LAYERS:
        found = sorted(sizes(layer, REPO / relative), key=lambda item: (-item[1], item[0]))
        total = sum(lines for _, lines in found)
        print(f"| `{layer}` | {total:,} | "
              + ", ".join(f"{name} ({lines})" for name, lines in found) + " |")


if __name__ == "__main__":
    main()
