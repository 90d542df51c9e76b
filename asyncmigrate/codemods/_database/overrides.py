"""Syntax of dependency overrides and patches in test code, for the ``tests`` rewrite (``test_overrides``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import libcst as cst
import libcst.matchers as m

from asyncmigrate.codemods.base import dotted

#: ``app.dependency_overrides``: FastAPI's mapping from a dependency to its replacement
OVERRIDES = "dependency_overrides"


@dataclass
class Scope:
    """Functions defined in one block of test code, for resolving an override value by name."""

    defs: dict[str, cst.FunctionDef]
    module_level: bool
    taken: set[str] = field(default_factory=set)
    #: every name the enclosing function uses: a twin defined in it must not shadow one (``session``)
    used: frozenset[str] = frozenset()

    def session_var(self) -> str:
        return "async_session" if "session" in self.used else "session"


def source_text(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def statements_of(suite: cst.BaseSuite) -> Sequence[cst.BaseStatement]:
    return suite.body if isinstance(suite, cst.IndentedBlock) else ()


def inner_blocks(stmt: cst.BaseCompoundStatement) -> list[Sequence[cst.BaseStatement]]:
    """The blocks of ``if``/``with``/``for``/``while``/``try`` (every branch)."""
    blocks = [statements_of(stmt.body), *(statements_of(h.body) for h in getattr(stmt, "handlers", ()))]
    for attr in ("orelse", "finalbody"):
        other = getattr(stmt, attr, None)
        if isinstance(other, cst.If):
            blocks += inner_blocks(other)
        elif other is not None:
            blocks.append(statements_of(other.body))
    return blocks


def session_opener(fn: cst.FunctionDef) -> Optional[str]:
    """The callee that creates the session ``fn`` yields or returns (``TestingSessionLocal``), if it makes one."""
    handed: set[str] = set()
    for node in m.findall(fn.body, m.Yield() | m.Return()):
        value = node.value  # type: ignore[attr-defined]
        if isinstance(value, cst.Call):
            return dotted(value.func)
        if isinstance(value, cst.Name):
            handed.add(value.value)
    for node in m.findall(fn.body, m.Assign(targets=[m.AssignTarget(m.Name())], value=m.Call())):
        assert isinstance(node, cst.Assign) and isinstance(node.value, cst.Call)
        if node.targets[0].target.value in handed:  # type: ignore[attr-defined]
            return dotted(node.value.func)
    for node in m.findall(fn.body, m.WithItem(item=m.Call(), asname=m.AsName(name=m.Name()))):
        assert isinstance(node, cst.WithItem) and isinstance(node.item, cst.Call) and node.asname is not None
        if node.asname.name.value in handed:  # type: ignore[attr-defined]
            return dotted(node.item.func)
    return None


def pad_unindented(stmt: cst.BaseStatement, count: int) -> cst.BaseStatement:
    """``stmt`` with at least ``count`` blank lines before it (unindented, so no trailing whitespace)."""
    lines = list(stmt.leading_lines)
    blank = next((i for i, line in enumerate(lines) if line.comment is not None), len(lines))
    return stmt.with_changes(leading_lines=[cst.EmptyLine(indent=False)] * max(0, count - blank) + lines)


def is_overrides_item(node: cst.BaseExpression) -> bool:
    return m.matches(node, m.Subscript(value=m.Attribute(attr=m.Name(OVERRIDES))))


def positional(call: cst.Call) -> list[cst.Arg]:
    return [a for a in call.args if a.keyword is None and not a.star]


def setattr_target(call: cst.Call) -> Optional[tuple[str, str]]:
    """``(target, attribute)`` of ``monkeypatch.setattr(mod, "Name", v)``, ``setattr(mod, "Name", v)`` and
    ``monkeypatch.setattr("pkg.mod.Name", v)``."""
    if not (m.matches(call.func, m.Attribute(value=m.Name(), attr=m.Name("setattr")))
            or m.matches(call.func, m.Name("setattr"))):
        return None
    args = positional(call)
    if len(args) == 2 and isinstance(call.func, cst.Attribute) and isinstance(args[0].value, cst.SimpleString):
        path = args[0].value.evaluated_value
        if isinstance(path, str) and "." in path:
            where, _, attr = path.rpartition(".")
            return where, attr
    if len(args) == 3 and isinstance(args[1].value, cst.SimpleString):
        attr = args[1].value.evaluated_value
        if isinstance(attr, str):
            return source_text(args[0].value), attr
    return None


def retarget(node: cst.SimpleString, attr: str) -> cst.SimpleString:
    """``"app.tasks.SessionLocal"`` -> ``"app.tasks.AsyncSessionLocal"`` in the same quotes."""
    value = node.evaluated_value
    assert isinstance(value, str)
    return node.with_changes(value=node.prefix + node.quote + value.rpartition(".")[0] + "." + attr + node.quote)
