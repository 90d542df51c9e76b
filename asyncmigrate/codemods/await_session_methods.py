"""Await the ``AsyncSession`` methods that are coroutines, and only those (fixes ASM120, ASM122).

On a converted session, ``commit``, ``rollback``, ``flush``, ``refresh``,
``merge``, ``delete``, ``close``, ``execute``, ``scalar``, ``scalars``,
``get``... become coroutines and get ``await`` (with parentheses before
anything chained: ``(await db.execute(stmt)).scalars()``); ``add``,
``add_all``, ``expunge``, ``expire`` stay sync and are never awaited
(``facts.AWAITED_SESSION_METHODS``, with SQLModel's ``exec`` / ``ASYNC_SESSION_SYNC_METHODS``).
``with db.begin():`` becomes ``async with db.begin():`` (a ``with`` that also
holds other, sync, context managers is split into nested statements, since an
``async with`` needs every item to be an async context manager), and the
``AsyncSessionTransaction`` it binds (``as tx``) has its ``commit()`` /
``rollback()`` awaited.  Where the function cannot await (it is not, and does
not become, a coroutine), nothing changes and a warning says why.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst
from libcst.metadata import PositionProvider

from .. import facts
from .base import AwaitAware, dotted

#: ``AsyncSession.begin()`` / ``begin_nested()`` give an ``AsyncSessionTransaction`` (an async context manager)
_BEGIN_METHODS = frozenset({"begin", "begin_nested"})
#: coroutines of ``AsyncSessionTransaction`` (SQLALCHEMY_ASYNC.md §1: "its commit and rollback are coroutines")
_TRANSACTION_COROUTINES = frozenset({"commit", "rollback"})


class AwaitSessionMethods(AwaitAware):
    DESCRIPTION = "await AsyncSession coroutine methods (never the sync ones)"
    fixes = ("ASM120", "ASM122")
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, context) -> None:
        super().__init__(context)
        #: names bound by ``with <session>.begin() as tx`` that are in scope, innermost last
        self._transactions: list[tuple[str, str]] = []  # (function scope, name)

    def _session_call(self, node: cst.Call) -> str | None:
        func = node.func
        if isinstance(func, cst.Attribute) and self.plan.is_session(self.function_scope, dotted(func.value)):
            return func.attr.value
        return None

    def _is_begin(self, item: cst.WithItem) -> bool:
        return isinstance(item.item, cst.Call) and self._session_call(item.item) in _BEGIN_METHODS

    def _transaction_call(self, node: cst.Call) -> bool:
        func = node.func
        return (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
                and func.attr.value in _TRANSACTION_COROUTINES
                and (self.function_scope, func.value.value) in self._transactions)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        method = self._session_call(original_node)
        is_coroutine = method in facts.AWAITED_SESSION_METHODS if method else self._transaction_call(original_node)
        if not is_coroutine or self.is_awaited(original_node):
            return updated_node
        if not self.can_await:
            self.warn(f"line {self._line(original_node)}: `{dotted(original_node.func)}()` needs await but "
                      f"`{self.function_scope}` cannot await here")
            return updated_node
        return cst.Await(expression=updated_node)

    def visit_With(self, node: cst.With) -> Optional[bool]:
        if node.asynchronous is None and self.can_await:
            for item in node.items:
                if self._is_begin(item) and item.asname is not None and isinstance(item.asname.name, cst.Name):
                    self._transactions.append((self.function_scope, item.asname.name.value))
        return True

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.BaseStatement:
        if original_node.asynchronous is None and self.can_await:
            bound = [(self.function_scope, item.asname.name.value) for item in original_node.items
                     if self._is_begin(item) and item.asname is not None and isinstance(item.asname.name, cst.Name)]
            for entry in bound:
                self._transactions.remove(entry)
        if updated_node.asynchronous is not None or not self.can_await:
            return updated_node
        begins = [self._is_begin(item) for item in original_node.items]
        if not any(begins):
            return updated_node
        if all(begins):
            return updated_node.with_changes(asynchronous=cst.Asynchronous())
        return self._split(updated_node, begins)

    @staticmethod
    def _split(node: cst.With, begins: list[bool]) -> cst.With:
        """``with a, db.begin(), b:`` -> ``with a:`` / ``async with db.begin():`` / ``with b:``, nested in order.

        ``with x, y:`` means ``with x: with y:``, so nesting keeps the order of entering and leaving.  Comments
        between the items of a parenthesised ``with (...)`` move to their own lines above the statement of
        the items they followed.
        """
        groups: list[tuple[bool, list[cst.WithItem]]] = []
        for item, is_begin in zip(node.items, begins):
            if groups and groups[-1][0] == is_begin:
                groups[-1][1].append(item)
            else:
                groups.append((is_begin, [item]))
        body = node.body
        for index in range(len(groups) - 1, -1, -1):
            is_begin, items = groups[index]
            sources: list[cst.CSTNode] = [i.comma for i in items if isinstance(i.comma, cst.Comma)]
            if index == 0 and isinstance(node.lpar, cst.LeftParen):
                sources.insert(0, node.lpar)
            comments = [c for src in sources for c in _comments(src)]
            items = [*items[:-1], items[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
            inner = cst.With(items=items, body=body, asynchronous=cst.Asynchronous() if is_begin else None,
                             leading_lines=[cst.EmptyLine(comment=cst.Comment(c)) for c in comments])
            body = cst.IndentedBlock(body=[inner])
        outer = body.body[0]
        return outer.with_changes(leading_lines=[*node.leading_lines, *outer.leading_lines])

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line


def _comments(node: cst.CSTNode) -> list[str]:
    """The comments inside ``node`` (a comma or parenthesis of a multi-line ``with (...)``), in order."""
    found: list[str] = []

    class _Collect(cst.CSTVisitor):
        def visit_Comment(self, comment: cst.Comment) -> None:
            found.append(comment.value)

    node.visit(_Collect())
    return found
