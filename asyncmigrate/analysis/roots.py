"""Imports in folders without ``__init__.py``: resolve them by path, from the importer's folder up (issue 12, class 6).

Module names come from packages (``runner.py``): a file in a folder without ``__init__.py`` is named by its file
name alone.  Namespace packages, ``scripts/`` folders and ``src/`` layouts then lose the folder part, and two
``library.py`` files share a name, so ``from services.library import save`` could resolve to the wrong one.

Python finds such an import under a ``sys.path`` root: the running script's own folder, the folder the app is
started from, ``src/``...  For an importer outside any package, :meth:`ImportRoots.locate` looks the dotted name
up as a path under the importer's folder, then under each folder above it (nearest first), which covers the
script's own folder and every project root above it.  A first component that names the standard library or a
package the analysis knows (``sqlalchemy``, ``fastapi``...) is never taken from the tree: a project file
``sqlalchemy.py`` must not shadow SQLAlchemy's facts.
"""

from __future__ import annotations

import sys
from pathlib import PurePosixPath
from typing import Mapping, Optional

from .. import facts
from ..model import FileSummary

_NEVER_LOCAL = frozenset(sys.stdlib_module_names) | facts.SQLALCHEMY_PACKAGES | facts.NON_SESSION_PACKAGES \
    | frozenset({"fastapi", "starlette", "pydantic"})


class ImportRoots:
    def __init__(self, modules: Mapping[str, FileSummary]):
        self._by_path: dict[str, str] = {}
        self._dir: dict[str, PurePosixPath] = {}
        self._outside: set[str] = set()
        for mod, fs in modules.items():
            path = PurePosixPath(fs.path.replace("\\", "/"))
            key = path.parent if fs.is_package else path.with_suffix("")
            self._by_path.setdefault(str(key), mod)
            self._dir[mod] = path.parent
            if "." not in fs.module:
                self._outside.add(mod)

    def shadows(self, mod: str) -> bool:
        """``mod`` is a file outside any package named like the standard library or a known package
        (``db/sqlalchemy.py``): its bare name is not what ``import sqlalchemy`` finds."""
        return mod in self._outside and mod.split("@", 1)[0] in _NEVER_LOCAL

    def applies(self, importer: str) -> bool:
        """The importer is outside any package (its folder has no ``__init__.py``)."""
        return importer in self._outside

    def locate(self, importer: str, dotted: str) -> Optional[tuple[str, list[str]]]:
        """``(module, remaining attribute names)`` for ``dotted`` imported by ``importer``, found by path."""
        found = self._locate(importer, dotted)
        return None if found is None else (found[0], found[1])

    def _locate(self, importer: str, dotted: str) -> Optional[tuple[str, list[str], PurePosixPath]]:
        parts = dotted.split(".")
        if not parts[0] or parts[0] in _NEVER_LOCAL or importer not in self._dir:
            return None
        here = self._dir[importer]
        for root in (here, *here.parents):
            for k in range(len(parts), 0, -1):
                mod = self._by_path.get(str(root.joinpath(*parts[:k])))
                if mod is not None and mod != importer:
                    return mod, parts[k:], root
        return None

    def full_names(self, modules: Mapping[str, FileSummary]) -> dict[str, str]:
        """The dotted name of each file outside any package, as the project's import roots name it.

        A root is a folder some import of the tree resolves from (``from services.library import x`` in
        ``backend/main.py`` makes ``backend/`` one), or a ``src/`` folder.  A file under a root is named by its
        path from the outermost such root (``backend/services/library.py`` -> ``services.library``), not by its
        file name alone, so call chains say which ``library`` they go through.  Files under no root keep their
        names.
        """
        roots: set[PurePosixPath] = set()
        for mod in self._outside:
            fs = modules[mod]
            for _, qualname in fs.imports:
                found = self._locate(mod, qualname)
                if found is not None and found[0] in self._outside:
                    roots.add(found[2])
        for mod in self._outside:
            parts = self._dir[mod].parts
            if "src" in parts:
                roots.add(PurePosixPath(*parts[:parts.index("src") + 1]))
        out: dict[str, str] = {}
        for mod in self._outside:
            fs = modules[mod]
            if fs.is_package:
                continue
            folder = self._dir[mod]
            for root in sorted((r for r in roots if r == folder or r in folder.parents), key=lambda r: len(r.parts)):
                rel = folder.relative_to(root).parts
                if all(part.isidentifier() for part in rel):
                    out[mod] = ".".join((*rel, PurePosixPath(fs.path.replace("\\", "/")).stem))
                    break
        return out
