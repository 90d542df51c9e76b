"""Small syntax helpers shared by the database rewrites: module-level code, bindings, layout, edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence, Union

import libcst as cst

from asyncmigrate.codemods.base import dotted

Statement = Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]


def expr(text: str) -> cst.BaseExpression:
    return cst.parse_expression(text)


def kwarg(name: str, value: cst.BaseExpression) -> cst.Arg:
    return cst.Arg(
        keyword=cst.Name(name),
        value=value,
        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
    )


def relayout(original: cst.Call, args: Sequence[cst.Arg]) -> list[cst.Arg]:
    """``args`` laid out the way ``original``'s arguments were: one line, or one per line, trailing comma kept."""
    if not args:
        return []
    sep: cst.BaseParenthesizableWhitespace = cst.SimpleWhitespace(" ")
    for arg in original.args[:-1]:
        if isinstance(arg.comma, cst.Comma):
            sep = arg.comma.whitespace_after
            break
    last = original.args[-1] if original.args else None
    out: list[cst.Arg] = []
    for i, arg in enumerate(args):
        if i < len(args) - 1:
            out.append(
                arg.with_changes(
                    comma=cst.Comma(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=sep),
                    whitespace_after_arg=cst.SimpleWhitespace(""),
                )
            )
        elif last is not None:
            out.append(arg.with_changes(comma=last.comma, whitespace_after_arg=last.whitespace_after_arg))
        else:
            out.append(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT))
    return out


def pad_blank_lines(stmt: Statement, count: int = 2) -> Statement:
    """``stmt`` with at least ``count`` blank lines before it (before its own comments)."""
    lines = list(stmt.leading_lines)
    blank = 0
    while blank < len(lines) and lines[blank].comment is None:
        blank += 1
    if blank >= count:
        return stmt
    return stmt.with_changes(leading_lines=[cst.EmptyLine()] * (count - blank) + lines)


def body_of(stmt: cst.BaseCompoundStatement) -> Iterator[cst.BaseStatement]:
    """Statements of every block of a compound statement (not descending into functions or classes)."""
    blocks: list[cst.BaseSuite] = []
    if isinstance(stmt, (cst.If, cst.With, cst.For, cst.While)):
        blocks.append(stmt.body)
        orelse = getattr(stmt, "orelse", None)
        if isinstance(orelse, cst.If):
            yield orelse
        elif isinstance(orelse, cst.Else):
            blocks.append(orelse.body)
    elif isinstance(stmt, (cst.Try, cst.TryStar)):
        blocks.append(stmt.body)
        blocks.extend(h.body for h in stmt.handlers)
        if stmt.orelse is not None:
            blocks.append(stmt.orelse.body)
        if stmt.finalbody is not None:
            blocks.append(stmt.finalbody.body)
    for block in blocks:
        if isinstance(block, cst.IndentedBlock):
            yield from block.body
        else:  # SimpleStatementSuite: ``if x: a = 1``
            yield cst.SimpleStatementLine(body=block.body)


def module_level(module: cst.Module) -> Iterator[tuple[cst.BaseStatement, cst.BaseStatement]]:
    """``(statement, top-level statement holding it)`` for code that runs at import time."""

    def walk(stmt: cst.BaseStatement, top: cst.BaseStatement) -> Iterator[tuple[cst.BaseStatement, cst.BaseStatement]]:
        yield stmt, top
        if isinstance(stmt, cst.BaseCompoundStatement) and not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            for inner in body_of(stmt):
                yield from walk(inner, top)

    for top in module.body:
        yield from walk(top, top)


def assignment(small: cst.BaseSmallStatement) -> Optional[tuple[str, cst.BaseExpression]]:
    """``(name, value)`` of ``name = value`` / ``name: T = value``."""
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
        return small.targets[0].target.value, small.value
    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value is not None:
        return small.target.value, small.value
    return None


def bound_names(module: cst.Module) -> dict[str, list[cst.CSTNode]]:
    """Every name bound at module level, with the nodes that bind it."""
    names: dict[str, list[cst.CSTNode]] = {}
    for stmt, _ in module_level(module):
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            names.setdefault(stmt.name.value, []).append(stmt)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                pair = assignment(small)
                if pair is not None:
                    names.setdefault(pair[0], []).append(small)
                elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                    for alias in small.names:
                        names.setdefault(alias.evaluated_alias or alias.evaluated_name, []).append(small)
                elif isinstance(small, cst.Import):
                    for alias in small.names:
                        bound = alias.evaluated_alias or alias.evaluated_name.split(".")[0]
                        names.setdefault(bound, []).append(small)
    return names


def assigned(binders: list[cst.CSTNode]) -> bool:
    return any(isinstance(b, (cst.Assign, cst.AnnAssign)) for b in binders)


def import_source(module: cst.Module, name: str) -> Optional[tuple[str, int, str]]:
    """``(module, relative level, imported name)`` of a module-level ``from M import X [as name]``."""
    for stmt, _ in module_level(module):
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if (alias.evaluated_alias or alias.evaluated_name) == name:
                        mod = dotted(small.module) if small.module is not None else ""
                        return mod or "", len(small.relative), alias.evaluated_name
    return None


def bind_arg(call: cst.Call) -> Optional[cst.Arg]:
    """The first positional or ``bind=`` argument: the engine of ``sessionmaker``/``Session``/``create_all``."""
    for i, arg in enumerate(call.args):
        if (arg.keyword is None and i == 0 and not arg.star) or (arg.keyword and arg.keyword.value == "bind"):
            return arg
    return None


def bind_of(call: cst.Call) -> Optional[str]:
    """The engine a ``sessionmaker(...)`` / ``Session(...)`` binds, as dotted text."""
    arg = bind_arg(call)
    return dotted(arg.value) if arg is not None else None


def first_arg_is(call: cst.BaseExpression, name: str) -> bool:
    if not isinstance(call, cst.Call) or not call.args or call.args[0].keyword is not None:
        return False
    return dotted(call.args[0].value) == name


def with_first_arg(call: cst.Call, value: cst.BaseExpression) -> cst.Call:
    return call.with_changes(args=[call.args[0].with_changes(value=value), *call.args[1:]])


def is_generator(fn: cst.FunctionDef) -> bool:
    """``fn`` itself yields (not a function or lambda nested in it)."""

    class _Yields(cst.CSTVisitor):
        found = False

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is fn

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

        def visit_Yield(self, node: cst.Yield) -> None:
            self.found = True

    v = _Yields()
    fn.visit(v)
    return v.found


def free_name(base: str, taken: frozenset[str]) -> str:
    name = base
    while name in taken:
        name += "_"
    return name


@dataclass
class Edits:
    """Statements to insert around nodes and decorators to add, keyed by the ``id`` of the original node.

    The database rewrites decide everything on the whole module first, then apply it in ``on_leave``.
    """

    before: dict[int, list[Statement]] = field(default_factory=dict)
    after: dict[int, list[Statement]] = field(default_factory=dict)
    decorators: dict[int, list[cst.Decorator]] = field(default_factory=dict)
    replace: dict[int, cst.CSTNode] = field(default_factory=dict)

    def add_after(self, node: cst.CSTNode, *stmts: Statement) -> None:
        self.after.setdefault(id(node), []).extend(stmts)

    def apply(self, original_node: cst.CSTNode, result):  # type: ignore[no-untyped-def]
        """``result`` (the updated ``original_node``) with this node's edits applied."""
        key = id(original_node)
        if key in self.replace:
            return self.replace[key]
        if key in self.decorators and isinstance(result, cst.FunctionDef):
            result = result.with_changes(decorators=[*self.decorators[key], *result.decorators])
        before, after = self.before.get(key), self.after.get(key)
        if before or after:
            assert isinstance(result, cst.BaseStatement)
            if before:
                result = pad_blank_lines(result)
            return cst.FlattenSentinel([*(before or []), result, *(after or [])])
        return result
