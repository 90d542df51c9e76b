"""Async propagation: ``def`` -> ``async def``, ``await`` at every call site, ``asyncio.run`` at entry points.

The plan (``migration.py``) says which functions become coroutines and which
calls, in which scope, must be awaited or run with ``asyncio.run(...)``;
this codemod applies exactly that.  ``await`` is never placed inside a
``lambda`` or a generator expression (both would break); such calls are
reported.  Calls already awaited are left alone, so a second run changes
nothing.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor

from .base import AwaitAware, callee_text


class PropagateAsync(AwaitAware):
    DESCRIPTION = "make callers of new coroutines async and await them"
    fixes = ()

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        scope = self.scope
        node = super().leave_FunctionDef(original_node, updated_node)
        if scope in self.plan.make_async and isinstance(node, cst.FunctionDef) and node.asynchronous is None:
            node = node.with_changes(asynchronous=cst.Asynchronous())
        return node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if self.is_awaited(original_node):
            return updated_node
        scope = self.function_scope
        text = callee_text(original_node.func)
        if text is None:
            return updated_node
        if text in self.plan.run_calls.get(scope, ()):
            AddImportsVisitor.add_needed_import(self.context, "asyncio")
            return cst.Call(func=cst.Attribute(cst.Name("asyncio"), cst.Name("run")), args=[cst.Arg(updated_node)])
        if text in self.plan.await_calls.get(scope, ()):
            if not self.can_await:
                self.warn(f"`{text}()` in `{scope}` is now a coroutine but is called inside a lambda or generator "
                          "expression; await it by hand")
                return updated_node
            return cst.Await(expression=updated_node)
        return updated_node
