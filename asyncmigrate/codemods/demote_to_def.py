"""``async def`` -> ``def`` for a route, dependency or background task that awaits nothing (the thread-pool bridge).

FastAPI and Starlette run a ``def`` path operation, a ``def`` dependency and a ``def`` background task in their
threadpool, and an ``async def`` on the event loop: a coroutine that awaits nothing but calls sync database code
blocks every other request while it runs, and the same function without ``async`` does not.  That is the
cheapest correct bridge, a one-word diff.  The planner (``bridge.py``) picks the functions: only ones the
framework alone runs (no caller in the project, named only in ``Depends``/``Security``/``add_task``, no decorator
but a route's), that await nothing and need no running loop.  This rewrite only drops the keyword.
"""

from __future__ import annotations

import libcst as cst

from .base import ScopedTransformer


class DemoteToDef(ScopedTransformer):
    DESCRIPTION = "async def that awaits nothing -> def (runs in the framework's threadpool)"
    fixes = ("ASM101", "ASM110", "ASM120")

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        scope = self.scope
        super().leave_FunctionDef(original_node, updated_node)
        if updated_node.asynchronous is not None and scope in self.plan.demote:
            return updated_node.with_changes(asynchronous=None)
        return updated_node
