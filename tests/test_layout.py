"""Where code lives: the product, its tooling and the shared harness never import from the
tests, and the harness ships in no package."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent
# Everything that runs without pytest: the product, the simulator, the demo shop, the
# benchmarks, the scripts, and the harness they share with the tests.
TREES = ("app", "simulator", "demo", "bench", "scripts", "harness")
# `python -c "from tests.x import y"`, `python -m tests.x` and the like, inside a string
TESTS_IN_TEXT = re.compile(
    r"\bfrom\s+(tests(?:\.\w+)*)\s+import\b|\bimport\s+(tests(?:\.\w+)*)\b"
    r"|(?:^|\s)-m\s+(tests(?:\.\w+)*)\b")


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for each module a file imports, also inside a command line string."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            modules = [next(filter(None, m.groups())) for m in TESTS_IN_TEXT.finditer(node.value)]
        else:
            continue
        yield from ((node.lineno, module) for module in modules)


def imports_of_tests(path: Path) -> list[str]:
    """`file:line module` for each import of `tests` (or a module under it) in a file."""
    return [f"{path}:{line} {module}" for line, module in imported_modules(path)
            if module == "tests" or module.startswith("tests.")]


def test_nothing_outside_the_tests_imports_from_them() -> None:
    files = [path for tree in TREES for path in sorted((ROOT / tree).rglob("*.py"))]
    assert len(files) > 50  # the trees were found
    found = [hit for path in files for hit in imports_of_tests(path.relative_to(ROOT))]
    assert found == []


def test_the_import_walk_sees_every_way_of_importing_the_tests(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "import os\n"
        "import tests\n"
        "from tests.conftest import make_settings\n"
        "def late():\n"
        "    import tests.bulk as bulk\n"
        "ARGS = ['-c', 'from tests.support import scalar']\n"
        "REPORT = 'python -m tests.reliability.report'\n"
        '"""Figures from tests of the callback path."""\n'
        "from testsuite import x\n"
        "from .tests import y\n"
    )
    assert sorted(hit.split(" ", 1)[1] for hit in imports_of_tests(module)) == [
        "tests", "tests.bulk", "tests.conftest", "tests.reliability.report", "tests.support"]


def test_tests_take_helpers_from_support_not_from_the_conftest() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}"
             for path in sorted((ROOT / "tests").rglob("*.py"))
             if path != Path(__file__).resolve()  # its examples above
             for line, module in imported_modules(path) if module.endswith(".conftest")]
    assert found == []


def test_the_harness_is_not_part_of_the_shipped_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = find_packages(str(ROOT), **config["tool"]["setuptools"]["packages"]["find"])
    assert {"app", "demo", "simulator"} <= set(shipped)
    assert not [name for name in shipped
                if name.split(".")[0] in ("harness", "tests", "bench", "scripts")]
    assert "harness" in (ROOT / ".dockerignore").read_text().split()
