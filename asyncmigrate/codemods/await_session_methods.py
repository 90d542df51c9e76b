"""Await the ``AsyncSession`` methods that are coroutines, and only those (fixes ASM120, ASM122).

On a converted session, ``commit``, ``rollback``, ``flush``, ``refresh``,
``merge``, ``delete``, ``close``, ``execute``, ``scalar``, ``scalars``,
``get``... become coroutines and get ``await`` (with parentheses before
anything chained: ``(await db.execute(stmt)).scalars()``); ``add``,
``add_all``, ``expunge``, ``expire`` stay sync and are never awaited
(``facts.ASYNC_SESSION_COROUTINES`` / ``ASYNC_SESSION_SYNC_METHODS``).
``with db.begin():`` becomes ``async with db.begin():``.  Where the function
cannot await (it is not, and does not become, a coroutine), nothing changes
and a warning says why.
"""

from __future__ import annotations

import libcst as cst

from .. import facts
from .base import AwaitAware, dotted


class AwaitSessionMethods(AwaitAware):
    DESCRIPTION = "await AsyncSession coroutine methods (never the sync ones)"
    fixes = ("ASM120", "ASM122")

    def _session_call(self, node: cst.Call) -> str | None:
        func = node.func
        if isinstance(func, cst.Attribute) and self.plan.is_session(self.function_scope, dotted(func.value)):
            return func.attr.value
        return None

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        method = self._session_call(original_node)
        if method is None or method not in facts.ASYNC_SESSION_COROUTINES or self.is_awaited(original_node):
            return updated_node
        if not self.can_await:
            line = self._line(original_node)
            self.warn(f"`{dotted(original_node.func)}()` needs await but `{self.function_scope}` cannot await here{line}")
            return updated_node
        return cst.Await(expression=updated_node)

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.BaseStatement:
        if updated_node.asynchronous is not None:
            return updated_node
        begins = [item for item in original_node.items if isinstance(item.item, cst.Call)
                  and self._session_call(item.item) in ("begin", "begin_nested")]
        if not begins or len(begins) != len(original_node.items):
            return updated_node
        if not self.can_await:
            return updated_node
        return updated_node.with_changes(asynchronous=cst.Asynchronous())

    def _line(self, node: cst.CSTNode) -> str:
        return ""
