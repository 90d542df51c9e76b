"""``time.sleep(x)`` -> ``await asyncio.sleep(x)`` where the function is or becomes async (fixes ASM130).

Identity comes from the module's imports: ``import time``, ``import time as t``
and ``from time import sleep [as s]`` are all recognised; a local function
named ``sleep`` is not.  Sync functions that stay sync keep ``time.sleep``.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor

from .base import AwaitAware, dotted


class SleepToAsyncio(AwaitAware):
    DESCRIPTION = "await asyncio.sleep instead of time.sleep in coroutines"
    fixes = ("ASM130",)

    def __init__(self, context) -> None:
        super().__init__(context)
        self._sleep_names: set[str] = set()

    def visit_Module(self, node: cst.Module) -> Optional[bool]:
        for stmt in node.body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        if dotted(alias.name) == "time":
                            local = alias.asname.name.value if alias.asname else "time"
                            self._sleep_names.add(f"{local}.sleep")
                elif isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None \
                        and dotted(small.module) == "time" and not isinstance(small.names, cst.ImportStar):
                    for alias in small.names:
                        if isinstance(alias.name, cst.Name) and alias.name.value == "sleep":
                            self._sleep_names.add(alias.asname.name.value if alias.asname else "sleep")
        return True

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if dotted(original_node.func) not in self._sleep_names or self.is_awaited(original_node):
            return updated_node
        if not self.can_await:
            return updated_node
        AddImportsVisitor.add_needed_import(self.context, "asyncio")
        return cst.Await(expression=updated_node.with_changes(
            func=cst.Attribute(value=cst.Name("asyncio"), attr=cst.Name("sleep"))))
