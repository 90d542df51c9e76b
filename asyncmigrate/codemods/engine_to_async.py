"""Phase 1 ("database"): add an async engine, session factory and dependency beside the sync ones.

In a module that builds a sync engine (``engine = create_engine(URL, ...)``) and a sync session factory
(``SessionLocal = sessionmaker(bind=engine, ...)``, ``scoped_session(sessionmaker(...))``), this rewrite adds
``async_engine = create_async_engine(<async URL>, ...)`` under the engine, ``AsyncSessionLocal =
async_sessionmaker(async_engine, expire_on_commit=False, ...)`` under the factory, and ``get_async_db`` under
the sync ``get_db`` generator.  The sync objects stay, so routes can move over one at a time (the seed's
Phase 4 removes them).  A literal URL is mapped with the facts table when the rewrite runs; any other URL
expression goes through a small generated ``_async_database_url`` helper that applies the same table at run
time.  Engine keyword arguments are kept, except those an asyncio engine rejects (SQLALCHEMY_ASYNC.md §3).
``event.listen(engine, ...)`` is repeated on ``async_engine.sync_engine``.  A URL with no async driver, a
``creator=``, or a factory bound to an engine from elsewhere is left alone and reported.

Test code keeps its sync engine and factory too; their twins are named after them (``TestingSessionLocal``
-> ``AsyncTestingSessionLocal``, :mod:`._database.names`) so they never shadow the app's, the async engine
gets ``poolclass=NullPool`` and a private in-memory SQLite database becomes one shared by both engines
(:mod:`._database.engine_call`).  The twins of test overrides are the ``tests`` rewrite's (``test_overrides``).

Fixes ASM140 (create_engine), ASM141 (sessionmaker) and ASM142 (sync driver URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import PositionProvider, QualifiedNameProvider

from asyncmigrate import facts
from asyncmigrate.codemods._database.dependency import (
    SessionSource, async_twin, canonical_body, session_source, translated_body,
)
from asyncmigrate.codemods._database.engine_call import DRIVERS_KEY, AsyncEngineCall, repeat_listeners
from asyncmigrate.codemods._database.engine_session import async_engine_ref, async_session_call, engine_of
from asyncmigrate.codemods._database.factory import SQLALCHEMY_ASYNCIO, AsyncFactoryCall, session_class
from asyncmigrate.codemods._database.names import twin_name
from asyncmigrate.codemods._database.syntax import (
    Edits, assigned, assignment, bind_of, bound_names, first_arg_is, import_source, is_generator, module_level,
)
from asyncmigrate.codemods._database.urls import URL_HELPER, rename_helper, url_helper_def
from asyncmigrate.codemods.base import FilePlan, ScopedTransformer

__all__ = ["DESCRIPTION", "DRIVERS_KEY", "EngineToAsync", "run_on_source"]

DESCRIPTION = (
    "Add create_async_engine, async_sessionmaker(expire_on_commit=False) and an async get_db beside the "
    "sync engine, session factory and dependency, mapping the URL to its async driver."
)

#: TestClient runs each request on an event loop of its own: a test engine must not pool async connections
_TEST_POOL = "NullPool"


@dataclass
class _Engine:
    stmt: cst.SimpleStatementLine
    top: cst.BaseStatement
    name: str
    call: cst.Call
    #: built by a project helper (``engine = make_engine(url)``): the twin derives from the sync engine's URL
    derived: bool = False


@dataclass
class _Factory:
    stmt: cst.SimpleStatementLine
    name: str
    call: cst.Call  # the sessionmaker(...) call (inside scoped_session(...) when scoped)
    scoped: Optional[cst.Call] = None  # the scoped_session(...) call
    engine: Optional[str] = None  # the bind, as written


class EngineToAsync(ScopedTransformer, VisitorBasedCodemodCommand):
    """Add the async engine, session factory and dependency beside the sync ones (Phase 1)."""

    DESCRIPTION = DESCRIPTION
    fixes = ("ASM140", "ASM141", "ASM142")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._edits = Edits()

    # ---- traversal: all decisions are made on the whole module first, then applied by node identity ----

    def visit_Module(self, node: cst.Module) -> Optional[bool]:
        self._module = node
        self._bound = bound_names(node)
        self._plan_edits(node)
        return True

    def on_leave(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return self._edits.apply(original_node, super().on_leave(original_node, updated_node))

    # ---- helpers ----

    def _qnames(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def _calls(self, node: cst.BaseExpression, names: frozenset[str]) -> bool:
        return isinstance(node, cst.Call) and bool(self._qnames(node.func) & names)

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _say(self, node: cst.CSTNode, message: str) -> None:
        self.warn(f"line {self._line(node)}: {message}")

    def _free(self, name: str) -> bool:
        return name not in self._bound

    def _import(self, module: str, obj: Optional[str] = None, relative: int = 0) -> None:
        """Schedule an import, unless ``obj`` is already bound by an import (any module)."""
        if obj is not None and any(isinstance(n, (cst.ImportFrom, cst.Import)) for n in self._bound.get(obj, [])):
            return
        self.add_needed_import(module, obj, relative=relative)

    def _engine_twin(self, sync: str) -> str:
        """Name of the async engine beside ``sync``: the plan's, or in test code one derived from ``sync``."""
        return twin_name(sync, self.plan.app_twins) if self.plan.test_module else self.plan.async_engine

    def _factory_twin(self, sync: str) -> str:
        return twin_name(sync, self.plan.app_twins) if self.plan.test_module else self.plan.async_session_factory

    # ---- the plan ----

    def _plan_edits(self, module: cst.Module) -> None:
        plan = self.plan
        engines: list[_Engine] = []
        factories: list[_Factory] = []
        async_engines: list[str] = []
        async_factories: list[str] = []
        handled: set[int] = set()
        for stmt, top in module_level(module):
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                pair = assignment(small)
                if pair is None or not isinstance(pair[1], cst.Call):
                    continue
                name, call = pair[0], pair[1]
                q = self._qnames(call.func)
                if q & facts.SYNC_ENGINE_FACTORIES:
                    engines.append(_Engine(stmt, top, name, call))
                    handled.add(id(call))
                elif name in plan.derived_engines and not plan.test_module:
                    engines.append(_Engine(stmt, top, name, call, derived=True))
                elif q & facts.ASYNC_ENGINE_FACTORIES:
                    async_engines.append(name)
                elif q & facts.ASYNC_SESSIONMAKERS or (
                    q & facts.SYNC_SESSIONMAKERS and self._makes_async_sessions(call)  # 1.4: class_=AsyncSession
                ):
                    async_factories.append(name)
                elif q & facts.SYNC_SCOPED_SESSIONS:
                    inner = call.args[0].value if call.args else None
                    plain_makers = facts.SYNC_SESSIONMAKERS - facts.SYNC_SCOPED_SESSIONS
                    if isinstance(inner, cst.Call) and self._calls(inner, plain_makers):
                        factories.append(_Factory(stmt, name, inner, scoped=call, engine=bind_of(inner)))
                    else:
                        self._say(call, f"scoped_session(...) in {name} wraps a factory defined elsewhere; left alone "
                                        f"(wrap {self._factory_twin(name)} in async_scoped_session(..., "
                                        "scopefunc=asyncio.current_task) by hand)")
                elif q & facts.SYNC_SESSIONMAKERS:
                    factories.append(_Factory(stmt, name, call, engine=bind_of(call)))
        self._report_other_engines(module, handled, {e.call.func for e in engines if e.derived})
        if not engines and not factories and not async_engines:
            self._plan_imported_dependency(module)
            return

        # The engine the session factory binds is the one that gets an async twin.
        engine_names = {e.name for e in engines}
        bound = [f.engine for f in factories if f.engine in engine_names]
        if bound:
            primary = bound[0]
        elif len(engine_names) == 1:
            primary = next(iter(engine_names))
        else:
            if engines:
                self._say(engines[0].call, "several engines and no session factory binding one; left alone")
            primary = None
        for other in sorted(engine_names - {primary} if primary else set()):
            site = next(e for e in engines if e.name == other)
            self._say(site.call, f"second engine {other} left alone: the plan names one async engine")

        async_engine: Optional[str] = async_engines[0] if async_engines else None
        sites = [e for e in engines if e.name == primary]
        if async_engine is None and sites:
            name = self._engine_twin(sites[0].name)
            if not self._free(name):
                self._say(sites[0].call, f"{name} is already defined here; async engine not added")
            elif self._plan_engine(sites, name):
                async_engine = name
        if async_engine is None:
            for f in factories:
                self._say(f.call, f"{f.name} binds {f.engine or 'no engine'}, which gets no async engine here; "
                                  "left alone")
            self._plan_imported_dependency(module)
            return

        # Session factory.
        factory: Optional[str] = async_factories[0] if async_factories else None
        chosen = next((f for f in factories if f.engine == primary), None) if primary else None
        for f in factories:
            if f is chosen:
                continue
            if chosen is not None:
                self._say(f.call, f"session factory {f.name} left alone: {self._factory_twin(chosen.name)} mirrors "
                                  f"{chosen.name}")
            else:
                self._say(f.call, f"session factory {f.name} binds {f.engine or 'no engine'}, which gets no async "
                                  "engine here; left alone")
        scoped = chosen is not None and chosen.scoped is not None
        if factory is None and chosen is not None:
            name = self._factory_twin(chosen.name)
            if not self._free(name):
                self._say(chosen.call, f"{name} is already defined here; async factory not added")
                chosen = None
            else:
                self._plan_factory(chosen, async_engine, name)
                factory = name
        elif factory is not None:
            scoped = False  # an existing async factory: use it as it is

        # Session dependency (test code: the ``tests`` rewrite twins the overrides that are used).
        if plan.test_module:
            return
        sync_factories = ({f.name for f in factories} | set(plan.sync_factories)) - set(async_factories)
        mirrored = chosen.name if chosen is not None and not async_factories else None
        self._plan_dependency(module, sync_factories, primary, async_engine, factory, scoped, sites, mirrored)

    def _makes_async_sessions(self, call: cst.Call) -> bool:
        class_ = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "class_"), None)
        return class_ is not None and bool(self._qnames(class_) & facts.ASYNC_SESSION_TYPES)

    # ---- engine ----

    def _plan_engine(self, sites: list[_Engine], async_name: str) -> bool:
        statements: list[tuple[_Engine, cst.SimpleStatementLine]] = []
        needs_helper = False
        test = self.plan.test_module
        builder = AsyncEngineCall(self._module, self._bound, self._qnames, self._say, self.context.scratch,
                                  pool=_TEST_POOL if test else None,
                                  memory_name=(self.plan.module or "test_database") if test else None)
        for site in sites:
            if site.derived:
                statements.append((site, self._derived_engine(site, async_name)))
                needs_helper = True
                continue
            built = builder.build(site.name, site.call)
            if built is None:
                return False
            call, helper = built
            needs_helper = needs_helper or helper
            line = cst.SimpleStatementLine(
                body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(async_name))], value=call)]
            )
            statements.append((site, line))
        if needs_helper:
            name, n = URL_HELPER, 1
            while not self._free(name):
                n += 1
                name = f"{URL_HELPER}_{n}"
            self._edits.before.setdefault(id(sites[0].top), []).append(url_helper_def(name))
            statements = [(s, rename_helper(line, name)) for s, line in statements]
        self._import(SQLALCHEMY_ASYNCIO, "create_async_engine")
        for module, name in builder.staged_imports:
            self._import(module, name)
        self._edits.replace.update(builder.staged_edits.replace)
        for site, line in statements:
            self._edits.add_after(site.stmt, line)
        repeat_listeners(self._module, sites[0].name, async_name, self._qnames, self._edits)
        return True

    def _derived_engine(self, site: _Engine, async_name: str) -> cst.SimpleStatementLine:
        """``async_engine = create_async_engine(_async_database_url(engine.url.render_as_string(
        hide_password=False)))``: the helper that builds the sync engine is left as it is, so the async engine
        takes the sync engine's URL (password included) through the run-time driver mapping."""
        helper = cst.Module(body=[]).code_for_node(site.call.func)
        self._say(site.call, f"{site.name} is built by {helper}(); {async_name} is derived from {site.name}.url at "
                             f"run time: the pool, connect_args and other settings {helper}() passes to "
                             "create_engine are not carried over (set them on create_async_engine by hand)")
        line = cst.parse_statement(
            f"{async_name} = create_async_engine({URL_HELPER}({site.name}.url.render_as_string(hide_password=False)))"
        )
        assert isinstance(line, cst.SimpleStatementLine)
        return line

    def _report_other_engines(self, module: cst.Module, handled: set[int],
                              helpers: set[cst.BaseExpression] = frozenset()) -> None:  # type: ignore[assignment]
        helper_names = {h.value if isinstance(h, cst.Name) else h.attr.value for h in helpers
                        if isinstance(h, (cst.Name, cst.Attribute))}
        in_helper: set[int] = set()
        for fn in m.findall(module, m.FunctionDef()):
            assert isinstance(fn, cst.FunctionDef)
            if fn.name.value in helper_names:
                in_helper.update(id(c) for c in m.findall(fn, m.Call()))
        for call in m.findall(module, m.Call()):
            assert isinstance(call, cst.Call)
            if id(call) in handled or id(call) in in_helper:
                continue
            if self._calls(call, facts.SYNC_ENGINE_FACTORIES):
                self._say(call, "create_engine() outside a module-level assignment is left alone")

    # ---- session factory ----

    def _factory_calls(self) -> AsyncFactoryCall:
        return AsyncFactoryCall(self._qnames, self._say, self._import, self.plan.sqlmodel)

    def _plan_factory(self, f: _Factory, async_engine: str, async_name: str) -> None:
        made = self._factory_calls().build(f.call, async_engine)
        if f.scoped is not None:
            made = self._factory_calls().scoped(f.scoped, made, f.name)
        line = cst.SimpleStatementLine(
            body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(async_name))], value=made)]
        )
        self._edits.add_after(f.stmt, line)
        self._warn_session_events(f.name, async_name)

    def _warn_session_events(self, factory: str, async_name: str) -> None:
        for call in m.findall(self._module, m.Call()):
            assert isinstance(call, cst.Call)
            if self._calls(call, facts.EVENT_LISTEN | facts.EVENT_LISTENS_FOR) and first_arg_is(call, factory):
                self._say(call, f"session events on {factory} are not registered for "
                                f"{async_name}; listen on its sync_session_class")

    # ---- session dependency ----

    def _plan_imported_dependency(self, module: cst.Module) -> None:
        """A ``get_db`` whose factory is imported (``from app.db.session import SessionLocal``), or that builds
        ``Session(engine)`` on an imported engine (``from app.core.db import engine``)."""
        if self.plan.test_module:
            return  # test overrides are the ``tests`` rewrite's
        factories = {f for f in self.plan.sync_factories if import_source(module, f) is not None}
        if factories:
            self._plan_dependency(module, factories, None, None, None, False, [], None)
            return
        engines = {e for e in self.plan.sync_engines if "." in e or import_source(module, e) is not None}
        if engines:
            self._plan_engine_dependency(module, engines)

    def _plan_engine_dependency(self, module: cst.Module, engines: set[str]) -> None:
        """``def get_db(): with Session(engine) as session: yield session`` on an engine defined in another module
        -> ``async def get_async_db(): async with AsyncSession(async_engine, expire_on_commit=False) as session``,
        with ``async_engine`` imported from the engine's module (the ``database`` rewrite adds it there)."""
        plan = self.plan
        candidates: list[tuple[cst.FunctionDef, SessionSource]] = []
        for stmt in module.body:
            if isinstance(stmt, cst.FunctionDef) and not stmt.decorators and is_generator(stmt):
                for engine in sorted(engines):
                    source = session_source(stmt, set(), engine, self._qnames)
                    if source is not None:
                        candidates.append((stmt, source))
                        break
        if not candidates:
            return
        chosen = next((c for c in candidates if c[0].name.value in plan.sync_dependencies), candidates[0])
        fn, source = chosen
        existing = self._bound.get(plan.async_dependency, [])
        if existing:
            if not (len(existing) == 1 and isinstance(existing[0], cst.FunctionDef) and existing[0].asynchronous):
                self._say(fn, f"{plan.async_dependency} is already defined here; not added")
            return
        for other, _ in candidates:
            if other is not fn:
                self._say(other, f"{other.name.value}() also yields a sync session; {plan.async_dependency} follows "
                                 f"{fn.name.value}()")
        engine = engine_of(source.call)
        ref = async_engine_ref(module, engine, plan.async_engine) if engine else None
        target = facts.ASYNC_SESSION_CLASS_FOR.get(source.session_class or "")
        if ref is None or target is None:
            return
        twin, imported = ref
        if imported is not None:
            binders = self._bound.get(plan.async_engine, [])
            source_of_twin = import_source(module, plan.async_engine)
            if binders and (source_of_twin is None or source_of_twin[:2] != imported):
                self._say(fn, f"{plan.async_engine} is already defined here; {plan.async_dependency} not added")
                return
            self.add_needed_import(imported[0], plan.async_engine, relative=imported[1])
        session_module, session_name = target
        self._import(session_module, session_name)
        self._import("collections.abc", "AsyncIterator")
        opener = async_session_call(source.call, twin, session_name, self._say)
        body, unsupported = translated_body(fn, source, "", opener)
        if unsupported is not None:
            self._say(unsupported, f"{fn.name.value}() does more with the session than opening, committing and "
                                   f"closing it; {plan.async_dependency} only opens and closes one")
        new_fn = async_twin(fn, plan.async_dependency, body or canonical_body("", False, source.var, opener),
                            session_name)
        self._edits.add_after(fn, new_fn)

    def _plan_dependency(
        self,
        module: cst.Module,
        sync_factories: set[str],
        engine: Optional[str],
        async_engine: Optional[str],
        factory: Optional[str],
        scoped: bool,
        sites: list[_Engine],
        mirrored: Optional[str],
    ) -> None:
        plan = self.plan
        candidates: list[tuple[cst.FunctionDef, SessionSource]] = []
        for stmt in module.body:
            if isinstance(stmt, cst.FunctionDef) and not stmt.decorators and is_generator(stmt):
                source = session_source(stmt, sync_factories, engine, self._qnames)
                if source is not None:
                    candidates.append((stmt, source))
        if not candidates:
            return
        existing = self._bound.get(plan.async_dependency, [])
        if existing:
            if not (len(existing) == 1 and isinstance(existing[0], cst.FunctionDef) and existing[0].asynchronous):
                self._say(candidates[0][0], f"{plan.async_dependency} is already defined here; not added")
            return
        chosen = next((c for c in candidates if c[0].name.value in plan.sync_dependencies), candidates[0])
        for fn, _ in candidates:
            if fn is not chosen[0]:
                self._say(fn, f"{fn.name.value}() also yields a sync session; {plan.async_dependency} follows "
                              f"{chosen[0].name.value}()")
        fn, source = chosen
        local = source.factory is not None and source.factory in {n for n, b in self._bound.items() if assigned(b)}
        if local and mirrored is not None and source.factory != mirrored:
            self._say(fn, f"{fn.name.value}() uses {source.factory}, but {plan.async_session_factory} mirrors "
                          f"{mirrored}; {plan.async_dependency} not added")
            return
        async_factory = self._dependency_factory(source, factory, async_engine, sites, fn)
        if async_factory is None:
            return
        new_fn = self._async_dependency(fn, source, async_factory, scoped and source.factory is not None)
        self._edits.add_after(fn, new_fn)

    def _dependency_factory(
        self, source: SessionSource, factory: Optional[str], async_engine: Optional[str], sites: list[_Engine],
        fn: cst.FunctionDef,
    ) -> Optional[str]:
        plan = self.plan
        if source.factory is None:  # Session(engine): give it a factory under the async engine
            if factory is not None:
                return factory
            if async_engine is None or not sites:
                return None
            if not self._free(plan.async_session_factory):
                self._say(fn, f"{plan.async_session_factory} is already defined here; {plan.async_dependency} "
                              "not added")
                return None
            made = self._factory_calls().build(source.call, async_engine, source.session_class)
            line = cst.SimpleStatementLine(
                body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(plan.async_session_factory))], value=made)]
            )
            self._edits.add_after(sites[-1].top, line)
            return plan.async_session_factory
        imported = import_source(self._module, source.factory)
        if imported is not None and source.factory not in {n for n, b in self._bound.items() if assigned(b)}:
            mod, level, _ = imported
            if self._free(plan.async_session_factory) or import_source(self._module, plan.async_session_factory):
                self.add_needed_import(mod, plan.async_session_factory, relative=level)
                return plan.async_session_factory
            self._say(fn, f"{plan.async_session_factory} is already defined here; {plan.async_dependency} not added")
            return None
        if factory is None:
            self._say(fn, f"{fn.name.value}() uses {source.factory}, which gets no async factory here; "
                          f"{plan.async_dependency} not added")
        return factory

    def _async_dependency(
        self, fn: cst.FunctionDef, source: SessionSource, factory: str, scoped: bool
    ) -> cst.FunctionDef:
        plan = self.plan
        session_module, session_name = session_class(plan.sqlmodel)
        self._import(session_module, session_name)
        self._import("collections.abc", "AsyncIterator")
        body, unsupported = translated_body(fn, source, factory)
        if unsupported is not None:
            self._say(unsupported, f"{fn.name.value}() does more with the session than opening, committing and "
                                   f"closing it; {plan.async_dependency} only opens and closes one")
        return async_twin(fn, plan.async_dependency, body or canonical_body(factory, scoped), session_name)


def run_on_source(code: str, plan: FilePlan) -> tuple[str, list[str]]:
    """Rewrite one module's source; returns ``(new code, warnings)``."""
    package = plan.module.rpartition(".")[0] if plan.module else None
    context = CodemodContext(scratch={"plan": plan}, full_module_name=plan.module or None, full_package_name=package)
    new = EngineToAsync(context).transform_module(cst.parse_module(code))
    return new.code, list(context.warnings)
