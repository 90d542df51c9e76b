"""``SessionLocal()`` -> ``AsyncSessionLocal()``; ``with SessionLocal() as db`` -> ``async with`` (fixes ASM103).

Background tasks and scripts that build their own sessions get an
``AsyncSession`` from the async factory that the ``database`` rewrite adds
beside the sync one.  ``AsyncSessionLocal()`` returns the session itself (it
is not awaitable), so ``db = AsyncSessionLocal()`` followed by
``await db.close()`` is valid, and ``with`` becomes ``async with``
(``with AsyncSessionLocal()`` raises ``TypeError``: SQLALCHEMY_ASYNC.md §4).
The name comes from the plan; it is imported from the database module.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor

from .base import AwaitAware, callee_text, replace_last_name


class SessionFactoryToAsync(AwaitAware):
    DESCRIPTION = "build sessions from the async session factory"
    fixes = ("ASM103",)

    def _is_factory(self, node: cst.BaseExpression) -> bool:
        return (
            isinstance(node, cst.Call)
            and self.function_scope in self.plan.sessions
            and callee_text(node.func) in self.plan.sync_factories
        )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if not self._is_factory(original_node):
            return updated_node
        if not self.can_await:
            self.warn(f"`{callee_text(original_node.func)}()` in `{self.function_scope}`, which cannot become async")
            return updated_node
        new_name = self.plan.async_session_factory
        func = original_node.func
        if isinstance(func, cst.Name) and self.plan.database_module and self.plan.database_module != self.plan.module:
            AddImportsVisitor.add_needed_import(self.context, self.plan.database_module, new_name)
        return updated_node.with_changes(func=replace_last_name(updated_node.func, new_name))

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.BaseStatement:
        if updated_node.asynchronous is not None or not self.can_await:
            return updated_node
        if any(self._is_factory(item.item) for item in original_node.items):
            return updated_node.with_changes(asynchronous=cst.Asynchronous())
        return updated_node
