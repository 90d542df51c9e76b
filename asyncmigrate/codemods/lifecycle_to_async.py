"""Phase 1 ("database"): startup, shutdown and pool-status code that runs on the loop uses the async engine.

Startup and shutdown code runs on the event loop: an ``async def`` lifespan, an ``@app.on_event(...)``
handler (Starlette calls even a sync handler on the loop) or a function the plan makes async.  There,
``Base.metadata.create_all(bind=engine)`` (and ``drop_all``) becomes ``async with async_engine.begin() as conn:
await conn.run_sync(Base.metadata.create_all)`` (SQLALCHEMY_ASYNC.md §3, §8 item 3).  Consecutive calls share
one block.  ``engine.dispose()`` becomes ``await async_engine.dispose()`` followed by the sync
``engine.dispose()``, kept while the sync engine exists.  Pool status code (``engine.pool.size()``, the
seed's ``/health/pool``) reads ``async_engine.pool``.  A sync handler that now awaits becomes
``async def``.  The async engine is imported from ``plan.database_module``, in the form the file already
uses for that module (relative or absolute).  ``create_all`` at module level runs at import time, with no
loop, so it stays on the sync engine and is reported, as are other sync-engine calls found on the loop.

Fixes ASM143 (metadata.create_all on the loop) and ASM144 (engine.dispose / pool on the loop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import PositionProvider, QualifiedNameProvider

from asyncmigrate import facts
from asyncmigrate.codemods.base import FilePlan, ScopedTransformer, dotted
from asyncmigrate.codemods._database.syntax import (
    assignment,
    bind_arg,
    bound_names,
    expr,
    free_name,
    module_level,
    relayout,
)

DESCRIPTION = (
    "Run metadata.create_all/drop_all through async_engine.begin() + run_sync, await async_engine.dispose() "
    "and read async_engine.pool in startup, shutdown and other code on the loop."
)

@dataclass
class _Frame:
    node: cst.FunctionDef
    on_loop: bool
    names: frozenset[str]
    disposes_async: bool
    needs_async: bool = False


@dataclass
class _Engines:
    """Sync engine references in this file and their async counterparts."""

    refs: set[str] = field(default_factory=set)
    #: sync ref -> (async ref, import to schedule: (module, relative level) or None)
    resolved: dict[str, tuple[str, Optional[tuple[str, int]]]] = field(default_factory=dict)


class LifecycleToAsync(ScopedTransformer, VisitorBasedCodemodCommand):
    """Move create_all/drop_all, dispose and pool status on the loop to the async engine."""

    DESCRIPTION = DESCRIPTION
    fixes = ("ASM143", "ASM144")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._frames: list[_Frame] = []
        self._statement_calls: set[int] = set()
        self._ddl_blocks: dict[int, tuple[str, str]] = {}  # id(With) -> (async ref, conn name)
        self._engines = _Engines()

    # ---- module facts ----

    def visit_Module(self, node: cst.Module) -> Optional[bool]:
        self._module = node
        self._bound = bound_names(node)
        self._hooks = self._registered_hooks(node)
        self._engines = self._find_engines(node)
        self._ddl_helpers = {
            stmt.name.value
            for stmt in node.body
            if isinstance(stmt, cst.FunctionDef)
            and not stmt.asynchronous
            and not self._is_hook(stmt)
            and any(self._ddl(c) is not None for c in m.findall(stmt, m.Call()) if isinstance(c, cst.Call))
        }
        return True

    def _registered_hooks(self, module: cst.Module) -> set[str]:
        """Functions registered by name: ``app.add_event_handler("startup", f)``, ``FastAPI(on_startup=[f])``."""
        names: set[str] = set()
        for stmt, _ in module_level(module):
            for call in m.findall(stmt, m.Call()) if isinstance(stmt, cst.SimpleStatementLine) else ():
                assert isinstance(call, cst.Call)
                registrar = m.Attribute(attr=m.Name(facts.LIFESPAN_EVENT_REGISTRAR))
                if m.matches(call.func, registrar) and len(call.args) >= 2:
                    event, handler = call.args[0].value, call.args[1].value
                    if isinstance(event, cst.SimpleString) and event.evaluated_value in facts.LIFESPAN_EVENTS:
                        if isinstance(handler, cst.Name):
                            names.add(handler.value)
                for arg in call.args:
                    if (
                        arg.keyword is not None
                        and arg.keyword.value in facts.LIFESPAN_HANDLER_KEYWORDS
                        and isinstance(arg.value, (cst.List, cst.Tuple))
                    ):
                        names |= {e.value.value for e in arg.value.elements if isinstance(e.value, cst.Name)}
        return names

    def _is_hook(self, fn: cst.FunctionDef) -> bool:
        for deco in fn.decorators:
            d = deco.decorator
            if (
                isinstance(d, cst.Call)
                and isinstance(d.func, cst.Attribute)
                and d.func.attr.value == facts.LIFESPAN_EVENT_DECORATOR
                and d.args
                and isinstance(d.args[0].value, cst.SimpleString)
                and d.args[0].value.evaluated_value in facts.LIFESPAN_EVENTS
            ):
                return True
        return not self._frames and fn.name.value in self._hooks

    def _find_engines(self, module: cst.Module) -> _Engines:
        """Sync engine references: the plan's, local ``create_engine`` results, and imported names used as engines."""
        engines = _Engines(refs=set(self.plan.sync_engines))
        local_async: list[str] = []
        for stmt, _ in module_level(module):
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                pair = assignment(small)
                if pair is not None:
                    name, value = pair
                    if isinstance(value, cst.Call):
                        q = {x.name for x in self.get_metadata(QualifiedNameProvider, value.func, set())}
                        if q & facts.SYNC_ENGINE_FACTORIES:
                            engines.refs.add(name)
                        elif q & facts.ASYNC_ENGINE_FACTORIES:
                            local_async.append(name)
        used = self._engine_like_uses(module)
        for ref in sorted(used - engines.refs):
            imported = self._imported_ref(ref)
            if imported is not None and self._is_database_module(*imported):
                engines.refs.add(ref)
        mine = self.plan.async_engine if self.plan.async_engine in local_async else next(iter(local_async), None)
        for ref in engines.refs:
            resolved = self._async_for(ref, mine)
            if resolved is not None:
                engines.resolved[ref] = resolved
        return engines

    def _engine_like_uses(self, module: cst.Module) -> set[str]:
        """Dotted receivers used as an engine: DDL binds, ``X.dispose()``, ``X.pool``."""
        used: set[str] = set()
        awaited = {id(a.expression) for a in m.findall(module, m.Await()) if isinstance(a, cst.Await)}
        for call in m.findall(module, m.Call()):
            assert isinstance(call, cst.Call)
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in facts.METADATA_DDL_METHODS:
                bind = bind_arg(call)
                if bind is not None and dotted(bind.value):
                    used.add(dotted(bind.value) or "")
            if m.matches(func, m.Attribute(attr=m.Name("dispose"))) and id(call) not in awaited:
                used.add(dotted(func.value) or "")  # type: ignore[attr-defined]
        for attr in m.findall(module, m.Attribute(attr=m.Name("pool"))):
            assert isinstance(attr, cst.Attribute)
            used.add(dotted(attr.value) or "")
        # the async engine itself (``async_engine``, ``database.async_engine``) is never a sync one
        return {ref for ref in used if ref and ref.rpartition(".")[2] != self.plan.async_engine}

    def _imported_ref(self, ref: str) -> Optional[tuple[str, int]]:
        """``(module, level)`` a ref comes from: ``engine`` via ``from M import engine``, ``database.engine`` via
        ``from app import database`` / ``import app.database as database``."""
        head, _, rest = ref.partition(".")
        for stmt, _ in module_level(self._module):
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                    mod = dotted(small.module) if small.module is not None else ""
                    level = len(small.relative)
                    for alias in small.names:
                        if (alias.evaluated_alias or alias.evaluated_name) != head:
                            continue
                        if not rest:
                            return mod or "", level
                        if "." not in rest:
                            return (f"{mod}.{alias.evaluated_name}" if mod else alias.evaluated_name), level
                elif isinstance(small, cst.Import) and rest and "." not in rest:
                    for alias in small.names:
                        if alias.evaluated_alias == head:
                            return alias.evaluated_name, 0
        return None

    def _is_database_module(self, mod: str, level: int) -> bool:
        target = self.plan.database_module
        if target is None:
            return True
        if level == 0:
            return mod == target
        package = self.context.full_package_name or self.plan.module.rpartition(".")[0]
        if package:
            parts = package.split(".")
            base = parts[: len(parts) - (level - 1)] if level > 1 else parts
            return ".".join([*base, mod] if mod else base) == target
        return target == mod or target.endswith("." + mod)

    def _async_for(self, ref: str, local_async: Optional[str]) -> Optional[tuple[str, Optional[tuple[str, int]]]]:
        plan = self.plan
        head, _, rest = ref.partition(".")
        imported = self._imported_ref(ref)
        if imported is None:
            if ref in self._bound and local_async is not None:
                return local_async, None
            return None
        if rest:  # database.engine -> database.async_engine: nothing to import
            return f"{head}.{plan.async_engine}", None
        mod, level = imported
        if plan.database_module is not None and not self._is_database_module(mod, level):
            mod, level = plan.database_module, 0
        binders = self._bound.get(plan.async_engine, [])
        if binders and not all(isinstance(b, cst.ImportFrom) for b in binders):
            return None
        return plan.async_engine, (mod, level)

    # ---- scopes ----

    def visit_FunctionDef(self, node: cst.FunctionDef) -> Optional[bool]:
        super().visit_FunctionDef(node)
        on_loop = node.asynchronous is not None or self._is_hook(node) or self.scope in self.plan.make_async
        if self._frames and not node.asynchronous and self.scope not in self.plan.make_async:
            on_loop = False  # a nested sync def runs wherever it is called from (often a worker thread)
        names = frozenset(n.value for n in m.findall(node, m.Name()) if isinstance(n, cst.Name))
        disposes = any(
            m.matches(a.expression, m.Call(func=m.Attribute(attr=m.Name("dispose"))))
            for a in m.findall(node, m.Await())
            if isinstance(a, cst.Await)
        )
        self._frames.append(_Frame(node, on_loop, names, disposes))
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        frame = self._frames.pop()
        result = super().leave_FunctionDef(original_node, updated_node)
        if frame.needs_async and isinstance(result, cst.FunctionDef) and result.asynchronous is None:
            result = result.with_changes(asynchronous=cst.Asynchronous())
        return result

    def visit_Lambda(self, node: cst.Lambda) -> Optional[bool]:
        return False  # a lambda body is never awaited here

    @property
    def _on_loop(self) -> bool:
        return bool(self._frames) and self._frames[-1].on_loop

    # ---- helpers ----

    def _say(self, node: cst.CSTNode, message: str) -> None:
        self.warn(f"line {self.get_metadata(PositionProvider, node).start.line}: {message}")

    def _async_ref(self, ref: str, node: cst.CSTNode) -> Optional[str]:
        resolved = self._engines.resolved.get(ref)
        if resolved is None:
            self._say(node, f"no async engine is known for {ref} in this file; left alone")
            return None
        async_ref, source = resolved
        if source is not None:
            self.add_needed_import(source[0], async_ref, relative=source[1])
        return async_ref

    def _ddl(self, call: cst.Call) -> Optional[tuple[str, cst.Arg]]:
        """``(sync engine ref, bind argument)`` of ``metadata.create_all(bind=engine)`` / ``drop_all(engine)``."""
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value in facts.METADATA_DDL_METHODS):
            return None
        bind = bind_arg(call)
        ref = dotted(bind.value) if bind is not None else None
        if bind is None or ref not in self._engines.refs:
            return None
        return ref, bind

    def _dispose(self, call: cst.Call) -> Optional[str]:
        if m.matches(call.func, m.Attribute(attr=m.Name("dispose"))):
            ref = dotted(call.func.value)  # type: ignore[attr-defined]
            if ref in self._engines.refs:
                return ref
        return None

    # ---- rewrites ----

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> Optional[bool]:
        if len(node.body) == 1 and isinstance(node.body[0], cst.Expr) and isinstance(node.body[0].value, cst.Call):
            self._statement_calls.add(id(node.body[0].value))
        return True

    def visit_Call(self, node: cst.Call) -> Optional[bool]:
        ddl, dispose = self._ddl(node), self._dispose(node)
        if not self._frames:
            if ddl is not None and not self.plan.test_module:  # test code creates its tables on the sync engine
                self._say(node, f"{dotted(node.func) or 'metadata'}() at module level runs at import time, with no "
                                "event loop; left on the sync engine")
            return True
        if not self._on_loop:
            return True
        if (ddl or dispose) and id(node) not in self._statement_calls:
            self._say(node, f"{dotted(node.func)}() inside an expression is left alone; call it as a statement")
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in facts.ENGINE_IO_METHODS - {"dispose"}:
            ref = dotted(func.value)
            if ref in self._engines.refs:
                self._say(node, f"{ref}.{func.attr.value}() on the loop is left alone (not a Phase-1 rewrite); use "
                                f"{self.plan.async_engine}.{func.attr.value}() with async with")
        if isinstance(func, cst.Name) and func.value in self._ddl_helpers:
            self._say(node, f"{func.value}() runs metadata DDL on the sync engine, on the loop; left alone "
                            "(make it async, or call it with run_in_threadpool)")
        return True

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> Union[cst.BaseStatement, cst.FlattenSentinel[cst.BaseStatement]]:
        only = original_node.body[0] if len(original_node.body) == 1 else None
        if not self._on_loop or not (isinstance(only, cst.Expr) and isinstance(only.value, cst.Call)):
            return updated_node
        call = only.value
        frame = self._frames[-1]
        ddl = self._ddl(call)
        if ddl is not None:
            async_ref = self._async_ref(ddl[0], call)
            if async_ref is None:
                return updated_node
            conn = free_name("conn", frame.names)
            rest = [a for a in call.args if a is not ddl[1]]
            run_sync = cst.Call(func=expr(f"{conn}.run_sync"), args=relayout(call, [cst.Arg(call.func), *rest]))
            inner = cst.SimpleStatementLine(
                body=[cst.Expr(cst.Await(run_sync))], trailing_whitespace=updated_node.trailing_whitespace
            )
            block = cst.With(
                items=[cst.WithItem(item=expr(f"{async_ref}.begin()"), asname=cst.AsName(name=cst.Name(conn)))],
                body=cst.IndentedBlock(body=[inner]),
                asynchronous=cst.Asynchronous(),
                leading_lines=updated_node.leading_lines,
            )
            self._ddl_blocks[id(block)] = (async_ref, conn)
            frame.needs_async = True
            return block
        ref = self._dispose(call)
        if ref is not None and not frame.disposes_async:
            async_ref = self._async_ref(ref, call)
            if async_ref is None:
                return updated_node
            awaited = cst.Await(call.with_changes(func=expr(f"{async_ref}.dispose")))
            first = cst.SimpleStatementLine(body=[cst.Expr(awaited)], leading_lines=updated_node.leading_lines)
            frame.needs_async = True
            return cst.FlattenSentinel([first, updated_node.with_changes(leading_lines=[])])
        return updated_node

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        """Consecutive create_all/drop_all blocks on one engine share one ``async with``."""
        body: list[cst.BaseStatement] = []
        changed = False
        for stmt in updated_node.body:
            key = self._ddl_blocks.get(id(stmt))
            prev = body[-1] if body else None
            if key is not None and prev is not None and self._ddl_blocks.get(id(prev)) == key:
                assert isinstance(stmt, cst.With) and isinstance(prev, cst.With)
                assert isinstance(stmt.body, cst.IndentedBlock) and isinstance(prev.body, cst.IndentedBlock)
                moved = [s.with_changes(leading_lines=stmt.leading_lines) for s in stmt.body.body]
                merged = prev.with_changes(body=prev.body.with_changes(body=[*prev.body.body, *moved]))
                self._ddl_blocks[id(merged)] = key
                body[-1] = merged
                changed = True
            else:
                body.append(stmt)
        return updated_node.with_changes(body=body) if changed else updated_node

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        """``engine.pool`` on the loop reads the async engine's pool."""
        if original_node.attr.value != "pool" or not self._on_loop:
            return updated_node
        ref = dotted(original_node.value)
        if ref not in self._engines.refs:
            return updated_node
        async_ref = self._async_ref(ref, original_node)
        if async_ref is None:
            return updated_node
        return updated_node.with_changes(value=expr(async_ref))


def run_on_source(code: str, plan: FilePlan) -> tuple[str, list[str]]:
    """Rewrite one module's source; returns ``(new code, warnings)``."""
    package = plan.module.rpartition(".")[0] if plan.module else None
    context = CodemodContext(scratch={"plan": plan}, full_module_name=plan.module or None, full_package_name=package)
    new = LifecycleToAsync(context).transform_module(cst.parse_module(code))
    return new.code, list(context.warnings)
