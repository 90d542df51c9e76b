"""The migration plan: which sessions become ``AsyncSession``, which functions become ``async def``.

``fix`` stands on the same :class:`~asyncmigrate.analysis.findings.Analysis`
as ``scan``.  From it this module decides, once for the whole tree:

1. **Converted functions.**  Every function in the fixed paths that uses a sync
   session is converted, together with every function its sessions flow to or
   from: a session passed as an argument, or held as ``self.db`` by a class,
   must have one type on both sides of the call.  This can reach outside the
   paths given (module-by-module migration); those files appear in the same diff.
2. **Async propagation.**  A converted function that now awaits becomes
   ``async def``; every caller in the project awaits it and becomes async in
   turn, transitively, across modules, through ``self`` and instances.  It
   stops at boundaries: an ``async def`` (just ``await``), a call under
   ``if __name__ == "__main__":`` or in a configured entry point
   (``asyncio.run(...)``), and callers that cannot become coroutines
   (``__init__``, properties, sync generators, lambdas, callbacks), which are
   reported and left unchanged.
3. **Per-file plans** (:class:`~asyncmigrate.codemods.base.FilePlan`) that the
   codemods read: session receivers per scope, functions to make async, calls
   to await or to run with ``asyncio.run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from . import facts
from .analysis.findings import Analysis
from .analysis.index import MODULE_SCOPE, expr_text
from .analysis.legacy_api import LIST_ARGUMENT, TEXTUAL_SQL, legacy_uses
from .analysis.paths import is_test_file  # noqa: F401  (re-exported for callers)
from .analysis.orm import relationship_index
from .analysis.sessions import Project, is_session
from .codemods.base import FilePlan
from .config import Config
from .model import CallSite, Expr

#: methods whose call, on a converted session, makes the function await
_AWAITING_METHODS = facts.AWAITED_SESSION_METHODS | {"query"}
#: ``with db.begin():`` becomes ``async with db.begin():`` on an AsyncSession (``await_session_methods``)
_ASYNC_WITH_METHODS = frozenset({"begin", "begin_nested"})


def _awaits_on_async_session(call) -> bool:
    """A method call on a session that needs ``await`` (or ``async with``) once the session is an AsyncSession."""
    method = call.func[2]
    return (method in _AWAITING_METHODS and not call.awaited) or (
        method in _ASYNC_WITH_METHODS and call.context_manager == "with")
_CANNOT_BE_ASYNC = frozenset({"__init__", "__new__", "__del__", "__enter__", "__exit__", "__iter__", "__next__",
                              "__len__", "__bool__", "__hash__", "__eq__", "__repr__", "__str__", "__getattr__",
                              "__setattr__", "__getitem__", "__setitem__", "__contains__", "__post_init__"})
#: ambiguous methods (``AMBIGUOUS_METHOD_NAMES``) that confirm a name-only receiver when given a SQLAlchemy
#: statement, or when their result is read with a method only a ``Result`` has
_CONFIRMING_WITH_STATEMENT = frozenset({"execute", "scalar", "scalars", "stream"})
_RESULT_ONLY = frozenset({"scalars", "scalar_one", "scalar_one_or_none", "unique", "mappings", "one_or_none",
                          "fetchall", "fetchone", "fetchmany"})
#: callees that call the functions handed to them synchronously (SQLAlchemy's ``event.listen`` /
#: ``@event.listens_for``): such a function can never become a coroutine, nothing would await it
_SYNC_CALLBACK_SINKS = frozenset({"listen", "listens_for"})
_SAFE_CALLBACK_SINKS = frozenset({"add_task", "Depends", "Security", "create_task", "ensure_future", "gather",
                                  "add_api_route", "api_route", "add_event_handler", "include_router"})


@dataclass(frozen=True)
class LeftForHuman:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class DatabaseModule:
    module: str  # project module key
    dotted: str  # importable dotted name
    path: str
    factory: Optional[str]
    engine: Optional[str]
    dependency: Optional[str]


@dataclass
class MigrationPlan:
    files: dict[str, FilePlan] = field(default_factory=dict)
    converted: set[str] = field(default_factory=set)
    make_async: set[str] = field(default_factory=set)
    left: list[LeftForHuman] = field(default_factory=list)
    database: Optional[DatabaseModule] = None
    #: the app's sync database names -> their async twins (``FilePlan.app_twins``), for test code
    app_twins: dict[str, str] = field(default_factory=dict)
    #: SQLAlchemy 1.4-only API in the whole project (``analysis/legacy_api.py``): ``fix`` raises the pin only
    #: when every use is rewritten
    legacy: list = field(default_factory=list)

    def fallback(self, path: str, module: str) -> FilePlan:
        """The plan of a file with nothing converted in it (test code, Phase-1 code) that ``fix`` still rewrites."""
        test = is_test_file(path)
        return FilePlan(module=module, database_module=self.database.dotted if self.database else None,
                        test_module=test, app_twins=self.app_twins if test else {})


def _new_entry(module: str) -> dict:
    """The mutable form of a :class:`FilePlan` while the planner fills it."""
    return {"module": module, "sessions": {}, "make_async": set(), "await_calls": {}, "run_calls": {},
            "factories": set(), "deps": set(), "serialize": {}, "async_with": {}, "acm": set(), "engines": set()}


class Planner:
    def __init__(self, analysis: Analysis, paths: Optional[set[str]], config: Config,
                 exclude: Optional[dict[str, tuple[str, int, str]]] = None):
        self.analysis = analysis
        #: cause fid -> (path, line, root cause): the soundness check (``soundness.py``) found that converting it
        #: breaks the invariant; its component, closed under calls, stays sync (reported there)
        self.exclude = dict(exclude or {})
        self.project: Project = analysis.project
        self.graph = analysis.graph
        self.paths = paths
        self.config = config
        self.plan = MigrationPlan()
        self._receivers: dict[str, dict[str, str]] = {}
        #: per-request slots (``("request", "db")``) that a dependency left on the sync session returns -> (its
        #: fid, its qualname): code that fills or uses the same slot stays sync with it
        self._slots: dict[tuple[str, str], tuple[str, str]] = {}
        self._sync_callbacks_memo: Optional[dict[str, str]] = None

    # ------------------------------------------------------------- facts per function
    def receivers(self, fid: str) -> dict[str, str]:
        """Dotted texts that are sync sessions in ``fid`` -> evidence."""
        if fid in self._receivers:
            return self._receivers[fid]
        p = self.project
        fn = p.functions[fid]
        out: dict[str, str] = {}
        if fn.summary.qualname != MODULE_SCOPE:
            for prm in fn.summary.params:
                v = p.param_value(fid, prm)
                if is_session(v):
                    out[prm.name] = v[1]
            for name, _ in fn.summary.assigns:
                v = p.value(("n", name), fid)
                if is_session(v):
                    out[name] = v[1]
            # a receiver known only by its name, with only methods common on other objects called on it
            # (``close``/``get``/``execute``: the scan does not report them), is a session only beside other
            # evidence in the same function (``request.state.db = SessionLocal(); ...; request.state.db.close()``)
            confirmed = self._confirmed_texts(fid)
            unconfirmed: set[str] = set()
            for call in fn.summary.calls:
                if call.func and call.func[0] == "a" and not call.awaited:
                    v = p.receiver(call.func[1], fid, call.in_lambda)
                    text = expr_text(call.func[1])
                    if text and is_session(v) and "(" not in text:
                        if v[1] == "name-only" and text not in confirmed:
                            unconfirmed.add(text)
                        out[text] = v[1]
            if unconfirmed and set(out) <= unconfirmed and not self.uses_factory(fid):
                out = {}
        self._receivers[fid] = out
        return out

    def _confirmed_texts(self, fid: str) -> set[str]:
        """Receivers (dotted text) that a method only a session has is called on: in ``fid``, and for
        ``self.<attr>`` in any method of its class or of a base class (``self.db.query()`` in one method
        confirms ``self.db.close()`` in another)."""
        def own(f: str) -> set[str]:
            summary = self.project.functions[f].summary
            out: set[str] = set()
            for c in summary.calls:
                func = c.func
                if not func or func[0] != "a" or c.awaited:
                    continue
                recv = func[1]
                if func[2] in _RESULT_ONLY and recv and recv[0] == "c" and recv[1] and recv[1][0] == "a" \
                        and recv[1][2] in _CONFIRMING_WITH_STATEMENT:
                    out.add(expr_text(recv[1][1]) or "")  # ``db.execute(stmt).scalars()``
                elif func[2] in facts.NAME_ONLY_CONFIRMING_METHODS:
                    out.add(expr_text(recv) or "")
                elif func[2] in _CONFIRMING_WITH_STATEMENT and c.args and self._sqlalchemy_made(c.args[0], f):
                    out.add(expr_text(recv) or "")  # ``db.execute(select(...))``, ``db.scalar(stmt)``
            if summary.is_generator:  # ``def get_db(): db = make(); try: yield db finally: db.close()``
                out.update(expr_text(r) or "" for r in summary.returns if r and r[0] == "n")
            out.discard("")
            return out
        out = own(fid)
        cq = self.project.functions[fid].summary.class_qualname
        if cq:
            if not hasattr(self, "_class_confirmed"):
                self._class_confirmed: dict[str, set[str]] = {}
                for f, fn in self.project.functions.items():
                    if fn.summary.class_qualname:
                        texts = {t for t in own(f) if t.startswith("self.")}
                        if texts:
                            key = f"{self.project.module_of(f)}:{fn.summary.class_qualname}"
                            self._class_confirmed.setdefault(key, set()).update(texts)
            for c in self.project.mro(f"{self.project.module_of(fid)}:{cq}"):  # and its bases, across modules
                out |= self._class_confirmed.get(c, set())
        return out

    def _sqlalchemy_made(self, expr: Expr, fid: str, depth: int = 0) -> bool:
        """Does ``expr`` come from SQLAlchemy (``select(User).where(...)``, a local assigned one, ``text(...)``)?"""
        if expr is None or depth > 8:
            return False
        kind = expr[0]
        if kind == "c":
            target = self.project.value(expr[1], fid)
            if target is not None and target[0] == "ext":
                return target[1].split(".", 1)[0] in facts.SQLALCHEMY_PACKAGES
            func = expr[1]
            return func is not None and func[0] == "a" and self._sqlalchemy_made(func[1], fid, depth + 1)
        if kind == "n":
            sources = self.project._fn_locals.get(fid, {}).get(expr[1], ())
            return any(self._sqlalchemy_made(src, fid, depth + 1) for src in sources)
        return False

    def session_args(self, call: CallSite, fid: str) -> bool:
        for arg in (*call.args, *(v for _, v in call.kwargs)):
            if is_session(self.project.value(arg, fid)):
                return True
        return False

    def uses_factory(self, fid: str) -> bool:
        return any(f.code in ("ASM103", "ASM104") for f in self.analysis.by_function.get(fid, ()))

    def returns_new_session(self, fid: str) -> bool:
        """A session factory function (``def new_session() -> Session: return Session(engine)``): every session
        it builds is returned as it is.  Converted, it returns an ``AsyncSession`` and awaits nothing, so it
        stays a ``def`` (``async def`` would make its callers write ``with await new_session()``, which an
        ``AsyncSession`` does not support); its callers' ``with new_session() as s`` becomes ``async with``."""
        built = [f.span for f in self.analysis.by_function.get(fid, ()) if f.code in ("ASM103", "ASM104")]
        if not built:
            return False
        uses = {c.span: c.use for c in self.project.functions[fid].summary.calls}
        return all(uses.get(span) == "return" for span in built)

    def awaits_after_conversion(self, fid: str) -> bool:
        recv = self.receivers(fid)
        if self.uses_factory(fid) and not self.returns_new_session(fid):
            return True
        for call in self.project.functions[fid].summary.calls:
            func = call.func
            if func and func[0] == "a" and _awaits_on_async_session(call):
                if expr_text(func[1]) in recv:
                    return True
        return False

    def is_provider(self, fid: str) -> bool:
        """``get_db``-style generators that *create* the session they yield: they get an async twin instead.

        A generator that yields a session it was handed (``@contextmanager def unit_of_work(db)``) is not one:
        it is converted with its callers.
        """
        fn = self.project.functions[fid].summary
        provided = self.project.provides(fid)
        return fn.is_generator and is_session(provided) and provided[1] in ("factory", "provider")

    def is_context_manager(self, fid: str) -> bool:
        fn = self.project.functions[fid].summary
        for dec in fn.decorators:
            v = self.project.value(dec, fid) if dec else None
            if v and v[0] == "ext" and v[1] in ("contextlib.contextmanager",):
                return True
        return False

    def _threadpool_route(self, fid: str) -> bool:
        """A sync route or dependency that FastAPI runs in its threadpool today (SQLALCHEMY_ASYNC.md §5)."""
        fn = self.project.functions[fid].summary
        if fn.is_async or self.graph.on_loop(fid):
            return False
        routes = any(d is not None and d[0] == "a" and d[2] in facts.ROUTE_DECORATORS for d in fn.decorator_calls)
        return routes or fid in self._dependency_targets()

    def _dependency_targets(self) -> set[str]:
        if not hasattr(self, "_deps"):
            p = self.project
            self._deps: set[str] = set()
            for fid, fn in p.functions.items():
                for prm in fn.summary.params:
                    if prm.depends is not None and prm.depends[0] == "dep" and prm.depends[2] is not None:
                        v = p.value(prm.depends[2], fid)
                        if v and v[0] == "func":
                            self._deps.add(v[1])
        return self._deps

    def blocking_io(self, fid: str) -> list[tuple[int, str]]:
        """Other blocking calls (files, HTTP, subprocesses...) in ``fid``: (line, name)."""
        out = []
        for call in self.project.functions[fid].summary.calls:
            if call.func is None or call.func[-1] not in facts.BLOCKING_CALL_NAMES:
                continue
            v = self.project.call_target(call, fid)
            if v and v[0] == "ext" and facts.blocking_io(v[1]) is not None:
                out.append((call.span.line, v[1].replace("builtins.", "")))
        return out

    def in_scope(self, fid: str) -> bool:
        return self.paths is None or self.project.functions[fid].file.path in self.paths

    # ------------------------------------------------------------- sessions built on an engine
    def session_constructions(self, fid: str) -> list[tuple[CallSite, Optional[str]]]:
        """``Session(engine)`` / ``Session(bind=engine)`` calls in ``fid``: (call, engine text or None).

        The engine text is the sync engine as the file spells it (``engine``, ``db.engine``) when that engine
        gets an async twin named ``FilePlan.async_engine`` (the one sync engine built at module level in its
        module), so the construction becomes ``AsyncSession(<twin>, expire_on_commit=False)``; None when it
        does not (an engine passed in as a parameter, built in a function, one of several).
        """
        p = self.project
        out: list[tuple[CallSite, Optional[str]]] = []
        for call in p.functions[fid].summary.calls:
            target = p.call_target(call, fid)
            if not (target and target[0] == "ext" and target[1] in facts.SYNC_SESSION_CLASSES):
                continue
            bind = dict(call.kwargs).get("bind") or (call.args[0] if call.args else None)
            out.append((call, self._twinned_engine(bind, fid)))
        return out

    def _twinned_engine(self, bind: Expr, fid: str) -> Optional[str]:
        p = self.project
        text = expr_text(bind) if bind else None
        if not text or p.value(bind, fid) != ("engine",):
            return None
        mod = p.module_of(fid)
        if bind[0] == "n":
            name = bind[1]
            fn = p.functions[fid].summary
            if fn.qualname != MODULE_SCOPE and (any(prm.name == name for prm in fn.params)
                                                or name in dict(fn.assigns)):
                return None  # a parameter or a local: no module-level twin
            if name not in p._module_vars.get(mod, {}):
                qn = p._imports.get(mod, {}).get(name)
                if qn is None or "." not in qn:
                    return None
                mod = p.find_module(qn.rsplit(".", 1)[0])
                name = qn.rsplit(".", 1)[1]
        elif bind[0] == "a" and bind[1] and bind[1][0] == "n":
            base = p.value(bind[1], fid)
            if not (base and base[0] == "module"):
                return None
            mod, name = base[1], bind[2]
        else:
            return None
        if mod is None or mod not in p.modules:
            return None
        engines = [n for n, _ in p.modules[mod].module_scope.assigns
                   if p.value(("n", n), f"{mod}:{MODULE_SCOPE}") == ("engine",)]
        return text if engines and set(engines) == {name} else None

    # ------------------------------------------------------------- 1. conversion closure
    def _session_links(self) -> dict[str, set[str]]:
        links: dict[str, set[str]] = {}
        p = self.project
        for fid, edges in self.graph.edges.items():
            for callee, call in edges:
                if self.session_args(call, fid):
                    links.setdefault(fid, set()).add(callee)
                    links.setdefault(callee, set()).add(fid)
        # a session handed, with a function, to something that calls it (``run_in_threadpool(load_user, db)``)
        for fid, fn in p.functions.items():
            for call in fn.summary.calls:
                if not call.args or not self.session_args(call, fid):
                    continue
                for arg in (*call.args, *(v for _, v in call.kwargs)):
                    target = self._callback_target(arg, fid)
                    if target in p.functions and target != fid:
                        links.setdefault(fid, set()).add(target)
                        links.setdefault(target, set()).add(fid)
        # FastAPI solves a dependency once per request: a route and every dependency below it that declares the
        # same session dependency get ONE session, and what one loads (``item = Depends(get_item)``,
        # ``user = Depends(get_current_user)``) is attached to it.  Converted apart, they would hold two sessions,
        # and ``db.add(item)`` fails ("already attached to session"): they convert together or not at all.
        for fid in p.functions:
            sharing = [f for f in (fid, *self._dependency_tree(fid)) if self._takes_session_dependency(f)]
            for a, b in zip(sharing, sharing[1:]):
                links.setdefault(a, set()).add(b)
                links.setdefault(b, set()).add(a)
        # methods that use ``self.<attr>`` sessions are linked to the class's other such methods
        by_class: dict[str, list[str]] = {}
        for fid, fn in p.functions.items():
            cq = fn.summary.class_qualname
            if cq and any(t.startswith("self.") for t in self.receivers(fid)):
                by_class.setdefault(f"{p.module_of(fid)}:{cq}", []).append(fid)
        for cid, fids in by_class.items():
            init = p.find_method(cid, "__init__")
            group = set(fids) | ({init} if init else set())
            for f in group:
                links.setdefault(f, set()).update(group - {f})
        return links

    def _depends_on(self, fid: str) -> list[str]:
        """The project functions ``fid``'s parameters declare as dependencies (``x = Depends(f)``)."""
        p = self.project
        out = []
        for prm in p.functions[fid].summary.params:
            if prm.depends is not None and prm.depends[0] == "dep" and prm.depends[2] is not None:
                v = p.value(prm.depends[2], fid)
                if v and v[0] == "func" and v[1] in p.functions and v[1] != fid:
                    out.append(v[1])
        return out

    def _dependency_tree(self, fid: str) -> list[str]:
        """Every project function below ``fid`` in its dependency tree, in a stable order."""
        seen: dict[str, None] = {}
        todo = list(self._depends_on(fid))
        while todo:
            f = todo.pop(0)
            if f in seen or f == fid:
                continue
            seen[f] = None
            todo += self._depends_on(f)
        return list(seen)

    def _takes_session_dependency(self, fid: str) -> bool:
        p = self.project
        return any(prm.depends is not None and is_session(p.param_value(fid, prm))
                   for prm in p.functions[fid].summary.params)

    def conversion(self, excluded: frozenset[str] = frozenset()) -> set[str]:
        p = self.project
        seeds = {fid for fid, fn in p.functions.items()
                 if fn.summary.qualname != MODULE_SCOPE and self.in_scope(fid) and not self.is_provider(fid)
                 and not is_test_file(fn.file.path) and fid not in excluded
                 and (self.receivers(fid) or self.uses_factory(fid))}
        links = self._session_links()
        converted = set(seeds)
        todo = list(seeds)
        while todo:
            fid = todo.pop()
            for other in links.get(fid, ()):
                if other not in converted and p.functions[other].summary.qualname != MODULE_SCOPE \
                        and not self.is_provider(other) and not is_test_file(p.functions[other].file.path):
                    converted.add(other)
                    todo.append(other)
        return converted

    def component(self, fid: str, converted: set[str]) -> set[str]:
        """The converted functions that share sessions with ``fid`` (they convert together or not at all)."""
        links = self._links if hasattr(self, "_links") else self._session_links()
        self._links = links
        seen = {fid}
        todo = [fid]
        while todo:
            f = todo.pop()
            for other in links.get(f, ()):
                if other in converted and other not in seen:
                    seen.add(other)
                    todo.append(other)
        return seen

    # ------------------------------------------------------------- 2. async propagation
    def _callback_target(self, arg, fid: str) -> Optional[str]:
        """The project function ``arg`` (an argument in ``fid``) names, if any."""
        if not arg or arg[0] not in ("n", "a"):
            return None
        v = self.project.value(arg, fid)
        return v[1] if v and v[0] == "func" else v[2] if v and v[0] == "method" else None

    def _sync_callbacks(self) -> dict[str, str]:
        """fid -> why: functions handed to a sink that calls them synchronously (``_SYNC_CALLBACK_SINKS``), or to
        anything not known to await what it is given (everything but ``_SAFE_CALLBACK_SINKS``)."""
        if self._sync_callbacks_memo is not None:
            return self._sync_callbacks_memo
        found = {}
        p = self.project
        for fid, fn in p.functions.items():
            for call in fn.summary.calls:
                text = expr_text(call.func) or ""
                sink = text.rsplit(".", 1)[-1]
                if sink in _SAFE_CALLBACK_SINKS:
                    continue
                # a function handed to anything not known to await it (an event manager's register(), a
                # scheduler, a thread, map()...) is called synchronously there: as a coroutine function its
                # work would silently never run
                how = "which calls it synchronously" if sink in _SYNC_CALLBACK_SINKS else "which is not known to await it"
                for arg in (*call.args, *(v for _, v in call.kwargs)):
                    target = self._callback_target(arg, fid)
                    if target is not None and target != fid:
                        found.setdefault(target, f"`{p.functions[target].summary.qualname}` is handed to "
                                                 f"`{text or 'a call'}()`, {how}")
            for deco in fn.summary.decorator_calls:
                text = expr_text(deco) or ""
                if text.rsplit(".", 1)[-1] in _SYNC_CALLBACK_SINKS:
                    found.setdefault(fid, f"`{fn.summary.qualname}` is registered with `@{text}(...)`, which calls "
                                          "it synchronously")
        self._sync_callbacks_memo = found
        return found

    def _override_partners(self) -> dict[str, set[str]]:
        """fid -> the project methods it overrides or that override it (same name, along the class hierarchy)."""
        memo = self.__dict__.get("_overrides_memo")
        if memo is not None:
            return memo
        p = self.project
        partners: dict[str, set[str]] = {}
        methods: dict[str, list[str]] = {}
        for fid, info in p.functions.items():
            cls = info.summary.class_qualname
            if cls is not None and info.summary.name not in _CANNOT_BE_ASYNC:
                methods.setdefault(f"{info.file.module}:{cls}", []).append(info.summary.name)
        for cid, names in methods.items():
            for base in list(p.mro(cid))[1:]:
                for name in names:
                    mine, theirs = f"{cid}.{name}", f"{base}.{name}"
                    if mine in p.functions and theirs in p.functions:
                        partners.setdefault(mine, set()).add(theirs)
                        partners.setdefault(theirs, set()).add(mine)
        self.__dict__["_overrides_memo"] = partners
        return partners

    def _uses_session(self, fid: str) -> bool:
        return bool(self.receivers(fid)) or self.uses_factory(fid)

    def _boundary(self, fid: str) -> Optional[str]:
        """Why ``fid`` cannot become ``async def`` (None when it can)."""
        callback = self._sync_callbacks().get(fid)
        if callback is not None:
            return callback
        for other in sorted(self._override_partners().get(fid, ())):
            ofn = self.project.functions[other].summary
            if not ofn.is_async and not self._uses_session(other):
                # code that calls it through the other class calls it synchronously (``for p in plugins: p.run()``)
                return (f"`{self.project.functions[fid].summary.qualname}` overrides or is overridden by "
                        f"`{ofn.qualname}`, which stays sync")
        fn = self.project.functions[fid].summary
        if fn.name in _CANNOT_BE_ASYNC:
            return f"`{fn.qualname}` cannot be a coroutine ({fn.name})"
        if fn.kind == "property":
            return f"`{fn.qualname}` is a property"
        if fn.is_generator and not self.is_context_manager(fid):
            return f"`{fn.qualname}` is a sync generator"
        if ".<locals>." in fn.qualname and fn.name == "<lambda>":
            return "a lambda"
        return None

    def _cannot_await(self, converted: set[str], make_async: set[str]) -> list[tuple[str, int, str]]:
        """``(fid, line, why)`` for converted code that would have to await on its converted session where it
        cannot: a function that cannot be a coroutine (``_boundary``) calling a coroutine method of the session,
        opening one from a factory, or handing it to a function that becomes async; a lambda doing the latter."""
        p = self.project
        out: list[tuple[str, int, str]] = []
        for fid in sorted(converted):
            fn = p.functions[fid].summary
            boundary = None if fn.is_async else self._boundary(fid)
            found = None
            if boundary is not None:
                recv = self.receivers(fid)
                for call in fn.calls:
                    func = call.func
                    if func and func[0] == "a" and _awaits_on_async_session(call) and expr_text(func[1]) in recv:
                        how = "entered with `async with`" if func[2] in _ASYNC_WITH_METHODS else "awaited"
                        found = (call.span.line, f"{boundary} and calls `{expr_text(func[1])}.{func[2]}()`, which "
                                 f"must be {how} on an AsyncSession")
                        break
                if found is None and self.uses_factory(fid):
                    found = (fn.span.line, f"{boundary} and opens a session, which would be an AsyncSession")
            for callee, call in self.graph.edges.get(fid, ()):
                if found is not None:
                    break
                if callee in make_async and (boundary is not None or call.in_lambda) and self.session_args(call, fid):
                    what = f"passes its session to `{expr_text(call.func)}()`, which becomes async"
                    found = (call.span.line, f"`{fn.qualname}` {what}, in a lambda" if call.in_lambda
                             else f"{boundary} and {what}")
            if found is not None:
                out.append((fid, *found))
        return out

    def _entry_point(self, fid: str) -> bool:
        fn = self.project.functions[fid]
        entry_points = self.config.entry_points
        if fn.display in entry_points or fn.summary.qualname in entry_points or self.project.display(fid) in entry_points:
            return True
        for dec in fn.summary.decorators:
            v = self.project.value(dec, fid) if dec else None
            name = v[1] if v and v[0] == "ext" else ""
            if name.startswith(("click.", "typer.")) or name.endswith((".command", ".group")):
                return True
        return False

    def propagate(self, converted: set[str]) -> tuple[set[str], dict[str, set[str]], dict[str, set[str]]]:
        p = self.project
        make_async: set[str] = set()
        for fid in converted:
            fn = p.functions[fid].summary
            if not fn.is_async and self.awaits_after_conversion(fid):
                why = self._boundary(fid)
                if why:
                    self.left(fid, fn.span.line, f"{why}: it uses a session that becomes async; not converted")
                    continue
                make_async.add(fid)
        await_calls: dict[str, set[str]] = {}
        run_calls: dict[str, set[str]] = {}
        async_with: dict[str, set[str]] = {}
        todo = list(make_async)
        while todo:
            target = todo.pop()
            for caller, call in self.graph.callers.get(target, ()):
                text = expr_text(call.func)
                cfn = p.functions[caller].summary
                calls_into = async_with if self.is_context_manager(target) else await_calls
                if self.is_context_manager(target) and call.context_manager != "with":
                    self.left(caller, call.span.line, f"`{text}()` becomes an async context manager; it is used "
                              "outside a `with` statement here: adapt it by hand")
                    continue
                if text is None or call.in_lambda:
                    self.left(caller, call.span.line, f"call of `{p.functions[target].display}` (now async) "
                              "inside a lambda or through an expression; await it by hand")
                    continue
                if cfn.is_async:
                    calls_into.setdefault(caller, set()).add(text)
                    continue
                if is_test_file(p.functions[caller].file.path):
                    self.left(caller, call.span.line, f"test `{cfn.qualname}` calls `{text}()`, which becomes async: "
                              "run it with asyncio.run(...) or an async test")
                    continue
                if cfn.qualname == MODULE_SCOPE:
                    if call.main_guard:
                        run_calls.setdefault(caller, set()).add(text)
                    else:
                        self.left(caller, call.span.line, f"module-level call of `{text}()` runs at import time; "
                                  "it is now a coroutine function")
                    continue
                if self._entry_point(caller) and not self.graph.on_loop(caller):
                    run_calls.setdefault(caller, set()).add(text)
                    continue
                why = self._boundary(caller)
                if why:
                    self.left(caller, call.span.line, f"{why} and calls `{text}()`, which becomes async")
                    continue
                calls_into.setdefault(caller, set()).add(text)
                if caller not in make_async:
                    make_async.add(caller)
                    todo.append(caller)
        for fid in converted:
            if fid in make_async or not self.returns_new_session(fid):
                continue
            for caller, call in self.graph.callers.get(fid, ()):
                text = expr_text(call.func)
                if call.context_manager == "with" and text is not None:
                    if p.functions[caller].summary.is_async or caller in make_async:
                        async_with.setdefault(caller, set()).add(text)
                    else:
                        self.left(caller, call.span.line, f"`with {text}()` gives an AsyncSession now, which needs "
                                  "`async with` in a coroutine; this function stays sync: adapt it by hand")
        self._check_references(make_async)
        return make_async, await_calls, run_calls, async_with

    def _check_references(self, make_async: set[str]) -> None:
        """Functions now async that are handed to something as a callback."""
        p = self.project
        for fid, fn in p.functions.items():
            for call in fn.summary.calls:
                text = expr_text(call.func) or ""
                if text.rsplit(".", 1)[-1] in _SAFE_CALLBACK_SINKS:
                    continue
                for arg in (*call.args, *(v for _, v in call.kwargs)):
                    target = self._callback_target(arg, fid)
                    if target in make_async:
                        self.left(fid, call.span.line, f"`{expr_text(arg)}` is passed to `{text}()` and is now a "
                                  "coroutine function; make sure the receiver awaits it")

    def left(self, fid: str, line: int, reason: str) -> None:
        item = LeftForHuman(self.project.functions[fid].file.path, line, reason)
        if item not in self.plan.left:
            self.plan.left.append(item)

    # ------------------------------------------------------------- 3. database module
    def database(self) -> Optional[DatabaseModule]:
        p = self.project
        best: Optional[DatabaseModule] = None
        for mod, fs in p.modules.items():
            module_fid = f"{mod}:{MODULE_SCOPE}"
            factory = engine = None
            for name, _ in fs.module_scope.assigns:
                v = p.value(("n", name), module_fid)
                if v == ("factory",) and factory is None:
                    factory = name
                elif v == ("engine",) and engine is None:
                    engine = name
            if factory is None:
                continue
            dependency = None
            for fn in fs.functions:
                fid = f"{mod}:{fn.qualname}"
                if fn.is_generator and "." not in fn.qualname and is_session(p.provides(fid)):
                    dependency = fn.qualname
                    break
            candidate = DatabaseModule(mod, fs.module, fs.path, factory, engine, dependency)
            if best is None or (engine and not best.engine):
                best = candidate
        return best

    # ------------------------------------------------------------- 4. eager loading
    def relationship_index(self) -> dict[str, list[tuple[str, str]]]:
        """Relationship attribute name -> [(file path, class qualname)] over every mapped class."""
        out, self._mapped = relationship_index(self.project)
        return out

    def _fields(self, cid: str) -> dict[str, Expr]:
        fields: dict[str, Expr] = {}
        for c in reversed(list(self.project.mro(cid))):
            fields.update(dict(self.project.classes[c][1].annotations))
        return fields

    def _classes_in(self, expr: Expr, fid: str) -> list[str]:
        if expr is None:
            return []
        if expr[0] in ("n", "a"):
            v = self.project.value(expr, fid)
            return [v[1]] if v and v[0] == "class" else []
        if expr[0] == "sub":
            return [c for item in expr[2] for c in self._classes_in(item, fid)]
        if expr[0] == "annotated":
            return self._classes_in(expr[1], fid)
        return []

    def model_relationships(self, expr: Expr, fid: str, rels: set[str], depth: int = 0, seen=None) -> set[str]:
        """Relationship names a response model reads, through nested models."""
        seen = set() if seen is None else seen
        found: set[str] = set()
        for cid in self._classes_in(expr, fid):
            if cid in seen or depth > 6:
                continue
            seen.add(cid)
            fields = self._fields(cid)
            found |= rels & set(fields)
            module_fid = f"{cid.split(':', 1)[0]}:{MODULE_SCOPE}"
            for ann in fields.values():
                found |= self.model_relationships(ann, module_fid, rels, depth + 1, seen)
        return found

    def loop_functions(self, make_async: set[str], converted: set[str]) -> set[str]:
        """Everything that runs on the event loop once the migration is applied."""
        roots = set(self.graph.loop_chain) | make_async | converted
        seen = set(roots)
        todo = list(roots)
        while todo:
            fid = todo.pop()
            for callee, call in self.graph.edges.get(fid, ()):
                if callee not in seen and not call.in_lambda:
                    seen.add(callee)
                    todo.append(callee)
        return seen

    def eager_loading(self, converted: set[str]) -> tuple[dict[str, dict[str, set[str]]], dict[str, str]]:
        """(path -> class -> relationships to load with selectin, route fid -> session receiver to serialise in).

        A relationship loads eagerly when code on the loop reads it by name (receivers known to be something
        else, such as a pydantic payload, do not count) or a response model of a route on the loop reads it.
        """
        p = self.project
        index = self.relationship_index()
        rels = set(index)
        names: set[str] = set()
        serialize: dict[str, str] = {}
        for fid in self.loop_functions(self.plan.make_async, converted):
            fn = p.functions[fid]
            for name, attr, _line in fn.summary.attribute_reads:
                if attr not in rels or attr in names:
                    continue
                v = p.value(("n", name), fid)
                if v is not None and v[0] == "instance" and v[1] not in self._mapped:
                    continue  # a pydantic payload or another plain object: not an ORM relationship
                names.add(attr)
            model = fn.summary.response_model
            if model is None:
                continue
            read = self.model_relationships(model, fid, rels)
            names |= read
            if read and fid in converted and (fn.summary.is_async or fid in self.plan.make_async):
                session = next((prm.name for prm in fn.summary.params if is_session(p.param_value(fid, prm))), None)
                if session is not None:
                    serialize[fid] = session
        selectin: dict[str, dict[str, set[str]]] = {}
        for attr in names:
            for path, cls in index[attr]:
                selectin.setdefault(path, {}).setdefault(cls, set()).add(attr)
        return selectin, serialize

    # ------------------------------------------------------------- 5. file plans
    def build(self) -> MigrationPlan:
        # A function that is sync and off the loop today, does other blocking I/O and would become
        # ``async def`` would move that I/O onto the loop (SQLALCHEMY_ASYNC.md §8): its whole session
        # component stays sync, reported.  Repeat until the plan is stable.
        excluded = self._unconvertible_constructions()
        for _ in range(32):
            saved_left = list(self.plan.left)
            converted = self.conversion(frozenset(excluded))
            make_async, await_calls, run_calls, async_with = self.propagate(converted)
            offenders = [fid for fid in make_async if self._threadpool_route(fid) and self.blocking_io(fid)]
            stay_sync = []
            for fid in offenders:
                group = self.component(fid, converted) | {fid}
                line, name = self.blocking_io(fid)[0]
                fn = self.project.functions[fid].summary
                if any(self.graph.on_loop(g) for g in group):
                    # converting unblocks code that is on the loop today: do it, and say where I/O moves
                    self.left(fid, line, f"{name}() in `{fn.qualname}` now runs on the event loop: wrap it in "
                              "run_in_threadpool (or an async file API)")
                    continue
                stay_sync.append((fid, group, line, name, fn))
            # A function that cannot be a coroutine (``__init__``, a property, a lambda...) and would have to
            # await on its converted session: it must not receive one, so its whole component stays sync.
            cannot_await = self._cannot_await(converted, make_async)
            unsound = self._unsound(converted, make_async, excluded)
            if not stay_sync and not cannot_await and not unsound:
                break
            self.plan.left = saved_left
            for fid, group, line, name, fn in stay_sync:
                excluded |= group
                others = f", with {len(group) - 1} function(s) sharing its session," if len(group) > 1 else ""
                self.left(fid, fn.span.line, f"`{fn.qualname}` calls {name}() (line {line}) and runs in a threadpool "
                          f"today; as async def that I/O would block the loop: left on the sync session{others} "
                          "(move the I/O to run_in_threadpool first)")
            for fid, line, why in cannot_await:
                if fid in excluded:
                    continue
                group = self.component(fid, converted) | {fid}
                excluded |= group
                others = f", with {len(group) - 1} function(s) sharing its session," if len(group) > 1 else ""
                self.left(fid, line, f"{why}: left on the sync session{others} (make it a coroutine, or move the "
                          "session work out of it, by hand)")
            # one entry per root cause: the components several causes of one override (one violation) left sync
            # are listed together
            by_why: dict[tuple[str, int, str], set[str]] = {}
            for cause, group in unsound:
                excluded |= group
                by_why.setdefault(self.exclude[cause], set()).update(group)
            for (path, line, why), group in by_why.items():
                names = sorted(self.project.functions[g].summary.qualname for g in group)
                shown = ", ".join(f"`{n}`" for n in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
                item = LeftForHuman(path, line, f"{why}: left on the sync session: {shown} (they share its "
                                                f"session or make it async)")
                if item not in self.plan.left:
                    self.plan.left.append(item)
        self.plan.converted = converted
        self.plan.make_async = make_async
        db = self.database()
        self.plan.database = db
        p = self.project
        files: dict[str, dict] = {}

        def entry(fid: str) -> dict:
            fs = p.functions[fid].file
            return files.setdefault(fs.path, _new_entry(fs.module))

        for fid in converted:
            e = entry(fid)
            qual = p.functions[fid].summary.qualname
            e["sessions"][qual] = frozenset(self.receivers(fid))
            for call in p.functions[fid].summary.calls:
                target = self.project.value(call.func, fid)
                if target == ("factory",):
                    text = expr_text(call.func)
                    if text:
                        e["factories"].add(text)
            e["engines"].update(engine for _call, engine in self.session_constructions(fid) if engine)
            for prm in p.functions[fid].summary.params:
                if prm.depends is not None and is_session(p.param_value(fid, prm)):
                    text = expr_text(prm.depends[2])
                    if text:
                        e["deps"].add(text)
                elif prm.annotation is not None and is_session(p.param_value(fid, prm)):
                    alias = self._alias_definition(prm.annotation, fid)
                    if alias is not None:  # ``SessionDep = Annotated[Session, Depends(get_db)]``: twin it there
                        path, module, dep_text = alias
                        files.setdefault(path, _new_entry(module))["deps"].add(dep_text)
        self._provider_engines(files)
        for fid in make_async:
            entry(fid)["make_async"].add(p.functions[fid].summary.qualname)
        for fid, texts in await_calls.items():
            entry(fid)["await_calls"][p.functions[fid].summary.qualname] = frozenset(texts)
        for fid, texts in run_calls.items():
            entry(fid)["run_calls"][p.functions[fid].summary.qualname] = frozenset(texts)
        for fid, texts in async_with.items():
            entry(fid)["async_with"][p.functions[fid].summary.qualname] = frozenset(texts)
        for fid in make_async:
            if self.is_context_manager(fid):
                entry(fid)["acm"].add(p.functions[fid].summary.qualname)
        selectin, serialize = self.eager_loading(converted)
        for fid, session in serialize.items():
            entry(fid)["serialize"][p.functions[fid].summary.qualname] = session
        for path, classes in selectin.items():
            fs = next(f for f in p.files if f.path == path)
            e = files.setdefault(path, _new_entry(fs.module))
            e["relationships"] = {cls: frozenset(names) for cls, names in classes.items()}
        for fid in converted:
            casts = self._driver_casts(fid)
            if casts:
                entry(fid).setdefault("casts", {}).update(casts)
        if db is not None:
            files.setdefault(db.path, _new_entry(db.dotted))
        derived = self._derived_engines()
        for path, (module, names) in derived.items():
            files.setdefault(path, _new_entry(module))
        self.plan.legacy = legacy_uses(p)
        for use in self.plan.legacy:  # project-wide: the pin the migration raises is
            if use.kind == TEXTUAL_SQL:
                e = files.setdefault(use.path, _new_entry(p.functions[use.fid].file.module))
                e.setdefault("sql", {}).setdefault(use.scope, set()).add(use.receiver)
            elif use.kind == LIST_ARGUMENT and use.callee:
                e = files.setdefault(use.path, _new_entry(p.functions[use.fid].file.module))
                e.setdefault("list_args", {}).setdefault(use.scope, set()).add(use.callee)
        sqlmodel = any(qn.startswith("sqlmodel") for fs in p.files for _, qn in fs.imports)
        old_pydantic = pydantic_v1(p)
        self.plan.app_twins = self._app_twins(db, files.values())
        for path, e in files.items():
            test = is_test_file(path)
            self.plan.files[path] = FilePlan(
                module=e["module"],
                sessions=e["sessions"],
                make_async=frozenset(e["make_async"]),
                await_calls=e["await_calls"],
                run_calls=e["run_calls"],
                database_module=self._database_import(path, db, sorted(e["factories"] | e["deps"])),
                sync_factories=frozenset(e["factories"]),
                sync_dependencies=frozenset(e["deps"]),
                sync_engines=frozenset(e["engines"]),
                sqlmodel=sqlmodel,
                relationships=e.get("relationships", {}),
                serialize=e["serialize"],
                async_with_calls=e["async_with"],
                acm=frozenset(e["acm"]),
                test_module=test,
                app_twins=self.plan.app_twins if test else {},
                derived_engines=frozenset(derived[path][1]) if path in derived else frozenset(),
                driver_casts=e.get("casts", {}),
                pydantic_v1=old_pydantic,
                sql_receivers={scope: frozenset(texts) for scope, texts in e.get("sql", {}).items()},
                list_arg_callees={scope: frozenset(texts) for scope, texts in e.get("list_args", {}).items()},
            )
        return self.plan

    def _driver_casts(self, fid: str) -> dict[tuple[int, int], str]:
        """Comparisons in converted ``fid`` that asyncpg would reject and a database-side cast keeps working
        (``rules/driver_types.py``, ``codemods/driver_casts.py``); ``fix`` drops them when the project does not
        move to asyncpg."""
        from .rules.base import FunctionContext
        from .rules.driver_types import TypedParameterMismatch

        ctx = FunctionContext(self.project, self.graph, fid, self.project.functions[fid], frozenset())
        return {(span.line, span.column): side for span, side in TypedParameterMismatch().castable(ctx)}

    def _unsound(self, converted: set[str], make_async: set[str], excluded: set[str]) -> list[tuple[str, set[str]]]:
        """``(cause, group)`` for each cause the soundness check named (``self.exclude``) that is still part of
        the migration: the converted functions it reaches through calls into what becomes async (what makes it
        async), each with its session component.  Leaving the group sync leaves the cause sync."""
        out = []
        taken = set(excluded)
        for cause in sorted(self.exclude):
            if cause not in self.project.functions or cause in taken:
                continue
            roots: set[str] = set()
            seen = {cause}
            todo = [cause]
            while todo:
                f = todo.pop()
                if f in converted:
                    roots.add(f)
                for callee, call in self.graph.edges.get(f, ()):
                    if callee not in seen and (callee in converted or callee in make_async):
                        seen.add(callee)
                        todo.append(callee)
            group: set[str] = set()
            for r in roots:
                group |= self.component(r, converted) | {r}
            group -= taken
            if group:
                taken |= group
                out.append((cause, group))
        return out

    def _unconvertible_constructions(self) -> set[str]:
        """Functions that build ``Session(e)`` on an engine with no async twin, with those sharing their sessions.

        Such a session cannot become an ``AsyncSession`` here (``e`` is a parameter, a local, one of several
        engines): the functions stay on the sync session, reported, rather than awaiting a sync session.
        """
        converted = self.conversion()
        excluded: set[str] = set()
        for fid in sorted(converted):
            if fid in excluded:
                continue
            bad = [call for call, engine in self.session_constructions(fid) if engine is None]
            missing = None if bad else self._missing_twin(fid)
            if not bad and missing is None:
                continue
            group = self.component(fid, converted) | {fid}
            excluded |= group
            fn = self.project.functions[fid].summary
            others = f", with {len(group) - 1} function(s) sharing its session," if len(group) > 1 else ""
            if missing is not None:
                line, why = missing
                hint = ("write an async dependency that yields an AsyncSession by hand, then run fix again"
                        if "returns a session it does not open" in why else
                        "add the async engine and session factory by hand, then run fix again")
                self.left(fid, line, f"`{fn.qualname}` {why}: left on the sync session{others} ({hint})")
                continue
            self.left(fid, bad[0].span.line, f"`{fn.qualname}` builds `{bad[0].snippet}` on an engine that gets no "
                      f"async twin (a parameter, a local or one of several engines): left on the sync session{others} "
                      f"(build an AsyncSession on the async engine by hand)")
        # a dependency left sync hands out ``request.state.db``: whatever else opens or uses that slot (the
        # middleware that fills it) must keep the same sync session
        for (_param, attr), (_dep, dep_name) in sorted(self._slots.items()):
            for fid in sorted(converted - excluded):
                texts = [t for t in self.receivers(fid) if t.endswith(f".state.{attr}")]
                if not texts or fid in excluded:
                    continue
                group = self.component(fid, converted) | {fid}
                excluded |= group
                fn = self.project.functions[fid].summary
                others = f", with {len(group) - 1} function(s) sharing its session," if len(group) > 1 else ""
                self.left(fid, fn.span.line, f"`{fn.qualname}` uses `{texts[0]}`, the session `{dep_name}` hands out, "
                          f"which stays sync: left on the sync session{others} (convert them together by hand)")
        return excluded

    # ------------------------------------------------------------- twins the database rewrite cannot make
    def _missing_twin(self, fid: str) -> Optional[tuple[int, str]]:
        """``(line, why)`` when ``fid``'s session comes from a factory (called here, or in the ``get_db`` it
        depends on) that the ``database`` rewrite gives no async twin: converting it would name
        ``AsyncSessionLocal``/``get_async_db`` where nothing defines them, and the verification would reject
        the whole migration."""
        p = self.project
        fn = p.functions[fid].summary

        def path_of(target: str) -> str:
            return p.functions[target].file.path

        for call in fn.calls:
            if p.value(call.func, fid) == ("factory",):
                why = self._factory_without_twin(call.func, fid)
                if why is not None:
                    return call.span.line, f"calls `{expr_text(call.func)}()`, which {why}"
        for prm in fn.params:
            if not is_session(p.param_value(fid, prm)):
                continue
            target = self._dependency_target(prm, fid)
            if not (target and target[0] == "func" and target[1] in p.functions):
                continue
            provider = p.functions[target[1]].summary
            line = prm.span.line if prm.span else fn.span.line
            if not provider.is_generator and not is_test_file(path_of(target[1])):
                # only a generator that opens its session gets a twin (``get_async_db``); one that returns a
                # session opened elsewhere (``return request.state.db``) has no async counterpart to depend on
                slot = self._state_slot(target[1])
                if slot is not None:
                    self._slots.setdefault(slot, (target[1], provider.qualname))
                source = f" (`{slot[0]}.state.{slot[1]}`, set elsewhere)" if slot else ""
                return line, (f"depends on `{provider.qualname}`, which returns a session it does not open{source} "
                              "instead of yielding one, so it gets no async twin")
            if not is_test_file(path_of(target[1])) and not self._traceable(target[1]):
                return line, (f"depends on `{provider.qualname}`, whose session comes from a factory or engine the "
                              "analysis cannot trace (unpacked from a helper's result?), so it gets no async twin")
            if not self.is_provider(target[1]):
                continue
            bad = [call for call, engine in self.session_constructions(target[1]) if engine is None]
            if bad:
                return line, (f"depends on `{provider.qualname}`, which builds `{bad[0].snippet}` on an engine that "
                              "gets no async twin")
            for call in provider.calls:
                if p.value(call.func, target[1]) == ("factory",):
                    why = self._factory_without_twin(call.func, target[1])
                    if why is not None:
                        return line, f"depends on `{provider.qualname}`, whose `{expr_text(call.func)}` {why}"
        return None

    def _dependency_target(self, prm, fid: str) -> Optional[tuple]:
        """What a session parameter depends on: ``Depends(x)`` in its default or its ``Annotated[...]``
        annotation, or in the module-level ``Annotated`` alias that annotates it (``db: DbSession``)."""
        p = self.project
        if prm.depends is not None:
            return p.value(prm.depends[2], fid)
        alias = self._alias_value(prm.annotation, fid)
        if alias is None:
            return None
        mod, value = alias
        return p.value(value[2][2], f"{mod}:{MODULE_SCOPE}")

    def _state_slot(self, dep: str) -> Optional[tuple[str, str]]:
        """``(parameter, attribute)`` when the dependency ``dep`` returns ``<parameter>.state.<attribute>``
        (``return request.state.db``, directly or through a local): a per-request slot that other code (a
        middleware) fills with the session."""
        fn = self.project.functions[dep].summary
        params = {prm.name for prm in fn.params}
        locals_ = dict(fn.assigns)
        for r in fn.returns:
            if r and r[0] == "n" and r[1] in locals_:
                r = locals_[r[1]]
            if r and r[0] == "a" and r[1] and r[1][0] == "a" and r[1][2] == "state" and r[1][1] \
                    and r[1][1][0] == "n" and r[1][1][1] in params:
                return r[1][1][1], r[2]
        return None

    def _traceable(self, gen: str) -> bool:
        """Whether the session generator ``gen`` yields gets it from something the analysis knows: a parameter
        (a session handed in), a session factory call or a ``Session(engine)`` construction."""
        p = self.project
        fn = p.functions[gen].summary
        if any(is_session(p.param_value(gen, prm)) for prm in fn.params):
            return True
        if any(p.value(call.func, gen) in (("factory",), ("afactory",)) for call in fn.calls):
            return True
        return bool(self.session_constructions(gen)) or not is_session(p.provides(gen)) and p.provides(gen) is not None

    def _factory_without_twin(self, func: Expr, fid: str) -> Optional[str]:
        """Why the module-level session factory ``func`` names gets no async twin (None: it gets one, or it is
        not a shape this check knows, which the rewrite then decides as before)."""
        p = self.project
        mod = p.module_of(fid)
        if not func or func[0] != "n":
            return None
        name = func[1]
        if p.functions[fid].summary.qualname != MODULE_SCOPE and name in dict(p.functions[fid].summary.assigns):
            return None
        if name not in p._module_vars.get(mod, {}):
            qn = p._imports.get(mod, {}).get(name)
            if qn is None or "." not in qn:
                return None
            mod = p.find_module(qn.rsplit(".", 1)[0])
            name = qn.rsplit(".", 1)[1]
        if mod is None or mod not in p.modules or name not in p._module_vars.get(mod, {}):
            return None
        module_fid = f"{mod}:{MODULE_SCOPE}"
        path = p.modules[mod].path
        for expr in p._module_vars[mod][name]:
            target = p.value(expr[1], module_fid) if expr and expr[0] == "c" else None
            if not (target and target[0] == "ext"
                    and target[1] in facts.SYNC_SESSIONMAKERS | facts.SYNC_SCOPED_SESSIONS):
                return (f"is not built by sessionmaker(...) in a module-level assignment of {path} "
                        "(unpacked from a helper's result, or built by a helper), so it gets no async twin")
        engines = [n for n, e in p.modules[mod].module_scope.assigns
                   if e and e[0] == "c" and p.value(("n", n), module_fid) == ("engine",)]
        if not engines:
            return (f"binds no engine built by an assignment in {path} (an imported engine, or one unpacked from a "
                    "helper's result), so it gets no async twin")
        return None

    def _derived_engines(self) -> dict[str, tuple[str, set[str]]]:
        """path -> (module, module-level names bound to a sync engine by a call to a project helper): the
        ``database`` rewrite derives their async twin from the engine's URL (``FilePlan.derived_engines``)."""
        p = self.project
        out: dict[str, tuple[str, set[str]]] = {}
        for mod, fs in p.modules.items():
            if is_test_file(fs.path):
                continue
            module_fid = f"{mod}:{MODULE_SCOPE}"
            for name, expr in fs.module_scope.assigns:
                if not expr or expr[0] != "c":
                    continue
                target = p.value(expr[1], module_fid)
                if target and target[0] == "func" and p.value(("n", name), module_fid) == ("engine",):
                    out.setdefault(fs.path, (fs.module, set()))[1].add(name)
        return out

    def _provider_engines(self, files: dict[str, dict]) -> None:
        """What the dependencies that get an async twin (``get_db``) open their session with: the engine of
        ``Session(engine)``, or the factory of ``SessionLocal()`` (the ``database`` rewrite builds the twin from
        it, in whichever module the dependency is)."""
        p = self.project
        names = {text.rsplit(".", 1)[-1] for e in files.values() for text in e["deps"]}
        for fid, fn in p.functions.items():
            if fn.summary.qualname in names and self.is_provider(fid) and not is_test_file(fn.file.path):
                engines = {engine for _call, engine in self.session_constructions(fid) if engine}
                factories = {expr_text(call.func) for call in fn.summary.calls
                             if p.value(call.func, fid) == ("factory",) and expr_text(call.func)}
                if engines or factories:
                    e = files.setdefault(fn.file.path, _new_entry(fn.file.module))
                    e["engines"].update(engines)
                    e["factories"].update(factories)

    @staticmethod
    def _app_twins(db: Optional[DatabaseModule], files: Iterable[dict]) -> dict[str, str]:
        """The app's sync engine, session factories and session dependencies -> the names of their twins.

        Test code overrides and patches these names (``dependency_overrides[get_db]``,
        ``monkeypatch.setattr(tasks, "SessionLocal", ...)``); the ``tests`` rewrite adds the same for the twins.
        """
        names = FilePlan()
        twins: dict[str, str] = {}
        for e in files:
            twins.update({text.rsplit(".", 1)[-1]: names.async_session_factory for text in e["factories"]})
            twins.update({text.rsplit(".", 1)[-1]: names.async_dependency for text in e["deps"]})
        if db is not None:
            for sync, twin in ((db.engine, names.async_engine), (db.factory, names.async_session_factory),
                               (db.dependency, names.async_dependency)):
                if sync:
                    twins[sync] = twin
        return twins

    def _alias_definition(self, annotation: Expr, fid: str) -> Optional[tuple[str, str, str]]:
        """``(path, module, dependency text)`` of the module-level ``Annotated`` alias an annotation names."""
        alias = self._alias_value(annotation, fid)
        text = expr_text(alias[1][2][2]) if alias is not None else None
        if not text:
            return None
        fs = self.project.modules[alias[0]]
        return fs.path, fs.module, text

    def _alias_value(self, annotation: Expr, fid: str) -> Optional[tuple[str, Expr]]:
        """``(module key, ("annotated", type, ("dep", ...)))`` of the module-level ``Annotated`` alias an
        annotation names."""
        if not annotation or annotation[0] != "n":
            return None
        p = self.project
        mod = p.module_of(fid)
        name = annotation[1]
        if name not in p._module_vars.get(mod, {}):
            qn = p._imports.get(mod, {}).get(name)
            if qn is None or "." not in qn:
                return None
            target_mod = p.find_module(qn.rsplit(".", 1)[0])
            if target_mod is None:
                return None
            mod, name = target_mod, qn.rsplit(".", 1)[1]
        for value in p._module_vars.get(mod, {}).get(name, ()):
            if value and value[0] == "annotated" and value[2] and value[2][0] == "dep" and mod in p.modules:
                return mod, value
        return None

    def _database_import(self, path: str, db: Optional[DatabaseModule], names: Iterable[str] = ()) -> Optional[str]:
        """Where this file gets its sync factory / dependency from: the async twins are imported from there.

        A name defined in the file itself gives the file's own module (no import is added); an imported one
        gives the module it is imported from, as this file spells it.
        """
        fs = next((f for f in self.project.files if f.path == path), None)
        if fs is not None:
            imports = dict(fs.imports)
            for text in names:
                root = text.split(".", 1)[0]
                if root in imports:
                    qn = imports[root]
                    return qn if "." in text else qn.rsplit(".", 1)[0]
                if any(fn.qualname == root for fn in fs.functions) or root in dict(fs.module_scope.assigns):
                    return fs.module
            if db is not None:
                for _alias, qn in fs.imports:
                    mod = qn.rsplit(".", 1)[0]
                    if self.project.find_module(mod) == db.module:
                        return mod
        return db.dotted if db is not None else None


#: names only pydantic 1 has (pydantic 2 raises ``PydanticImportError`` on ``from pydantic import BaseSettings``)
_PYDANTIC_V1_ONLY = frozenset({"pydantic.BaseSettings", "pydantic.error_wrappers", "pydantic.env_settings"})
#: names only pydantic 2 has; ``pydantic.v1`` is pydantic 1's API shipped inside pydantic 2
_PYDANTIC_V2_ONLY = frozenset({"pydantic.ConfigDict", "pydantic.TypeAdapter", "pydantic.field_validator",
                               "pydantic.model_validator", "pydantic.computed_field", "pydantic.field_serializer",
                               "pydantic.v1"})


def pydantic_v1(project: Project) -> bool:
    """Whether the project is written for pydantic 1: it imports what only pydantic 1 has, or configures a model
    with ``class Config: orm_mode = True``, and nothing shows pydantic 2 (its own names, ``pydantic_settings``,
    ``model_config``).  Without evidence either way: pydantic 2, the version FastAPI installs."""
    v1 = v2 = False
    for fs in project.files:
        for _name, qualified in fs.imports:
            if qualified.startswith("pydantic_settings") or any(
                    qualified == n or qualified.startswith(n + ".") for n in _PYDANTIC_V2_ONLY):
                v2 = True
            elif any(qualified == n or qualified.startswith(n + ".") for n in _PYDANTIC_V1_ONLY):
                v1 = True
    for cid, (_fs, cls) in project.classes.items():
        names = {name for name, _value in cls.assigns} | {name for name, _ann in cls.annotations}
        if "model_config" in names:
            v2 = True
        elif cid.endswith(".Config") and "orm_mode" in names:
            v1 = True
    return v1 and not v2


def plan_migration(analysis: Analysis, paths: Optional[Iterable[str]], config: Config,
                   exclude: Optional[dict[str, tuple[str, int, str]]] = None) -> MigrationPlan:
    """The plan; ``exclude``: cause fid -> (path, line, root cause) that the soundness check found (``fix``)."""
    return Planner(analysis, set(paths) if paths is not None else None, config, exclude).build()
