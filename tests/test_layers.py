"""The package's import rules: the import-linter contracts of .importlinter
(layers in the order the data flows, no cycles; readers free of TensorFlow),
and few imports inside functions, each for a reason listed here.
"""

from __future__ import annotations

import ast
import collections
import configparser
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT_PACKAGE = "sign_datasets"

# Imports inside function bodies are allowed only for these modules (and
# their submodules); a module of ours is listed when its own top imports one
# of them. `import sign_datasets` takes 0.65 s and loads TFDS, numpy, Pillow
# and OpenCV already, so importing those late buys nothing.
LAZY_IMPORT_REASONS = {
    "apache_beam": "optional dependency (the beam extra); 0.75 s to import",
    "sign_datasets.generate.beam": "imports apache_beam at its top, for Beam builds only",
    "array_record": "installed with TFDS on Linux only; read for array_record datasets only",
    "playwright": "optional dependency (the test extra)",
    "certifi": "optional: used when installed, else the system's CA bundle",
    "tensorflow": "start-up time: 3.3 s, for commands that never make a tensor",
    "keras": "start-up time: 3.2 s, for the training commands only",
    "keras_tuner": "start-up time: 3.7 s, for `tune` only",
    "matplotlib": "start-up time (0.4 s), and the Agg backend is chosen before pyplot loads",
}
# The package's own __init__ reports a failed start-up with names from the
# modules that failed to import; it is outside the layers.
LAZY_IMPORT_MODULES = {f"{ROOT_PACKAGE}/__init__.py"}
# Imports inside functions in all, the allowed ones included: lower it as
# they go, never raise it without a reason in LAZY_IMPORT_REASONS.
MAX_FUNCTION_IMPORTS = 53


def package_folders() -> dict[str, Path]:
    """{package name: folder} as installed: builders/ and models/ live at the
    top of the repo but install under sign_datasets (setup.cfg's package_dir)."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    folders = {}
    for line in config["options"]["package_dir"].strip().splitlines():
        name, folder = (part.strip() for part in line.split("="))
        folders[name] = REPO / folder
    return folders


def installed_tree(where: Path) -> Path:
    """A folder holding sign_datasets laid out as installed, made of symlinks,
    so that import-linter (which walks one folder per package) sees it all."""
    folders = package_folders()
    package = where / ROOT_PACKAGE
    package.mkdir(parents=True)
    for entry in folders[ROOT_PACKAGE].iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in folders.items():
        if name.startswith(f"{ROOT_PACKAGE}."):
            (package / name.split(".", 1)[1]).symlink_to(folder)
    return where


def test_the_import_contracts_hold(tmp_path):
    lint_imports = Path(sys.executable).parent / "lint-imports"
    if not lint_imports.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]'): "
                    "the layers are not checked")
    tree = installed_tree(tmp_path / "tree")
    # builders and models are optional layers: make sure they are there to check.
    assert (tree / ROOT_PACKAGE / "builders" / "registered.py").is_file()
    assert (tree / ROOT_PACKAGE / "models" / "train.py").is_file()
    done = subprocess.run([str(lint_imports), "--no-cache", "--no-logo", str(REPO / ".importlinter")],
                          cwd=tree, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(done.stdout + done.stderr, pytrace=False)


# --- imports inside functions ----------------------------------------------------------

def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
            or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def function_imports(source: str) -> list[tuple[int, str]]:
    """(line, imported name) of every import inside a function body, one per
    statement (`from a.b import c` gives a.b.c: c may be a module); `if
    TYPE_CHECKING:` blocks do not count (their else does)."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.orelse:
                    visit_node(statement, in_function)
            else:
                visit_node(child, in_function)

    def visit_node(node: ast.AST, in_function: bool) -> None:
        if in_function and isinstance(node, ast.Import):
            found.append((node.lineno, node.names[0].name))
        elif in_function and isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            found.append((node.lineno, f"{module.rstrip('.')}.{node.names[0].name}"))
        visit(node, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                     ast.Lambda)))

    visit(ast.parse(source), False)
    return found


def package_function_imports() -> dict[str, list[tuple[int, str]]]:
    """{module path as installed: its function-level imports}, for every module of
    the package (builders/ and models/ under sign_datasets/, as installed)."""
    imports = {}
    for name, folder in package_folders().items():
        prefix = Path(*name.split("."))
        for path in sorted(folder.rglob("*.py")):
            found = function_imports(path.read_text(encoding="utf-8"))
            if found:
                imports[str(prefix / path.relative_to(folder))] = found
    return imports


def _allowed(module_path: str, imported: str) -> bool:
    parts = imported.split(".")
    prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return module_path in LAZY_IMPORT_MODULES or bool(prefixes & LAZY_IMPORT_REASONS.keys())


def _per_module(imports: dict[str, list]) -> str:
    counts = collections.Counter({path: len(found) for path, found in imports.items()})
    return "\n".join(f"{n:4d} {path}" for path, n in counts.most_common())


def test_imports_inside_functions_are_few():
    imports = package_function_imports()
    total = sum(len(found) for found in imports.values())
    if total > MAX_FUNCTION_IMPORTS:
        pytest.fail(f"{total} imports inside functions (at most {MAX_FUNCTION_IMPORTS}):\n"
                    + _per_module(imports), pytrace=False)


def test_each_import_inside_a_function_has_a_reason():
    imports = package_function_imports()
    unlisted = [f"{path}:{line} {imported}" for path, found in imports.items()
                for line, imported in found if not _allowed(path, imported)]
    if unlisted:
        pytest.fail("imports inside functions with no reason in LAZY_IMPORT_REASONS (move them "
                    "to the top of the module, or list the module with why):\n"
                    + "\n".join(unlisted), pytrace=False)


# --- module sizes ------------------------------------------------------------------------

MAX_MODULE_LINES = 500


def test_every_module_is_at_most_500_lines():
    """A module that grows past this mixes concerns: split it along them."""
    sizes = {f"{name}/{path.relative_to(folder)}": len(path.read_text().splitlines())
             for name, folder in package_folders().items() for path in folder.rglob("*.py")}
    assert len(sizes) > 60
    assert {module: lines for module, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}
