"""The imports a rewrite adds must resolve in the project as the rewrite leaves it (issue 9, class 1)."""

from __future__ import annotations

import ast
import sys
from typing import Mapping, Optional

from .. import facts
from ..analysis.findings import Analysis
from .model import Violation

#: packages the rewrites import from that a migrated project depends on (the project's own requirements, or
#: those ``fix`` adds): they need not be installed where ``fix`` runs
_DEPENDENCY_PACKAGES = frozenset({"fastapi", "starlette", "anyio", "pytest", "pytest_asyncio", "httpx", "greenlet",
                                  "aiosqlite", "asyncpg", "aiomysql", "asyncmy", "psycopg"}) | facts.SQLALCHEMY_PACKAGES


def _top_level_names(fs) -> set[str]:
    names = {n for n, _ in fs.module_scope.assigns} | {a for a, _ in fs.imports}
    names |= {f.qualname for f in fs.functions if "." not in f.qualname}
    names |= {c.qualname for c in fs.classes if "." not in c.qualname}
    return names


def _imports(data: bytes) -> Optional[set[tuple[int, str, str]]]:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return None
    out: set[tuple[int, str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.update((node.level, node.module or "", a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            out.update((0, a.name, "") for a in node.names)
    return out


def import_violations(analysis: Analysis, changes: Mapping[str, tuple[bytes, bytes]]) -> list[Violation]:
    """Imports in the rewritten files (``changes``: path -> (old, new)) that the original did not have and that
    do not resolve in the project as the rewrite leaves it."""
    p = analysis.project
    by_path = {fs.path: fs for fs in p.files}
    suffixes = {fs.module.rsplit(".", 1)[-1] for fs in p.files}
    tops = {fs.module.split(".", 1)[0] for fs in p.files}
    out: list[Violation] = []
    for path, (old, new) in sorted(changes.items()):
        fs = by_path.get(path)
        before = _imports(old) or set()
        added = (_imports(new) or set()) - before
        #: modules the original already imports, spelled the same way: adding a name to such an import is no
        #: worse than the original (a namespace folder or an app outside the tree resolves as it did before)
        known = {(level, module) for level, module, _ in before}
        if fs is None or not added:
            continue
        causes = tuple(sorted(f"{fs.module}:{f.qualname}" for f in fs.functions))
        package = fs.module if fs.is_package else fs.module.rpartition(".")[0]
        for level, module, name in sorted(added):
            problem = None
            if level:
                parts = package.split(".") if package else []
                if level - 1 > len(parts) or (level - 1 == len(parts) and not module):
                    problem = "goes beyond the top-level package"
                else:
                    base = ".".join(parts[: len(parts) - (level - 1)])
                    target = ".".join(x for x in (base, module) if x)
                    problem = _missing(p, target, name, relative=True)
                spelled = "." * level + module
            else:
                spelled = module
                target = p.find_module(module)  # also under another package root (``backend.app.database``)
                if target is not None:
                    problem = _missing(p, target, name, relative=False)
                elif module.split(".", 1)[0] in tops:
                    problem = _missing(p, module, name, relative=False)
                elif module.rsplit(".", 1)[-1] in suffixes or module.split(".", 1)[0] in suffixes:
                    problem = "is a project module imported from the wrong package root (ModuleNotFoundError)"
                elif not _importable(module.split(".", 1)[0]):
                    problem = "names a module that is neither in the project nor installed"
            if problem and (level, module) in known and not problem.startswith("names `"):
                problem = None
            if problem:
                what = f"from {spelled} import {name}" if name else f"import {spelled}"
                out.append(Violation("import", path, _import_line(new, level, module, name), "", causes,
                                     f"the rewrite adds `{what}`, which {problem}", ("import", path, what)))
    return out


def _missing(p, target: str, name: str, relative: bool) -> Optional[str]:
    if target not in p.modules:
        # a name imported from a package may be a submodule; a missing module is a ModuleNotFoundError
        return f"resolves to `{target}`, which is not a module of the project"
    if not name or name == "*" or f"{target}.{name}" in p.modules:
        return None
    if name not in _top_level_names(p.modules[target]):
        return f"names `{name}`, which `{target}` does not define (ImportError)"
    return None


def _importable(top: str) -> bool:
    if top in sys.stdlib_module_names or top in _DEPENDENCY_PACKAGES:
        return True
    import importlib.util

    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _import_line(data: bytes, level: int, module: str, name: str) -> int:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return 1
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == level and (node.module or "") == module \
                and any(a.name == name for a in node.names):
            return node.lineno
        if isinstance(node, ast.Import) and not level and any(a.name == module for a in node.names):
            return node.lineno
    return 1
