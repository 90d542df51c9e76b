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
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from .base import AwaitAware, callee_text


class PropagateAsync(AwaitAware):
    DESCRIPTION = "make callers of new coroutines async and await them"
    fixes = ()

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        scope = self.scope
        node = super().leave_FunctionDef(original_node, updated_node)
        if scope in self.plan.make_async and isinstance(node, cst.FunctionDef) and node.asynchronous is None:
            node = node.with_changes(asynchronous=cst.Asynchronous())
        if scope in self.plan.acm and isinstance(node, cst.FunctionDef):
            node = node.with_changes(decorators=[self._async_cm(d) for d in node.decorators])
        return node

    def _async_cm(self, dec: cst.Decorator) -> cst.Decorator:
        """``@contextmanager`` -> ``@asynccontextmanager`` (``contextlib.`` prefix kept)."""
        text = callee_text(dec.decorator)
        if text == "contextmanager":
            AddImportsVisitor.add_needed_import(self.context, "contextlib", "asynccontextmanager")
            RemoveImportsVisitor.remove_unused_import(self.context, "contextlib", "contextmanager")
            return dec.with_changes(decorator=cst.Name("asynccontextmanager"))
        if text == "contextlib.contextmanager":
            return dec.with_changes(decorator=cst.Attribute(cst.Name("contextlib"), cst.Name("asynccontextmanager")))
        return dec

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.BaseStatement:
        wanted = self.plan.async_with_calls.get(self.function_scope, ())
        if updated_node.asynchronous is not None or not wanted or not self.can_await:
            return updated_node
        if any(isinstance(i.item, cst.Call) and callee_text(i.item.func) in wanted for i in original_node.items):
            return updated_node.with_changes(asynchronous=cst.Asynchronous())
        return updated_node

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
