"""Shared pieces of every rewrite: the per-file plan and a scope-tracking transformer.

A codemod never decides on its own what a session is or which functions
become async: the project pass (``analysis/``) decides once, for the whole
tree, and hands each file a :class:`FilePlan` through
``context.scratch["plan"]``.  Codemods only change syntax, schedule imports
with ``AddImportsVisitor`` and report what they leave alone with
``self.warn(...)``; they never print.

Scope names follow ``analysis/index.py``: ``"<module>"`` at module level,
``"func"``, ``"Class.method"``, ``"outer.<locals>.inner"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import FrozenSet, Mapping, Optional, Sequence

import libcst as cst
from libcst.codemod import CodemodContext, ContextAwareTransformer

MODULE_SCOPE = "<module>"


@dataclass(frozen=True)
class FilePlan:
    """What the project pass decided for one file."""

    module: str = ""
    #: scope qualname -> receivers (dotted source text: "db", "self.db", "self.session") that are SYNC sessions
    #: which this migration turns into AsyncSession
    sessions: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: scope qualnames whose ``def`` becomes ``async def`` (project functions that now await)
    make_async: FrozenSet[str] = frozenset()
    #: scope qualname -> dotted callee texts whose calls must be awaited there ("helper", "self.sync", "svc.run")
    await_calls: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: scope qualname -> dotted callee texts to wrap as ``asyncio.run(...)`` (sync entry points)
    run_calls: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: names of the async counterparts, as the ``database`` rewrite creates them
    async_engine: str = "async_engine"
    async_session_factory: str = "AsyncSessionLocal"
    async_dependency: str = "get_async_db"
    #: module that defines the async session factory and dependency (for imports), e.g. "app.database"
    database_module: Optional[str] = None
    #: sync session factory names known in this project (``SessionLocal``), as used in this file
    sync_factories: FrozenSet[str] = frozenset()
    #: sync session dependency names (``get_db``), as used in this file
    sync_dependencies: FrozenSet[str] = frozenset()
    #: relationship names per mapped class, for eager loading: class name -> {attr: is_collection}
    relationships: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    #: SQLModel project: ``select`` must come from ``sqlmodel`` (SQLALCHEMY_ASYNC.md §6)
    sqlmodel: bool = False
    #: sync engine references (dotted source text: "engine", "database.engine") as used in this file; when
    #: empty, the ``database`` rewrites fall back to evidence in the file (``create_engine`` results, names
    #: imported from ``database_module`` and used as an engine)
    sync_engines: FrozenSet[str] = frozenset()

    def is_session(self, scope: str, dotted_text: Optional[str]) -> bool:
        if dotted_text is None:
            return False
        return dotted_text in self.sessions.get(scope, frozenset())


def plan_of(context: CodemodContext) -> FilePlan:
    plan = context.scratch.get("plan")
    return plan if isinstance(plan, FilePlan) else FilePlan()


def dotted(node: cst.BaseExpression) -> Optional[str]:
    """``a.b.c`` for Name/Attribute chains, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


class ScopedTransformer(ContextAwareTransformer):
    """A transformer that knows the qualified name of the scope it is in."""

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._scope: list[tuple[str, str]] = []  # (kind, name)

    @property
    def plan(self) -> FilePlan:
        return plan_of(self.context)

    @staticmethod
    def _qualname(frames: Sequence[tuple[str, str]]) -> str:
        if not frames:
            return MODULE_SCOPE
        parts: list[str] = []
        for i, (kind, name) in enumerate(frames):
            parts.append(name)
            if kind == "def" and i + 1 < len(frames):
                parts.append("<locals>")
        return ".".join(parts)

    @property
    def scope(self) -> str:
        """Qualified name of the innermost scope (class or function)."""
        return self._qualname(self._scope)

    @property
    def in_function(self) -> bool:
        return any(kind == "def" for kind, _ in self._scope)

    @property
    def function_scope(self) -> str:
        """Qualified name of the innermost enclosing *function*, or ``<module>``."""
        for i in range(len(self._scope) - 1, -1, -1):
            if self._scope[i][0] == "def":
                return self._qualname(self._scope[: i + 1])
        return MODULE_SCOPE

    def visit_ClassDef(self, node: cst.ClassDef) -> Optional[bool]:
        self._scope.append(("class", node.name.value))
        return True

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.BaseStatement:
        self._scope.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> Optional[bool]:
        self._scope.append(("def", node.name.value))
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        self._scope.pop()
        return updated_node


def parenthesize(node: cst.BaseExpression) -> cst.BaseExpression:
    """Wrap ``node`` in parentheses (for ``(await x).attr``)."""
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def await_(node: cst.BaseExpression) -> cst.Await:
    return cst.Await(expression=node)


def awaited_then(node: cst.BaseExpression) -> cst.BaseExpression:
    """``(await node)``, ready to have attributes chained on it."""
    return parenthesize(cst.Await(expression=node))


def names_of(items: Sequence[str]) -> FrozenSet[str]:
    return frozenset(items)
