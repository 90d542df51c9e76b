"""Relationships read after an async query load eagerly: ``relationship(..., lazy="selectin")`` (fixes ASM203).

Under ``AsyncSession`` a lazy load raises ``MissingGreenlet`` (SQLALCHEMY_ASYNC.md
§4).  The plan lists the relationships that converted code reads by name
(receivers known to be something else, such as a pydantic payload, are
excluded); this rewrite sets their loader strategy to ``selectin`` where they
are defined, so every query, ``get`` and ``refresh`` that loads the parent
loads them too, on the loop, without blocking.  An explicit ``lazy=`` other
than the default ``"select"`` is left alone and reported (``"dynamic"`` and
``"raise"`` need a human).
"""

from __future__ import annotations

import libcst as cst

from .base import ScopedTransformer, callee_text

_DEFAULT = ("select", "True")


class EagerLoadRelationships(ScopedTransformer):
    DESCRIPTION = "load relationships read by async code with selectin"
    fixes = ("ASM203",)

    def _rewrite(self, target: str, value: cst.BaseExpression) -> cst.BaseExpression:
        wanted = self.plan.relationships.get(self.scope, frozenset())
        if target not in wanted or not isinstance(value, cst.Call):
            return value
        if (callee_text(value.func) or "").rsplit(".", 1)[-1] not in ("relationship", "Relationship"):
            return value
        for arg in value.args:
            if arg.keyword is not None and arg.keyword.value == "lazy":
                current = arg.value.evaluated_value if isinstance(arg.value, cst.SimpleString) else None
                if current in ("selectin", "joined", "subquery", "immediate"):
                    return value
                if current == "select" or (isinstance(arg.value, cst.Name) and arg.value.value == "True"):
                    new_arg = arg.with_changes(value=cst.SimpleString('"selectin"'))
                    return value.with_changes(args=[new_arg if a is arg else a for a in value.args])
                self.warn(f"{self.scope}.{target}: lazy={cst.Module([]).code_for_node(arg.value)} is read by async "
                          "code; it needs an explicit eager load (selectinload) or awaitable_attrs")
                return value
        args = list(value.args)
        if args and args[-1].comma == cst.MaybeSentinel.DEFAULT:
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        args.append(cst.Arg(keyword=cst.Name("lazy"), value=cst.SimpleString('"selectin"'),
                            equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                                  whitespace_after=cst.SimpleWhitespace(""))))
        return value.with_changes(args=args)

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.Assign:
        if len(updated_node.targets) == 1 and isinstance(updated_node.targets[0].target, cst.Name):
            return updated_node.with_changes(value=self._rewrite(updated_node.targets[0].target.value, updated_node.value))
        return updated_node

    def leave_AnnAssign(self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign) -> cst.AnnAssign:
        if isinstance(updated_node.target, cst.Name) and updated_node.value is not None:
            return updated_node.with_changes(value=self._rewrite(updated_node.target.value, updated_node.value))
        return updated_node
