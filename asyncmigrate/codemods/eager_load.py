"""Relationships read after an async query load eagerly: ``relationship(..., lazy="selectin")`` (fixes ASM203).

Under ``AsyncSession`` a lazy load raises ``MissingGreenlet`` (SQLALCHEMY_ASYNC.md
§4).  The plan lists the relationships that converted code reads by name
(receivers known to be something else, such as a pydantic payload, are
excluded); this rewrite sets their loader strategy to ``selectin`` where they
are defined, so every query, ``get`` and ``refresh`` that loads the parent
loads them too, on the loop, without blocking.  An explicit ``lazy=`` other
than the default ``"select"`` is left alone and reported (``"dynamic"`` and
``"raise"`` need a human).

SQLModel's ``Relationship()`` takes no ``lazy=`` (a ``TypeError`` at import): there the strategy goes
into its ``sa_relationship_kwargs`` mapping, which is created, or extended when it is a dict literal
(``facts.SQLMODEL_RELATIONSHIP``).  A mapping that is not a literal, or ``sa_relationship=``, is
reported instead.
"""

from __future__ import annotations

import libcst as cst

from .. import facts
from .base import ScopedTransformer, callee_text

_DEFAULT = ("select", "True")
_EAGER = ("selectin", "joined", "subquery", "immediate")
_SELECTIN = cst.SimpleString('"selectin"')
_NO_SPACE = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


def _append(args: list[cst.Arg], arg: cst.Arg) -> list[cst.Arg]:
    args = list(args)
    if args and args[-1].comma == cst.MaybeSentinel.DEFAULT:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return [*args, arg]


def _sqlmodel_names(module: cst.Module) -> frozenset[str]:
    """How this module spells SQLModel's ``Relationship`` (``from sqlmodel import Relationship as R``,
    ``import sqlmodel``): top-level imports only."""
    package, name = facts.SQLMODEL_RELATIONSHIP.rsplit(".", 1)
    names: set[str] = set()
    for stmt in module.body:
        for small in getattr(stmt, "body", ()) if isinstance(stmt, cst.SimpleStatementLine) else ():
            if isinstance(small, cst.ImportFrom) and callee_text(small.module) == package \
                    and not isinstance(small.names, cst.ImportStar):
                names |= {(a.asname.name.value if a.asname else a.name.value) for a in small.names
                          if callee_text(a.name) == name}
            elif isinstance(small, cst.Import):
                names |= {f"{a.asname.name.value if a.asname else package}.{name}" for a in small.names
                          if callee_text(a.name) == package}
    return frozenset(names)


class EagerLoadRelationships(ScopedTransformer):
    DESCRIPTION = "load relationships read by async code with selectin"
    fixes = ("ASM203",)

    def visit_Module(self, node: cst.Module) -> None:
        self._sqlmodel = _sqlmodel_names(node)

    def _rewrite(self, target: str, value: cst.BaseExpression) -> cst.BaseExpression:
        wanted = self.plan.relationships.get(self.scope, frozenset())
        if target not in wanted or not isinstance(value, cst.Call):
            return value
        callee = callee_text(value.func) or ""
        if callee in self._sqlmodel:
            return self._sqlmodel_relationship(target, value)
        if callee.rsplit(".", 1)[-1] not in ("relationship", "Relationship"):
            return value
        for arg in value.args:
            if arg.keyword is not None and arg.keyword.value == "lazy":
                current = arg.value.evaluated_value if isinstance(arg.value, cst.SimpleString) else None
                if current in _EAGER:
                    return value
                if current == "select" or (isinstance(arg.value, cst.Name) and arg.value.value == "True"):
                    new_arg = arg.with_changes(value=_SELECTIN)
                    return value.with_changes(args=[new_arg if a is arg else a for a in value.args])
                self._needs_a_human(target, f"lazy={cst.Module([]).code_for_node(arg.value)}")
                return value
        return value.with_changes(args=_append(value.args, cst.Arg(keyword=cst.Name("lazy"), value=_SELECTIN,
                                                                     equal=_NO_SPACE)))

    def _sqlmodel_relationship(self, target: str, value: cst.Call) -> cst.Call:
        """``Relationship(...)`` of SQLModel: ``sa_relationship_kwargs={"lazy": "selectin"}``."""
        key = facts.SQLMODEL_RELATIONSHIP_KWARGS
        entry = cst.DictElement(cst.SimpleString('"lazy"'), _SELECTIN)
        for arg in value.args:
            name = arg.keyword.value if arg.keyword is not None else None
            if name == "sa_relationship" or (name is None and arg.star):
                self._needs_a_human(target, "Relationship(sa_relationship=...)" if name else "Relationship(**...)")
                return value
            if name != key:
                continue
            if not isinstance(arg.value, cst.Dict):
                self._needs_a_human(target, f"{key}={cst.Module([]).code_for_node(arg.value)}")
                return value
            for element in arg.value.elements:
                if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString) \
                        and element.key.evaluated_value == "lazy":
                    current = element.value.evaluated_value if isinstance(element.value, cst.SimpleString) else None
                    if current in _EAGER:
                        return value
                    if current == "select":
                        new_dict = arg.value.with_changes(elements=[
                            e.with_changes(value=_SELECTIN) if e is element else e for e in arg.value.elements])
                        return value.with_changes(args=[a.with_changes(value=new_dict) if a is arg else a
                                                        for a in value.args])
                    self._needs_a_human(target, f"{key} lazy={cst.Module([]).code_for_node(element.value)}")
                    return value
                if not isinstance(element, cst.DictElement):  # ``{**other}``: its lazy is not visible
                    self._needs_a_human(target, f"{key} with **")
                    return value
            elements = list(arg.value.elements)
            if elements and elements[-1].comma == cst.MaybeSentinel.DEFAULT:
                elements[-1] = elements[-1].with_changes(
                    comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            new_dict = arg.value.with_changes(elements=[*elements, entry])
            return value.with_changes(args=[a.with_changes(value=new_dict) if a is arg else a for a in value.args])
        return value.with_changes(args=_append(value.args, cst.Arg(keyword=cst.Name(key), value=cst.Dict([entry]),
                                                                     equal=_NO_SPACE)))

    def _needs_a_human(self, target: str, what: str) -> None:
        self.warn(f"{self.scope}.{target}: {what} is read by async code; it needs an explicit eager load "
                  "(selectinload) or awaitable_attrs")

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.Assign:
        if len(updated_node.targets) == 1 and isinstance(updated_node.targets[0].target, cst.Name):
            return updated_node.with_changes(value=self._rewrite(updated_node.targets[0].target.value, updated_node.value))
        return updated_node

    def leave_AnnAssign(self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign) -> cst.AnnAssign:
        if isinstance(updated_node.target, cst.Name) and updated_node.value is not None:
            return updated_node.with_changes(value=self._rewrite(updated_node.target.value, updated_node.value))
        return updated_node
