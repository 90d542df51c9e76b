"""``SessionLocal()`` -> ``AsyncSessionLocal()``; ``with SessionLocal() as db`` -> ``async with`` (fixes ASM103).

Background tasks and scripts that build their own sessions get an
``AsyncSession`` from the async factory that the ``database`` rewrite adds
beside the sync one.  ``AsyncSessionLocal()`` returns the session itself (it
is not awaitable), so ``db = AsyncSessionLocal()`` followed by
``await db.close()`` is valid, and ``with`` becomes ``async with``
(``with AsyncSessionLocal()`` raises ``TypeError``: SQLALCHEMY_ASYNC.md §4).
The name comes from the plan; it is imported from the database module.

A session factory *function* that returns the session it builds (``def new_session() -> Session: return
Session(engine)``) awaits nothing, so it stays a ``def``: its returned call is rewritten all the same,
and a ``Session`` return annotation becomes ``AsyncSession`` (its callers' ``with`` becomes ``async
with`` through the plan's ``async_with_calls``).

A session built directly on an engine, ``Session(engine)`` / ``Session(bind=engine)`` (SQLModel projects
have no factory), becomes ``AsyncSession(async_engine, expire_on_commit=False)`` when the plan lists that
engine reference (``FilePlan.sync_engines``: its module gets the ``async_engine`` twin); the twin is
imported from where the engine is (:mod:`._database.engine_session`).
"""

from __future__ import annotations

from typing import Optional

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import QualifiedNameProvider

from .. import facts
from ._database.engine_session import async_engine_ref, async_session_call, engine_of, session_class_of
from .base import AwaitAware, callee_text, replace_last_name


class SessionFactoryToAsync(AwaitAware):
    DESCRIPTION = "build sessions from the async session factory"
    fixes = ("ASM103",)
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    def visit_Module(self, node: cst.Module) -> Optional[bool]:
        self._module = node
        #: returned session-building calls (original nodes), and the functions that return one
        self._returned: set[int] = set()
        self._returns_session: set[str] = set()
        return True

    def visit_Return(self, node: cst.Return) -> Optional[bool]:
        if node.value is not None:
            self._returned.add(id(node.value))
        return True

    def _is_factory(self, node: cst.BaseExpression) -> bool:
        return (
            isinstance(node, cst.Call)
            and self.function_scope in self.plan.sessions
            and callee_text(node.func) in self.plan.sync_factories
        )

    def _qnames(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def _engine_session(self, node: cst.BaseExpression) -> Optional[tuple[str, str]]:
        """``(engine text, qualified session class)`` of a planned ``Session(engine)`` in a converted scope."""
        if not (isinstance(node, cst.Call) and self.plan.sync_engines and self.function_scope in self.plan.sessions):
            return None
        engine = engine_of(node)
        if engine is None or engine not in self.plan.sync_engines:
            return None
        cls = session_class_of(node, self._qnames)
        return (engine, cls) if cls is not None and cls in facts.ASYNC_SESSION_CLASS_FOR else None

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        on_engine = self._engine_session(original_node)
        if not self._is_factory(original_node) and on_engine is None:
            return updated_node
        if id(original_node) in self._returned:
            self._returns_session.add(self.function_scope)  # built and handed back: no await needed here
        elif not self.can_await:
            self.warn(f"`{callee_text(original_node.func)}()` in `{self.function_scope}`, which cannot become async")
            return updated_node
        if on_engine is not None:
            return self._async_session(updated_node, *on_engine)
        new_name = self.plan.async_session_factory
        func = original_node.func
        if isinstance(func, cst.Name) and self.plan.database_module and self.plan.database_module != self.plan.module:
            AddImportsVisitor.add_needed_import(self.context, self.plan.database_module, new_name)
        return updated_node.with_changes(func=replace_last_name(updated_node.func, new_name))

    def _async_session(self, node: cst.Call, engine: str, cls: str) -> cst.BaseExpression:
        twin, imported = async_engine_ref(self._module, engine, self.plan.async_engine)
        if imported is not None:
            mod, level = imported
            AddImportsVisitor.add_needed_import(self.context, mod, self.plan.async_engine, relative=level)
        module, name = facts.ASYNC_SESSION_CLASS_FOR[cls]
        AddImportsVisitor.add_needed_import(self.context, module, name)
        return async_session_call(node, twin, name, lambda n, msg: self.warn(msg))

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        scope = self.function_scope
        updated = super().leave_FunctionDef(original_node, updated_node)
        returns = original_node.returns
        if scope in self._returns_session and returns is not None and isinstance(updated, cst.FunctionDef):
            classes = self._qnames(returns.annotation) & facts.ASYNC_SESSION_CLASS_FOR.keys()
            if classes:
                module, name = facts.ASYNC_SESSION_CLASS_FOR[min(classes)]
                AddImportsVisitor.add_needed_import(self.context, module, name)
                return updated.with_changes(returns=returns.with_changes(annotation=cst.Name(name)))
        return updated

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.BaseStatement:
        if updated_node.asynchronous is not None or not self.can_await:
            return updated_node
        if any(self._is_factory(item.item) or self._engine_session(item.item) for item in original_node.items):
            return updated_node.with_changes(asynchronous=cst.Asynchronous())
        return updated_node
