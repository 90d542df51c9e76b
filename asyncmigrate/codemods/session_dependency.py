"""``Depends(get_db)`` -> ``Depends(get_async_db)``; ``Session`` annotations -> ``AsyncSession`` (fixes ASM101, ASM102).

Only parameters the plan marks as converted sessions change, so a ``def``
route left on the sync session keeps ``get_db``.  ``Annotated`` aliases such
as ``SessionDep = Annotated[Session, Depends(get_db)]`` get an async twin
(``AsyncSessionDep``) beside them; converted parameters use the twin, and
routes still on the old alias keep working.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst
import libcst.matchers as m
from libcst.codemod.visitors import AddImportsVisitor

from .base import ScopedTransformer, callee_text, dotted, replace_last_name

_SESSION_NAMES = frozenset({"Session"})


def _async_session_import(sqlmodel: bool) -> tuple[str, str]:
    return ("sqlmodel.ext.asyncio.session", "AsyncSession") if sqlmodel else ("sqlalchemy.ext.asyncio", "AsyncSession")


class SessionDependencyToAsync(ScopedTransformer):
    DESCRIPTION = "inject AsyncSession through the async dependency"
    fixes = ("ASM101", "ASM102")

    def __init__(self, context) -> None:
        super().__init__(context)
        self._aliases: dict[str, str] = {}  # alias name -> async alias name (module-level Annotated aliases)
        self._existing: set[str] = set()
        self._functions: set[str] = set()  # module-level functions

    # ---------------------------------------------------------------- helpers
    def _is_sync_session_annotation(self, node: cst.BaseExpression) -> bool:
        text = dotted(node)
        return text is not None and text.rsplit(".", 1)[-1] in _SESSION_NAMES

    def _async_annotation(self, node: cst.BaseExpression) -> cst.BaseExpression:
        module, name = _async_session_import(self.plan.sqlmodel)
        AddImportsVisitor.add_needed_import(self.context, module, name)
        return cst.Name(name)

    def _swap_depends(self, node: cst.BaseExpression) -> Optional[cst.BaseExpression]:
        """``Depends(get_db)`` -> ``Depends(get_async_db)``, or None when it is not a sync session dependency."""
        if not (isinstance(node, cst.Call) and node.args and callee_text(node.func) in ("Depends", "fastapi.Depends")):
            return None
        target = node.args[0].value
        if callee_text(target) not in self.plan.sync_dependencies:
            return None
        # a ``get_db`` defined in this module gets its twin here (the ``database`` rewrite): nothing to import
        if isinstance(target, cst.Name) and target.value not in self._functions and self.plan.database_module \
                and self.plan.database_module != self.plan.module:
            AddImportsVisitor.add_needed_import(self.context, self.plan.database_module, self.plan.async_dependency)
        new_arg = node.args[0].with_changes(value=replace_last_name(target, self.plan.async_dependency))
        return node.with_changes(args=[new_arg, *node.args[1:]])

    def _convert_annotated(self, node: cst.BaseExpression) -> Optional[cst.BaseExpression]:
        """``Annotated[Session, Depends(get_db)]`` -> ``Annotated[AsyncSession, Depends(get_async_db)]``."""
        if not (isinstance(node, cst.Subscript) and callee_text(node.value) in ("Annotated", "typing.Annotated")):
            return None
        elements = list(node.slice)
        if not elements or not isinstance(elements[0].slice, cst.Index):
            return None
        first = elements[0].slice.value
        if not self._is_sync_session_annotation(first):
            return None
        swapped = False
        new_elements = [elements[0].with_changes(slice=cst.Index(self._async_annotation(first)))]
        for el in elements[1:]:
            if isinstance(el.slice, cst.Index):
                dep = self._swap_depends(el.slice.value)
                if dep is not None:
                    swapped = True
                    el = el.with_changes(slice=cst.Index(dep))
            new_elements.append(el)
        return node.with_changes(slice=new_elements) if swapped or len(elements) == 1 else None

    # ---------------------------------------------------------------- module-level aliases
    def visit_Module(self, node: cst.Module) -> Optional[bool]:
        self._functions = {stmt.name.value for stmt in node.body if isinstance(stmt, cst.FunctionDef)}
        self._existing = {
            stmt.body[0].targets[0].target.value
            for stmt in node.body
            if m.matches(stmt, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())])]))
        }
        return True

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine,
                                  updated_node: cst.SimpleStatementLine):
        """``X = Annotated[Session, Depends(get_db)]`` at module level gets a twin ``AsyncX`` below it."""
        if self.scope != "<module>" or len(original_node.body) != 1:
            return updated_node
        stmt = original_node.body[0]
        if not (isinstance(stmt, cst.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0].target, cst.Name)):
            return updated_node
        converted = self._convert_annotated(stmt.value)
        if converted is None:
            return updated_node
        name = stmt.targets[0].target.value
        twin = f"Async{name}"
        self._aliases[name] = twin
        if twin in self._existing:
            return updated_node
        line = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(twin))], converted)])
        return cst.FlattenSentinel([updated_node, line])

    # ---------------------------------------------------------------- parameters
    def leave_Param(self, original_node: cst.Param, updated_node: cst.Param) -> cst.Param:
        scope = self.function_scope
        if scope not in self.plan.sessions or original_node.name.value not in self.plan.sessions[scope]:
            return updated_node
        changes = {}
        if original_node.default is not None:
            dep = self._swap_depends(original_node.default)
            if dep is not None:
                changes["default"] = dep
        ann = original_node.annotation
        if ann is not None:
            node = ann.annotation
            if self._is_sync_session_annotation(node):
                changes["annotation"] = ann.with_changes(annotation=self._async_annotation(node))
            else:
                converted = self._convert_annotated(node)
                if converted is not None:
                    changes["annotation"] = ann.with_changes(annotation=converted)
                elif isinstance(node, (cst.Name, cst.Attribute)) and self._is_session_alias(node):
                    changes["annotation"] = ann.with_changes(annotation=self._alias_twin(node))
        return updated_node.with_changes(**changes) if changes else updated_node

    def _is_session_alias(self, node: cst.BaseExpression) -> bool:
        """A converted session parameter annotated with a name that is not ``Session``: an Annotated alias.

        Only a name assigned at module level here or imported by name can be such an alias; a builtin or a
        class (``s: str``, ``db: bytes``, when the session evidence was only the parameter's name) is not,
        and renaming it to ``Asyncstr`` would break the file.  A dotted annotation (``socket.socket``) is never
        taken for one: the planner twins only aliases named by a plain name (``migration._alias_definition``).
        """
        if not isinstance(node, cst.Name) or node.value.startswith("Async"):
            return False
        return node.value in self._existing or self._import_source(node.value) is not None

    def _alias_twin(self, node: cst.BaseExpression) -> cst.BaseExpression:
        name = dotted(node).rsplit(".", 1)[-1]
        twin = f"Async{name}"
        if isinstance(node, cst.Name) and name not in self._aliases:
            source = self._import_source(name)
            if source is not None:
                AddImportsVisitor.add_needed_import(self.context, source, twin)
        return replace_last_name(node, twin)

    def _import_source(self, name: str) -> Optional[str]:
        module = self.context.module
        if module is None:
            return None
        for stmt in module.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                        for alias in small.names:
                            if isinstance(alias.name, cst.Name) and alias.name.value == name:
                                mod = dotted(small.module) if small.module else ""
                                dots = "." * len(small.relative)
                                return f"{dots}{mod}" if not dots else self._absolute(dots, mod)
        return None

    def _absolute(self, dots: str, mod: str) -> Optional[str]:
        parts = self.plan.module.split(".")
        base = parts[: len(parts) - len(dots)] if len(dots) <= len(parts) else []
        return ".".join([*base, *([mod] if mod else [])]) or None
