"""pytest fixtures as session providers (issue 12): ``def test_save(session)`` gets what the fixture hands out.

pytest calls a test function (``test_*`` in a test module) and every fixture with, for each parameter, the
value of the fixture of that name: the one defined in the same module, else in the ``conftest.py`` of the
module's folder, else of each folder above it (nearest first).  A fixture that returns or yields a sync session
(``SessionLocal()``, ``Session(engine)``, a ``scoped_session`` registry called, another fixture's session)
makes the parameter a session with evidence ``fixture``: provenance, not the parameter's name.  The fixture's
name is its function's name, or ``name=`` of the decorator call (``@pytest.fixture(name="session")``).
Fixtures imported by name into a ``conftest.py`` or a test module count there too; star imports
(``from tests.fixtures import *``) and fixtures defined inside test classes are not modelled.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Optional

from .. import facts
from .index import MODULE_SCOPE
from .paths import is_test_file

if TYPE_CHECKING:  # pragma: no cover
    from .sessions import Fn, Project


class Fixtures:
    """Every module-level pytest fixture of the project, by module and by ``conftest.py`` folder."""

    def __init__(self, project: Optional["Project"]):
        self._project = project
        self._by_module: dict[str, dict[str, str]] = {}  # module -> fixture name -> fid
        self._by_conftest_dir: dict[str, dict[str, str]] = {}  # folder of a conftest.py -> fixture name -> fid
        self.fids: set[str] = set()
        if project is None:
            return  # the empty set, while the project's own is being built
        names: dict[str, str] = {}
        for fid, fn in project.functions.items():
            if "." in fn.summary.qualname or fn.summary.qualname == MODULE_SCOPE or not is_test_file(fn.file.path):
                continue
            name = self._fixture_name(fid, fn)
            if name is None:
                continue
            self.fids.add(fid)
            names[fid] = name
            self._register(project.module_of(fid), fn.file.path, name, fid)
        # ``from tests.fixtures.db import session`` in a conftest.py or a test module: pytest finds fixtures in the
        # module's namespace, imported ones included
        if self.fids:
            for mod, fs in project.modules.items():
                if not is_test_file(fs.path):
                    continue
                for _alias, qualname in fs.imports:
                    v = project.resolve_import(qualname, mod)
                    if v is not None and v[0] == "func" and v[1] in self.fids:
                        self._register(mod, fs.path, names[v[1]], v[1], keep=True)

    def _register(self, mod: str, path: str, name: str, fid: str, keep: bool = False) -> None:
        """``name`` is fixture ``fid`` in module ``mod`` (and in its folder, for a conftest.py); ``keep``: a
        fixture the module defines itself wins over one it imports."""
        targets = [self._by_module.setdefault(mod, {})]
        path = path.replace("\\", "/")
        if posixpath.basename(path) == "conftest.py":
            targets.append(self._by_conftest_dir.setdefault(posixpath.dirname(path), {}))
        for table in targets:
            if keep:
                table.setdefault(name, fid)
            else:
                table[name] = fid

    def _fixture_name(self, fid: str, fn: "Fn") -> Optional[str]:
        project = self._project
        module_fid = f"{project.module_of(fid)}:{MODULE_SCOPE}"
        for dec in fn.summary.decorators:
            v = project.value(dec, module_fid)
            if v is None or v[0] != "ext" or v[1] not in facts.PYTEST_FIXTURE_DECORATORS:
                continue
            if dec in fn.summary.decorator_calls:
                return self._name_argument(module_fid, fn, dec) or fn.summary.name
            return fn.summary.name
        return None

    def _name_argument(self, module_fid: str, fn: "Fn", dec) -> Optional[str]:
        """``name="session"`` of the decorator call: the call just above the ``def`` (decorators run in the
        enclosing scope, so their call sites are that scope's)."""
        line = fn.summary.span.line
        best = None
        for call in self._project.functions[module_fid].summary.calls:
            if call.func == dec and call.span.end_line <= line and call.span.line >= line - 20:
                if best is None or call.span.line > best.span.line:
                    best = call
        if best is None:
            return None
        name = dict(best.kw_constants).get("name")
        return name if isinstance(name, str) and name else None

    def injects(self, fid: str) -> bool:
        """pytest calls this function with fixtures: a ``test*`` function of a test module, or a fixture."""
        if fid in self.fids:
            return True
        fn = self._project.functions[fid]
        return (fn.summary.name.startswith("test") and "." not in fn.summary.qualname
                and is_test_file(fn.file.path) and fn.summary.qualname != MODULE_SCOPE)

    def lookup(self, fid: str, name: str) -> Optional[str]:
        """The fixture a parameter named ``name`` of ``fid`` receives (None: no such fixture in the tree)."""
        mod = self._project.module_of(fid)
        own = self._by_module.get(mod, {}).get(name)
        if own is not None and own != fid:
            return own
        folder = posixpath.dirname(self._project.functions[fid].file.path.replace("\\", "/"))
        while True:
            hit = self._by_conftest_dir.get(folder, {}).get(name)
            if hit is not None and hit != fid:
                return hit
            if not folder:
                return None
            parent = posixpath.dirname(folder)
            folder = "" if parent == folder else parent
