"""Plain-string SQL given to a session or connection is wrapped in ``text()`` (fixes the 1.4 idiom under 2.0).

SQLAlchemy 2.0 refuses a plain string as a statement: ``session.execute("SELECT 1")`` raises
``ArgumentError: Textual SQL expression 'SELECT 1' should be explicitly declared as text('SELECT 1')``,
on ``AsyncSession`` as on ``Session`` (``facts.TEXTUAL_SQL_METHODS``, checked in tests/facts).  1.4
projects do it often (a health check, a raw report query), and a migration that raises the pin to 2.0
would still fail at run time, on the sessions it converts and on those that stay sync alike.  On a
session the plan converts, and on every receiver ``FilePlan.sql_receivers`` lists (sessions that stay
sync, connections: ``analysis/legacy_api.py``), a string literal (an f-string too) passed as the
statement becomes ``text("...")`` (1.4 accepts it too), and ``from sqlalchemy import text`` is added.
Where the module already binds ``text`` to something else, nothing changes and a warning says why;
a string held in a variable cannot be told from a statement and is left alone.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor

from .. import facts
from .base import ScopedTransformer, callee_text, dotted, names_bound_by, names_in

_STRING = (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)
#: where ``text`` may come from without shadowing SQLAlchemy's
_TEXT_SOURCES = frozenset({"sqlalchemy", "sqlalchemy.sql", "sqlalchemy.sql.expression", "sqlmodel"})


class _TextBindings(cst.CSTVisitor):
    """Whether the module binds ``text`` to anything but SQLAlchemy's ``text`` (an import, a def, a name)."""

    def __init__(self) -> None:
        self.foreign = False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar):
            source = dotted(node.module) if node.module is not None and not node.relative else None
            self.foreign |= any((a.evaluated_alias or a.evaluated_name) == "text"
                                and not (source in _TEXT_SOURCES and a.evaluated_name == "text") for a in node.names)
        elif isinstance(node, cst.Param):
            self.foreign |= node.name.value == "text"
        elif isinstance(node, cst.CompFor):
            self.foreign |= any(n.value == "text" for n in names_in(node.target))
        else:
            self.foreign |= "text" in names_bound_by(node)
        return True


class TextualSqlToText(ScopedTransformer):
    DESCRIPTION = "wrap plain-string SQL given to a session or connection in text()"
    fixes = ()

    def visit_Module(self, node: cst.Module) -> None:
        bindings = _TextBindings()
        node.visit(bindings)
        self._text_is_free = not bindings.foreign

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = original_node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value in facts.TEXTUAL_SQL_METHODS
                and (self.plan.is_session(self.function_scope, dotted(func.value))
                     or self.plan.takes_text(self.function_scope, callee_text(func.value)))):
            return updated_node
        first = _statement_arg(updated_node)
        if first is None or not isinstance(first.value, _STRING):
            return updated_node
        if not self._text_is_free:
            self.warn(f"`{dotted(func)}()` is given plain-string SQL, which SQLAlchemy 2.0 refuses; this module "
                      "binds `text` to something else: wrap it in sqlalchemy.text() by hand")
            return updated_node
        AddImportsVisitor.add_needed_import(self.context, "sqlalchemy", "text")
        wrapped = first.with_changes(value=cst.Call(func=cst.Name("text"), args=[cst.Arg(first.value)]))
        return updated_node.with_changes(args=[wrapped if a is first else a for a in updated_node.args])


def _statement_arg(call: cst.Call) -> Optional[cst.Arg]:
    """The statement argument: the first positional one, or ``statement=``."""
    for arg in call.args:
        if arg.keyword is None and not arg.star:
            return arg
        if arg.keyword is not None and arg.keyword.value == "statement":
            return arg
    return None
