"""Project index and session tracking: what every name *is*, across modules.

DESIGN ("Knowing what is a session"): a session is known by where it comes
from, not by its name.  :class:`Project` resolves names through each file's
imports and evaluates the provenance the per-file pass recorded into a small
set of abstract values:

* ``("session", evidence)`` / ``("asession", evidence)``: a sync / async session.
  Evidence is one of ``annotation`` (``db: Session``), ``dependency``
  (``Depends(get_db)``), ``factory`` (``SessionLocal()``, ``with Session(e) as s``),
  ``provider`` (``next(get_db())``, a function returning a session),
  ``self-attribute`` (``self.db`` set from a session), ``attribute`` (``request.state.db``
  where a middleware stores a session on that attribute path), ``call-site`` (a
  parameter that callers pass a session to), ``fixture`` (a test's parameter filled by a pytest fixture
  that hands out a session) and ``name-only`` (the fallback).
* ``("factory",)`` / ``("afactory",)``: a sync / async session factory.
* ``("func", fid)``, ``("class", cid)``, ``("instance", cid)``, ``("method", cid, name)``,
  ``("module", name)``, ``("ext", qualified_name)``, ``("engine",)``.

Parameters that receive a session at some call site are found by a fixed
point over all call sites (``Project.solve``).
"""

from __future__ import annotations

import builtins
import sys
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

from .. import facts
from ..model import CallSite, ClassSummary, Expr, FileSummary, FunctionSummary, Param
from .fixtures import Fixtures
from .index import MODULE_SCOPE, attribute_path
from .roots import ImportRoots
from .bridges import Bridges, find_bridges
from .wrappers import Wrappers, find_wrappers

Value = Optional[tuple]
SESSION, ASESSION = "session", "asession"
_BUILTINS = frozenset(dir(builtins))
_MAX_DEPTH = 40
#: top-level modules of the standard library that make values (sockets, files, sqlite3 connections...)
_STDLIB_MAKERS = frozenset(sys.stdlib_module_names) - facts.PROVENANCE_NEUTRAL_MODULES


@dataclass(frozen=True, slots=True)
class Fn:
    """A function in the project: its file and summary."""

    file: FileSummary
    summary: FunctionSummary

    @property
    def id(self) -> str:
        return f"{self.file.module}:{self.summary.qualname}"

    @property
    def display(self) -> str:
        return f"{self.file.module}.{self.summary.qualname}" if self.file.module else self.summary.qualname


@dataclass
class Settings:
    """The parts of the configuration that change what a session is."""

    session_dependencies: frozenset[str] = frozenset()  # extra names/qualnames of session dependencies
    session_factories: frozenset[str] = frozenset()  # extra names/qualnames of session factories
    session_names: frozenset[str] = facts.SESSION_LIKE_NAMES
    name_heuristics: bool = True


def is_session(v: Value) -> bool:
    return v is not None and v[0] == SESSION


def is_async_session(v: Value) -> bool:
    return v is not None and v[0] == ASESSION


class Project:
    """All summaries, indexed, with memoised name resolution and value evaluation."""

    def __init__(self, summaries: Iterable[FileSummary], settings: Optional[Settings] = None):
        self.settings = settings or Settings()
        self.files: list[FileSummary] = sorted(summaries, key=lambda s: s.path)
        self.modules: dict[str, FileSummary] = {}
        self._by_suffix: dict[str, list[str]] = {}
        self.functions: dict[str, Fn] = {}
        self.classes: dict[str, tuple[FileSummary, ClassSummary]] = {}
        self._imports: dict[str, dict[str, str]] = {}
        self._module_defs: dict[str, dict[str, str]] = {}  # module -> top-level name -> fid / cid
        self._module_vars: dict[str, dict[str, list[Expr]]] = {}
        self._fn_params: dict[str, dict[str, Param]] = {}
        self._fn_locals: dict[str, dict[str, list[Expr]]] = {}
        self._fn_annotations: dict[str, dict[str, Expr]] = {}
        self._class_attr_sources: dict[str, list[tuple[str, Expr]]] = {}
        #: ``request.state.db = SessionLocal()`` anywhere: attribute path (``("state", "db")``) -> sources
        self._attr_sources: dict[tuple[str, ...], list[Expr]] = {}
        self.param_sessions: dict[tuple[str, str], str] = {}  # (fid, param) -> evidence
        self._value_memo: dict[tuple, Value] = {}
        self._stack: set[tuple] = set()
        self._qualified_memo: dict[str, Value] = {}
        self._resolving: set[str] = set()
        self._targets: dict[int, tuple[Value]] = {}  # id(CallSite) -> (callee value,); summaries outlive it
        self._foreign_memo: dict[tuple, bool] = {}
        self._foreign_stack: set[tuple] = set()
        self._wrappers: Optional[Wrappers] = None
        self._fixtures: Optional[Fixtures] = None
        self._full_names: Optional[dict[str, str]] = None
        self._index()
        self.roots = ImportRoots(self.modules)
        self._import_memo: dict[tuple[str, str], Value] = {}
        self._resolving_imports: set[tuple[str, str]] = set()
        #: the name-only fallback needs a SQLAlchemy project (see :meth:`receiver`)
        self.uses_sqlalchemy = self._uses_sqlalchemy()
        self._async_only: Optional[bool] = None

    # ------------------------------------------------------------------ indexing
    def _index(self) -> None:
        for fs in self.files:
            mod = fs.module
            if mod in self.modules:  # two files with one module name (scripts dirs): keep both by path
                mod = f"{fs.module}@{fs.path}"
            self.modules[mod] = fs
            parts = fs.module.split(".")
            for i in range(len(parts)):
                self._by_suffix.setdefault(".".join(parts[i:]), []).append(mod)
            self._imports[mod] = dict(fs.imports)
            defs: dict[str, str] = {}
            for fn in (fs.module_scope, *fs.functions):
                fid = f"{mod}:{fn.qualname}"
                self.functions[fid] = Fn(fs, fn)
                self._fn_params[fid] = {p.name: p for p in fn.params}
                loc: dict[str, list[Expr]] = {}
                for name, value in fn.assigns:
                    loc.setdefault(name, []).append(value)
                self._fn_locals[fid] = loc
                self._fn_annotations[fid] = dict(fn.annotations)
                if "." not in fn.qualname and fn.qualname != MODULE_SCOPE:
                    defs[fn.qualname] = fid
            for cls in fs.classes:
                cid = f"{mod}:{cls.qualname}"
                self.classes[cid] = (fs, cls)
                if "." not in cls.qualname:
                    defs[cls.qualname] = cid
            self._module_defs[mod] = defs
            module_vars = self._module_vars[mod] = self._fn_locals[f"{mod}:{MODULE_SCOPE}"]
            # ``global SessionLocal`` then ``SessionLocal = sessionmaker(...)`` in an init function: a source of the
            # module variable, evaluated where it is assigned
            for fn in fs.functions:
                if fn.global_names:
                    fid = f"{mod}:{fn.qualname}"
                    for name, value in fn.assigns:
                        if name in fn.global_names and value is not None:
                            module_vars.setdefault(name, []).append(("in", fid, value))
        # self.x = ... in any method -> class attribute sources (evaluated in that method)
        for fid, fn in self.functions.items():
            for target, value in fn.summary.attr_assigns:
                path = attribute_path(target)
                if path is not None:
                    self._attr_sources.setdefault(path, []).append(("in", fid, value))
            cq = fn.summary.class_qualname
            if cq and fn.summary.self_assigns:
                cid = f"{fid.split(':', 1)[0]}:{cq}"
                for attr, value in fn.summary.self_assigns:
                    self._class_attr_sources.setdefault(cid, []).append((attr, ("in", fid, value)))

    def module_of(self, fid: str) -> str:
        return fid.split(":", 1)[0]

    def display(self, fid: str) -> str:
        """``module.qualname`` of a function for reports (call chains), with the module's full dotted name from
        the project's import roots when its folder has no ``__init__.py`` (:meth:`.ImportRoots.full_names`)."""
        fn = self.functions[fid]
        if self._full_names is None:
            self._full_names = self.roots.full_names(self.modules)
        module = self._full_names.get(self.module_of(fid), fn.file.module)
        return f"{module}.{fn.summary.qualname}" if module else fn.summary.qualname

    # ------------------------------------------------------------------ resolution
    def find_module(self, dotted: str) -> Optional[str]:
        """The project module for an import path, allowing a different package root."""
        if dotted in self.modules and not self.roots.shadows(dotted):
            return dotted
        # ``app.database`` may be ``backend.app.database`` here; a bare ``sqlalchemy`` must never match
        # a project's own ``polar.kit.extensions.sqlalchemy``: suffixes need two components
        cands = self._by_suffix.get(dotted) if "." in dotted else None
        if cands and len(cands) == 1:
            return cands[0]
        # the import names more leading packages than our module names have (namespace roots)
        parts = dotted.split(".")
        for i in range(1, len(parts)):
            tail = ".".join(parts[i:])
            if tail in self.modules and not self.roots.shadows(tail):
                return tail
        return None

    def resolve_qualified(self, qualname: str) -> Value:
        """A dotted qualified name (from an import) -> a project symbol or an external name.

        Memoised; an import cycle (``a`` imports ``x`` from ``b`` and ``b`` from ``a``) resolves to None.
        """
        if qualname in self._qualified_memo:
            return self._qualified_memo[qualname]
        if qualname in self._resolving or len(self._resolving) > _MAX_DEPTH:
            return None
        self._resolving.add(qualname)
        try:
            result = self._resolve_qualified(qualname)
        finally:
            self._resolving.discard(qualname)
        self._qualified_memo[qualname] = result
        return result

    def resolve_import(self, qualname: str, importer: str) -> Value:
        """An imported name as module ``importer`` sees it: by path for a file outside any package
        (:mod:`.roots`), else by module name (:meth:`resolve_qualified`)."""
        if not self.roots.applies(importer):
            return self.resolve_qualified(qualname)
        key = (importer, qualname)
        if key in self._import_memo:
            return self._import_memo[key]
        located = self.roots.locate(importer, qualname)
        if located is None:
            result = self.resolve_qualified(qualname)
        elif key in self._resolving_imports or len(self._resolving_imports) > _MAX_DEPTH:
            return None  # an import cycle
        else:
            self._resolving_imports.add(key)
            try:
                target, rest = located
                result = ("module", target) if not rest else self.module_symbol(target, rest[0])
                for attr in rest[1:]:
                    result = self.attribute(result, attr, None)
            finally:
                self._resolving_imports.discard(key)
        self._import_memo[key] = result
        return result

    def _resolve_qualified(self, qualname: str) -> Value:
        parts = qualname.split(".")
        for k in range(len(parts), 0, -1):
            mod = self.find_module(".".join(parts[:k]))
            if mod is None:
                continue
            rest = parts[k:]
            if not rest:
                return ("module", mod)
            value = self.module_symbol(mod, rest[0])
            for attr in rest[1:]:
                value = self.attribute(value, attr, None)
            return value
        return ("ext", qualname)

    def module_symbol(self, mod: str, name: str, depth: int = 0) -> Value:
        sym = self._module_defs.get(mod, {}).get(name)
        if sym is not None:
            return ("func", sym) if sym in self.functions else ("class", sym)
        if name in self._module_vars.get(mod, {}):
            return self.value(("n", name), f"{mod}:{MODULE_SCOPE}")
        imported = self._imports.get(mod, {}).get(name)
        if imported is not None and depth < 8:
            return self.resolve_import(imported, mod)
        sub = self.find_module(f"{self.modules[mod].module}.{name}") if mod in self.modules else None
        if sub is not None:
            return ("module", sub)
        return None

    def lookup(self, name: str, fid: str) -> Value:
        """Resolve a bare name as Python would in function ``fid`` (locals, enclosing, module, imports)."""
        fn = self.functions[fid]
        mod = self.module_of(fid)
        qual = fn.summary.qualname
        # local nested def / class
        if qual != MODULE_SCOPE:
            nested = f"{mod}:{qual}.<locals>.{name}"
            if nested in self.functions:
                return ("func", nested)
            if nested in self.classes:
                return ("class", nested)
        params = self._fn_params.get(fid, {})
        if name in params:
            return self.param_value(fid, params[name])
        if qual != MODULE_SCOPE and (name in self._fn_locals.get(fid, {}) or name in self._fn_annotations.get(fid, {})):
            return self._local_value(fid, name)
        # enclosing functions (closures)
        if ".<locals>." in qual:
            outer = qual.rsplit(".<locals>.", 1)[0]
            ofid = f"{mod}:{outer}"
            if ofid in self.functions:
                return self.lookup(name, ofid)
        # module level
        defs = self._module_defs.get(mod, {})
        if name in defs:
            sym = defs[name]
            return ("func", sym) if sym in self.functions else ("class", sym)
        if name in self._module_vars.get(mod, {}):
            return self._local_value(f"{mod}:{MODULE_SCOPE}", name)
        imported = self._imports.get(mod, {}).get(name)
        if imported is not None:
            return self.resolve_import(imported, mod)
        if name in _BUILTINS:
            return ("ext", f"builtins.{name}")
        return None

    # ------------------------------------------------------------------ values
    def value(self, expr: Expr, fid: str) -> Value:
        if expr is None:
            return None
        key = (expr, fid)
        if key in self._value_memo:
            return self._value_memo[key]
        if key in self._stack or len(self._stack) > _MAX_DEPTH:
            return None
        self._stack.add(key)
        try:
            result = self._value(expr, fid)
        finally:
            self._stack.discard(key)
        self._value_memo[key] = result
        return result

    def _value(self, expr: tuple, fid: str) -> Value:
        kind = expr[0]
        if kind == "n":
            return self.lookup(expr[1], fid)
        if kind == "a":
            v = self.attribute(self.value(expr[1], fid), expr[2], fid)
            if v is None and self._attr_sources:
                v = self._stored_attribute(expr)
            return v
        if kind == "c":
            if expr[1] == ("n", "super"):
                return self._super(fid)
            return self.call_result(self.value(expr[1], fid), expr[1], fid, expr[2] if len(expr) > 2 else None)
        if kind == "next":
            inner = expr[1]
            if inner and inner[0] == "c":
                helper = self._function_of(self.value(inner[1], fid))
                if helper is not None and self.provides(helper) is not None:
                    return self._as_evidence(self.provides(helper), "provider")
            return None
        if kind == "yfrom":  # ``yield from helper()``: what the helper hands out
            inner = expr[1]
            if inner and inner[0] == "c":
                helper = self._function_of(self.value(inner[1], fid))
                if helper is not None:
                    return self.provides(helper)
            return None
        if kind == "with":
            ctx = expr[1]
            if ctx and ctx[0] == "c":
                # ``with get_sync_db_session() as s`` / ``with database.session() as s``: follow the helper's yield
                helper = self._function_of(self.value(ctx[1], fid))
                if helper is not None:
                    provided = self.provides(helper)
                    if provided is not None:
                        return self._as_evidence(provided, "provider")
            entered = self.value(ctx, fid)
            return entered if entered and entered[0] in (SESSION, ASESSION) else None
        if kind == "aw":
            inner = self.value(expr[1], fid)
            return inner if inner and inner[0] == ASESSION else None
        if kind == "in":  # ("in", fid, expr): evaluate in another function's scope
            return self.value(expr[2], expr[1])
        if kind == "annot":
            return self.type_value(expr[1], fid)
        if kind == "annotated":
            return self.type_value(expr, fid)
        if kind == "dep":
            return self.dependency_value(expr, fid)
        if kind == "sub":
            # ``BaseRepository[User]`` / ``CRUDBase[Item, ItemCreate]``: a project class subscripted is its generic
            # alias, which subclasses and instantiates as the class itself; other subscripts (``rows[0]``,
            # ``settings["db"]``) are items, not followed
            base = self.value(expr[1], fid)
            return base if base is not None and base[0] == "class" else None
        return None

    def _stored_attribute(self, expr: Expr) -> Value:
        """``request.state.db`` where some function stores a session on that same attribute path
        (``request.state.db = SessionLocal()`` in a middleware): the session, by provenance (evidence
        ``attribute``).  Only sessions are taken from such a bag; when any store is an async session the read
        is one too (an async receiver is never reported)."""
        path = attribute_path(expr)
        sources = self._attr_sources.get(path) if path is not None else None
        if not sources:
            return None
        found: Value = None
        for src in sources:
            v = self.value(src, "")
            if v is None:
                continue
            if v[0] == ASESSION:
                return (ASESSION, "attribute")
            if v[0] == SESSION:
                found = (SESSION, "attribute")
        return found

    @staticmethod
    def _function_of(target: Value) -> Optional[str]:
        """The project function a callee value runs: a function, or a bound method."""
        if target is None:
            return None
        if target[0] == "func":
            return target[1]
        if target[0] == "method":
            return target[2]
        return None

    @staticmethod
    def _as_evidence(v: Value, evidence: str) -> Value:
        if v is not None and v[0] in (SESSION, ASESSION):
            return (v[0], evidence)
        return v

    def _local_value(self, fid: str, name: str) -> Value:
        ann = self._fn_annotations.get(fid, {}).get(name)
        if ann is not None:
            t = self.type_value(ann, fid)
            if t is not None:
                return t
        best: Value = None
        for src in self._fn_locals.get(fid, {}).get(name, ()):
            v = self.value(src, fid)
            if v is None:
                continue
            if v[0] in (SESSION, ASESSION):
                return v
            best = best or v
        return best

    def attribute(self, base: Value, attr: str, fid: Optional[str]) -> Value:
        if base is None:
            return None
        kind = base[0]
        if kind == "module":
            return self.module_symbol(base[1], attr)
        if kind == "ext":
            return ("ext", f"{base[1]}.{attr}")
        if kind == "instance":
            return self.instance_attribute(base[1], attr)
        if kind == "class":
            method = self.find_method(base[1], attr)
            if method is not None:
                return ("func", method)
            return self.class_attribute(base[1], attr)
        if kind == "super":  # ``super().__init__(session)``: the next definition in the MRO, bound to self
            for c in list(self.mro(base[1]))[1:]:
                method = f"{c}.{attr}"
                if method in self.functions:
                    return ("method", base[1], method)
            return None
        return None

    def _super(self, fid: str) -> Value:
        """``super()`` in a method (also a nested function's closure of one): ``("super", class)``."""
        if self.lookup("super", fid) != ("ext", "builtins.super"):
            return None  # a project ``super`` shadows the builtin
        qual = self.functions[fid].summary.qualname.split(".<locals>.", 1)[0]
        method = self.functions.get(f"{self.module_of(fid)}:{qual}")
        cq = method.summary.class_qualname if method is not None else None
        return ("super", f"{self.module_of(fid)}:{cq}") if cq else None

    def mro(self, cid: str) -> Iterator[str]:
        seen: set[str] = set()
        todo = [cid]
        while todo:
            c = todo.pop(0)
            if c in seen or c not in self.classes:
                continue
            seen.add(c)
            yield c
            fs, cls = self.classes[c]
            mod = c.split(":", 1)[0]
            for b in cls.bases:
                bv = self.value(b, f"{mod}:{MODULE_SCOPE}") if b is not None else None
                if bv and bv[0] == "class":
                    todo.append(bv[1])

    def find_method(self, cid: str, name: str) -> Optional[str]:
        for c in self.mro(cid):
            fid = f"{c}.{name}"
            if fid in self.functions:
                return fid
        return None

    def class_attribute(self, cid: str, attr: str) -> Value:
        for c in self.mro(cid):
            fs, cls = self.classes[c]
            mod = c.split(":", 1)[0]
            for name, ann in cls.annotations:
                if name == attr and ann is not None:
                    t = self.type_value(ann, f"{mod}:{MODULE_SCOPE}")
                    if t is not None:
                        return t
        return None

    def instance_attribute(self, cid: str, attr: str) -> Value:
        method = self.find_method(cid, attr)
        if method is not None:
            return ("method", cid, method)
        best: Value = None
        for c in self.mro(cid):
            for name, src in self._class_attr_sources.get(c, ()):
                if name != attr:
                    continue
                v = self.value(src, "")
                if v is None:
                    continue
                if v[0] in (SESSION, ASESSION):
                    return (v[0], "self-attribute") if v[0] == SESSION else v
                best = best or v
        return best or self.class_attribute(cid, attr)

    def makes_async_sessions(self, made: Expr, fid: str) -> bool:
        """``class_=`` of a sessionmaker names an async session class (``AsyncSession`` or a project subclass)."""
        if made is None:
            return False
        v = self.value(made, fid)
        if v is None:
            return False
        if v[0] == "ext":
            return v[1] in facts.ASYNC_SESSION_TYPES
        if v[0] == "class":
            return self._session_subclass(v[1], "factory") == (ASESSION, "factory")
        return False

    def made_class(self, call: CallSite) -> Expr:
        """The ``class_`` a sessionmaker call site names (keyword, or the second positional argument)."""
        made = dict(call.kwargs).get("class_")
        if made is None and len(call.args) >= 2:
            made = call.args[1]
        return made

    def call_result(self, target: Value, func_expr: Expr, fid: str, made: Expr = None) -> Value:
        if target is None:
            return None
        kind = target[0]
        if kind == "factory":
            return (SESSION, "factory")
        if kind == "afactory":
            return (ASESSION, "factory")
        if kind == "class":
            return self._session_subclass(target[1], "factory") or ("instance", target[1])
        if kind in ("func", "method"):
            callee = target[1] if kind == "func" else target[2]
            fn = self.functions.get(callee)
            if fn is None or fn.summary.is_generator:
                return None
            return self.returns_value(callee)
        if kind == "ext":
            qn = target[1]
            if qn in facts.SYNC_SESSIONMAKERS and self.makes_async_sessions(made, fid):
                return ("afactory",)  # ``sessionmaker(bind=async_engine, class_=AsyncSession)``
            if qn in facts.SYNC_SESSIONMAKERS or self._configured(qn, self.settings.session_factories, factory=True):
                return ("factory",)
            if qn in facts.SYNC_SESSION_TYPES:
                return (SESSION, "factory")
            if qn in facts.ASYNC_SESSIONMAKERS:
                return ("afactory",)
            if qn in facts.ASYNC_SESSION_TYPES:
                return (ASESSION, "factory")
            if qn in facts.OBJECT_SESSION_FUNCTIONS:
                return (SESSION, "provider")  # ``object_session(obj)``: the session the object belongs to
            if qn in facts.SYNC_ENGINE_FACTORIES:
                return ("engine",)
            if qn in facts.ASYNC_ENGINE_FACTORIES:
                return ("aengine",)
        if kind == "instance":
            call = self.find_method(target[1], "__call__")
            if call is not None:
                return self.returns_value(call)
        return None

    def _configured(self, qn: str, names: frozenset[str], factory: bool = False) -> bool:
        if not names:
            return False
        return qn in names or qn.rsplit(".", 1)[-1] in names

    def returns_value(self, fid: str) -> Value:
        fn = self.functions.get(fid)
        if fn is None:
            return None
        best: Value = None
        for r in fn.summary.returns:
            v = self.value(r, fid)
            if v is None:
                continue
            if v[0] in (SESSION, ASESSION):
                return (v[0], "provider")
            best = best or v
        if best is None and not fn.summary.is_generator:
            annotated = self._annotated_yield(fid)
            if annotated is not None:
                return (annotated[0], "provider")
        return best

    def provides(self, fid: str) -> Value:
        """What a dependency / generator / context-manager function hands out (sessions only)."""
        fn = self.functions.get(fid)
        if fn is None:
            return None
        if self._configured(fn.display, self.settings.session_dependencies):
            return (SESSION, "dependency")
        for r in fn.summary.returns:
            v = self.value(r, fid)
            if v is not None and v[0] in (SESSION, ASESSION):
                return v
        return self._annotated_yield(fid)

    _YIELDING = frozenset({"Generator", "Iterator", "Iterable", "AsyncGenerator", "AsyncIterator", "AsyncIterable",
                           "ContextManager", "AbstractContextManager", "AsyncContextManager"})

    def _annotated_yield(self, fid: str) -> Value:
        """``-> Generator[Session, None, None]`` / ``-> Iterator[Session]`` / ``-> Session``: what is handed out."""
        ann = self.functions[fid].summary.return_annotation
        if ann is None:
            return None
        if ann[0] == "sub" and ann[1] and ann[1][-1] in self._YIELDING and ann[2]:
            ann = ann[2][0]
        v = self.type_value(ann, fid)
        return (v[0], "annotation") if v is not None and v[0] in (SESSION, ASESSION) else None

    def dependency_value(self, dep: Expr, fid: str) -> Value:
        """``("dep", Depends, target)`` -> the value the dependency injects."""
        if not dep or dep[0] != "dep":
            return None
        dep_fn = self.value(dep[1], fid)
        if not (dep_fn and dep_fn[0] == "ext" and dep_fn[1] in facts.DEPENDS):
            return None
        target_expr = dep[2]
        target = self.value(target_expr, fid)
        if target is None:
            name = target_expr[-1] if target_expr and target_expr[0] in ("n", "a") else None
            if name and name in self.settings.session_dependencies:
                return (SESSION, "dependency")
            return None
        if target[0] == "func":
            provided = self.provides(target[1])
            if provided is not None:
                return (provided[0], "dependency")
            fn = self.functions[target[1]]
            if self._configured(fn.summary.name, self.settings.session_dependencies):
                return (SESSION, "dependency")
        if target[0] == "ext" and self._configured(target[1], self.settings.session_dependencies):
            return (SESSION, "dependency")
        if target[0] in ("factory",):
            return (SESSION, "dependency")
        if target[0] == "class":
            return ("instance", target[1])
        return None

    def type_value(self, ann: Expr, fid: str) -> Value:
        """The value of something annotated with ``ann``."""
        if ann is None:
            return None
        if ann[0] == "annotated":
            if ann[2] is not None:
                dv = self.dependency_value(ann[2], fid)
                if dv is not None:
                    return dv
            return self.type_value(ann[1], fid)
        t = self.value(ann, fid)
        if t is None:
            return None
        if t[0] == "ext":
            if t[1] in facts.SYNC_SESSION_TYPES:
                return (SESSION, "annotation")
            if t[1] in facts.ASYNC_SESSION_TYPES:
                return (ASESSION, "annotation")
            return None
        if t[0] == "class":
            return self._session_subclass(t[1], "annotation") or ("instance", t[1])
        if t[0] in (SESSION, ASESSION):  # an alias such as ``SessionDep``
            return t
        return None

    def _session_subclass(self, cid: str, evidence: str) -> Value:
        """A project class that subclasses a SQLAlchemy (async) session is one."""
        for c in self.mro(cid):
            _fs, cls = self.classes[c]
            module_fid = f"{c.split(':', 1)[0]}:{MODULE_SCOPE}"
            for b in cls.bases:
                bv = self.value(b, module_fid) if b is not None else None
                if bv and bv[0] == "ext":
                    if bv[1] in facts.SYNC_SESSION_TYPES:
                        return (SESSION, evidence)
                    if bv[1] in facts.ASYNC_SESSION_TYPES:
                        return (ASESSION, evidence)
        return None

    def _factory_annotation(self, ann: Expr, fid: str) -> bool:
        """``db_session: SessionLocal``: annotated with the factory where ``Session`` was meant.  Not a session
        type (ASM102 is about those, and ``fix`` rewrites only those), so what callers pass decides."""
        t = self.value(ann, fid) if ann is not None and ann[0] in ("n", "a") else None
        return t is not None and t[0] in ("factory", "afactory")

    def param_value(self, fid: str, p: Param) -> Value:
        fn = self.functions[fid].summary
        if p.index == 0 and fn.class_qualname and fn.kind in ("method", "property"):
            return ("instance", f"{self.module_of(fid)}:{fn.class_qualname}")
        if p.index == 0 and fn.class_qualname and fn.kind == "classmethod":
            return ("class", f"{self.module_of(fid)}:{fn.class_qualname}")
        if p.depends is not None:
            dv = self.dependency_value(p.depends, fid)
            if dv is not None:
                return dv
        if p.annotation is not None:
            tv = self.type_value(p.annotation, fid)
            if tv is not None:
                return tv
        evidence = self.param_sessions.get((fid, p.name))
        if evidence is not None:
            return (SESSION, evidence) if evidence != "async" else (ASESSION, "call-site")
        return self._fixture_value(fid, p)

    @property
    def fixtures(self) -> Fixtures:
        """The project's pytest fixtures (:mod:`.fixtures`), found once."""
        if self._fixtures is None:
            self._fixtures = Fixtures(None)  # what the fixtures' own resolution sees while they are found
            self._fixtures = Fixtures(self)
            self._value_memo.clear()  # values computed meanwhile saw no fixtures
        return self._fixtures

    def _fixture_of(self, fid: str, p: Param) -> Optional[str]:
        """The fixture pytest fills parameter ``p`` of ``fid`` from, if any."""
        fixtures = self.fixtures
        if p.has_default or p.depends is not None or not fixtures.fids or not fixtures.injects(fid):
            return None
        return fixtures.lookup(fid, p.name)

    def _fixture_value(self, fid: str, p: Param) -> Value:
        """A parameter pytest fills from a fixture that hands out a session (or a session factory)."""
        fixture = self._fixture_of(fid, p)
        if fixture is None:
            return None
        provided = self.provides(fixture)
        if provided is not None:
            return (provided[0], "fixture")
        for r in self.functions[fixture].summary.returns:
            v = self.value(r, fixture)
            if v is not None and v[0] in ("factory", "afactory"):
                return v
        return None

    # ------------------------------------------------------------------ fixed point
    def call_target(self, call: CallSite, fid: str) -> Value:
        """The value of a call's callee, cached per call site.

        What a callee *is* (a project function, a class, an external name, a factory) never depends on
        which parameters receive sessions, so the cache survives the rounds of :meth:`solve`.
        """
        key = id(call)
        hit = self._targets.get(key)
        if hit is None:
            hit = (self.value(call.func, fid),)
            self._targets[key] = hit
        return hit[0]

    def callee(self, call: CallSite, fid: str) -> Optional[str]:
        """The project function a call site runs (constructors run ``__init__``)."""
        target = self.call_target(call, fid)
        if target is None:
            return None
        if target[0] == "func":
            return target[1]
        if target[0] == "method":
            return target[2]
        if target[0] == "class":
            return self.find_method(target[1], "__init__")
        if target[0] == "instance":
            return self.find_method(target[1], "__call__")
        return None

    def _bound_offset(self, call: CallSite, fid: str, callee: str) -> int:
        """1 when the callee's first parameter (self/cls) is bound by the call."""
        fn = self.functions[callee].summary
        if fn.kind in ("staticmethod", "function"):
            return 0
        target = self.value(call.func, fid)
        if target and target[0] == "func" and call.func and call.func[0] == "a":
            base = self.value(call.func[1], fid)
            if base and base[0] == "class" and fn.kind == "method":
                return 0  # Class.method(obj, ...): explicit self
        return 1

    @property
    def wrappers(self) -> Wrappers:
        """Decorators whose wrapper calls the decorated function (:mod:`.wrappers`), found once."""
        if self._wrappers is None:
            self._wrappers = find_wrappers(self)
        return self._wrappers

    @property
    def bridges(self) -> Bridges:
        """Thread-pool runners, their calls and the decorators that bridge (:mod:`.bridges`), found once."""
        found = self.__dict__.get("_bridges")
        if found is None:
            found = self.__dict__["_bridges"] = find_bridges(self)
        return found

    def _argument_flows(self) -> Iterator[tuple[str, CallSite, str, int]]:
        """``(caller, call, callee, offset)`` for every call whose arguments reach a project function's parameters.

        A call of a decorated function reaches it through its wrapper, which chooses the arguments
        (``func(session, *args)``): there the wrapper's own call sites are the ones that bind the parameters.
        """
        wrappers = self.wrappers
        for fid, fn in self.functions.items():
            for call in fn.summary.calls:
                if not call.args and not call.kwargs:
                    continue
                callee = self.callee(call, fid)
                if callee is None or wrappers.rebinds(callee):
                    continue
                yield fid, call, callee, self._bound_offset(call, fid, callee)
        for wrapper in wrappers.calls:
            for callee, call in wrappers.flows(wrapper):
                yield wrapper, call, callee, 0  # the wrapper calls the plain function: ``self`` comes explicitly
        for fid, call, callee in self.bridges.flows:  # ``run_in_threadpool(fn, db)`` calls ``fn(db)`` in a thread
            yield fid, call, callee, self._bound_offset(call, fid, callee)

    def solve(self, max_rounds: int = 6) -> None:
        """Propagate sessions into parameters from call sites until nothing changes."""
        for _ in range(max_rounds):
            changed = False
            for fid, call, callee, offset in self._argument_flows():
                params = self.functions[callee].summary.params
                positional = [p for p in params if p.index >= 0]
                pairs: list[tuple[Param, Expr]] = []
                for i, arg in enumerate(call.args):
                    j = i + offset
                    if j < len(positional):
                        pairs.append((positional[j], arg))
                by_name = {p.name: p for p in params}
                for name, arg in call.kwargs:
                    if name in by_name:
                        pairs.append((by_name[name], arg))
                for p, arg in pairs:
                    key = (callee, p.name)
                    if key in self.param_sessions or p.depends is not None \
                            or p.annotation is not None and not self._factory_annotation(p.annotation, callee):
                        continue
                    v = self.value(arg, fid)
                    if v is not None and v[0] in (SESSION, ASESSION):
                        self.param_sessions[key] = "call-site" if v[0] == SESSION else "async"
                        changed = True
            if not changed:
                break
            self._value_memo.clear()
            self._qualified_memo.clear()
            self._import_memo.clear()
            self._foreign_memo.clear()

    # ------------------------------------------------------------------ receivers
    def receiver(self, expr: Expr, fid: str, in_lambda: bool = False) -> Value:
        """The value of a method-call receiver, with the name-only fallback.

        A name is evidence only in a project that uses SQLAlchemy (``uses_sqlalchemy``), and never for a
        receiver whose value demonstrably comes from something else (:meth:`foreign`): ``db =
        sqlite3.connect(p)``, ``with listener.accept()[0] as s``, ``s: str``.
        """
        v = self.value(expr, fid)
        if v is not None:
            return v
        if not self.settings.name_heuristics or expr is None or not self.uses_sqlalchemy:
            return None
        name = expr[-1] if expr[0] in ("n", "a") else None
        if name is None or name not in self.settings.session_names:
            return None
        if self.foreign(expr, fid):
            return None
        fn = self.functions[fid]
        if expr in fn.summary.awaited_receivers or self._file_is_async_only(fn.file) \
                or self.async_only and not in_lambda and not self._handed_to_run_sync(fid):
            return (ASESSION, "name-only")
        if expr[0] == "a" and expr[1] is not None and expr[1][0] == "n":
            base = self.value(expr[1], fid)
            if base is not None and base[0] not in ("instance",):
                return None  # ``requests.session`` & co: a known object that is not ours
        return (SESSION, "name-only")

    def _uses_sqlalchemy(self) -> bool:
        """Does any file import SQLAlchemy (or a package built on it), or does the configuration name sessions?"""
        s = self.settings
        if s.session_dependencies or s.session_factories or s.session_names != facts.SESSION_LIKE_NAMES:
            return True
        return any(qn.split(".", 1)[0] in facts.SQLALCHEMY_PACKAGES for fs in self.files for _, qn in fs.imports)

    # ------------------------------------------------------------------ provenance (name-only veto)
    def foreign(self, expr: Expr, fid: str) -> bool:
        """True when ``expr`` demonstrably comes from something that is not a session.

        Unlike :meth:`value`, which knows what a session *is*, this knows what certainly is *not* one: a
        value made by the standard library or a non-database package (``socket.socket()``, ``open(p)``,
        ``sqlite3.connect(p)``, ``requests.Session()``), anything a method of such a value returns
        (``listener.accept()[0]``), what ``with`` / ``await`` of one binds, a project function whose every
        ``return`` is foreign, a parameter or local annotated with such a type, and a local or ``self``
        attribute all of whose assignments are foreign.  Anything else (unannotated parameters, untracked
        expressions, containers, context variables, third-party packages we know nothing about) is not
        foreign, so the name-only fallback still applies to it.
        """
        if expr is None:
            return False
        key = (expr, fid)
        hit = self._foreign_memo.get(key)
        if hit is not None:
            return hit
        if key in self._foreign_stack or len(self._foreign_stack) > _MAX_DEPTH:
            return False  # a cycle proves nothing
        self._foreign_stack.add(key)
        try:
            result = self._foreign(expr, fid)
        finally:
            self._foreign_stack.discard(key)
        self._foreign_memo[key] = result
        return result

    def _foreign_qualname(self, qn: str) -> bool:
        """An external name (a callable or a type) whose values are never sessions."""
        root, _, rest = qn.partition(".")
        if root == "builtins":
            return rest.split(".", 1)[0] in facts.NON_SESSION_BUILTINS
        if root in facts.SQLALCHEMY_PACKAGES or self._configured(qn, self.settings.session_factories) \
                or self._configured(qn, self.settings.session_dependencies):
            return False
        return root in facts.NON_SESSION_PACKAGES or root in _STDLIB_MAKERS

    def _foreign_type(self, ann: Expr, fid: str) -> bool:
        """An annotation naming a type that is not a session (``str``, ``socket.socket``, ``requests.Session``)."""
        if ann is None or ann[0] not in ("n", "a"):
            return False  # ``Annotated``/subscripted generics (``scoped_session[Session]``): not decided here
        t = self.value(ann, fid)
        return t is not None and t[0] == "ext" and self._foreign_qualname(t[1])

    def _foreign_sources(self, sources: Iterable[tuple[Expr, str]]) -> bool:
        """All of these ``(expr, scope)`` assignments are foreign, and there is at least one."""
        seen = False
        for src, scope in sources:
            if not self.foreign(src, scope):
                return False
            seen = True
        return seen

    def _foreign(self, expr: tuple, fid: str) -> bool:
        kind = expr[0]
        if kind == "n":
            return self._foreign_name(expr[1], fid)
        if kind == "a":
            base = self.value(expr[1], fid)
            if base is not None and base[0] == "instance":
                return self._foreign_attribute(base[1], expr[2])
            return False  # attributes of other things are bags (``request.state.db``)
        if kind == "c":
            target = self.value(expr[1], fid)
            if target is not None:
                if target[0] == "ext":
                    return self._foreign_qualname(target[1])
                if target[0] in ("func", "method"):
                    callee = target[1] if target[0] == "func" else target[2]
                    fn = self.functions.get(callee)
                    if fn is None or fn.summary.is_generator or not fn.summary.returns:
                        return False  # an abstract ``...`` body says nothing about its overrides
                    return self._foreign_sources((r, callee) for r in fn.summary.returns)
                return False
            func = expr[1]
            # a method of a foreign value returns a foreign value: ``listener.accept()``
            return func is not None and func[0] == "a" and self.foreign(func[1], fid)
        if kind == "sub":  # an item of what a foreign call returns: ``listener.accept()[0]``
            base = expr[1]
            return base is not None and base[0] == "c" and self.foreign(base, fid)
        if kind in ("with", "aw"):
            return self.foreign(expr[1], fid)
        if kind == "in":
            return self.foreign(expr[2], expr[1])
        if kind == "annot":
            return self._foreign_type(expr[1], fid)
        return False

    def _foreign_name(self, name: str, fid: str) -> bool:
        fn = self.functions.get(fid)
        if fn is None:
            return False
        summary = fn.summary
        mod = self.module_of(fid)
        if summary.qualname != MODULE_SCOPE:
            params = self._fn_params.get(fid, {})
            if name in params:
                p = params[name]
                if p.depends is None and self._foreign_type(p.annotation, fid):
                    return True
                # a test's parameter filled by a fixture whose every return/yield is foreign (``sqlite3.connect``)
                fixture = self._fixture_of(fid, p)
                return fixture is not None and self._foreign_sources(
                    (r, fixture) for r in self.functions[fixture].summary.returns)
            ann = self._fn_annotations.get(fid, {}).get(name)
            if ann is not None and self._foreign_type(ann, fid):
                return True
            if name in self._fn_locals.get(fid, {}):
                return self._foreign_sources((src, fid) for src in self._fn_locals[fid][name])
            if any(b.name == name for b in summary.bindings):
                return False  # ``for s in ...``, comprehension variables: not tracked
            if ".<locals>." in summary.qualname:
                outer = f"{mod}:{summary.qualname.rsplit('.<locals>.', 1)[0]}"
                return outer in self.functions and self._foreign_name(name, outer)
        module_fid = f"{mod}:{MODULE_SCOPE}"
        if name in self._module_vars.get(mod, {}):
            return self._foreign_sources((src, module_fid) for src in self._module_vars[mod][name])
        return False

    def _foreign_attribute(self, cid: str, attr: str) -> bool:
        """``self.attr``: every assignment in the class (and its bases) is foreign, or it is annotated so."""
        sources: list[tuple[Expr, str]] = []
        for c in self.mro(cid):
            sources.extend((src, "") for name, src in self._class_attr_sources.get(c, ()) if name == attr)
            _fs, cls = self.classes[c]
            module_fid = f"{c.split(':', 1)[0]}:{MODULE_SCOPE}"
            for name, ann in cls.annotations:
                if name == attr and ann is not None and self._foreign_type(ann, module_fid):
                    return True
        return self._foreign_sources(sources)

    def _file_is_async_only(self, fs: FileSummary) -> bool:
        imported = {qn for _, qn in fs.imports}
        has_async = bool(imported & facts.ASYNC_SESSION_TYPES)
        has_sync = bool(imported & (facts.SYNC_SESSION_TYPES | facts.SYNC_SESSIONMAKERS))
        return has_async and not has_sync

    def _handed_to_run_sync(self, fid: str) -> bool:
        """A function passed to ``run_sync``: its session parameter is the sync session behind the async one."""
        from .handoff import facade_functions

        return fid in facade_functions(self)

    _SYNC_MAKER_NAMES = frozenset(qn.rsplit(".", 1)[-1] for qn in facts.SYNC_SESSION_TYPES | facts.SYNC_SESSIONMAKERS)

    @property
    def async_only(self) -> bool:
        """An already-async code base (issue 12, class 7): some file imports an async session class or factory and
        nothing anywhere builds or names a sync one (no import of a sync session class or ``sessionmaker``, no call
        that resolves to one, no configured sync factory).  There a receiver known only by its name is an
        ``AsyncSession``: ``session.add(obj)`` in an untyped helper is not a sync session."""
        if self._async_only is None:
            self._async_only = self._compute_async_only()
        return self._async_only

    def _compute_async_only(self) -> bool:
        if self.settings.session_factories or self.settings.session_dependencies:
            return False
        sync_names = facts.SYNC_SESSION_TYPES | facts.SYNC_SESSIONMAKERS
        async_names = facts.ASYNC_SESSION_TYPES | facts.ASYNC_SESSIONMAKERS
        has_async = False
        for fs in self.files:
            for _, qn in fs.imports:
                if qn in sync_names:
                    return False
                has_async = has_async or qn in async_names
        if not has_async:
            return False
        for fid, fn in self.functions.items():
            for call in fn.summary.calls:
                func = call.func
                if func and func[0] in ("n", "a") and func[-1] in self._SYNC_MAKER_NAMES:
                    target = self.call_target(call, fid)
                    if target is not None and target[0] == "ext" and target[1] in sync_names:
                        return False
        return True
