"""The suite's own layout: pytest imports a test module from a folder without ``__init__.py``
by its bare file name, so two such modules with one name stop collection of the whole suite
("import file mismatch", the CI failure of stop 14). Folders that are packages are exempt."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_modules_outside_packages_have_unique_names() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for module in TESTS.rglob("test_*.py"):
        if not (module.parent / "__init__.py").exists():
            seen[module.name].append(str(module.relative_to(TESTS)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert clashes == {}
