"""An integer column compared with a ``str`` value gets a database-side cast, which asyncpg needs (ASM207).

psycopg2 sends parameters as text and PostgreSQL casts them, so ``User.id == token.id`` with a ``str`` token id
works today; asyncpg sends typed parameters and the same query raises ``operator does not exist: integer =
character varying`` (issue 9, class 10; ``rules/driver_types.py``).  When the migration moves the project to
asyncpg, each such ``==`` in a converted function becomes ``User.id == cast(literal(token.id), User.id.type)``:
``literal()`` binds the value with the type of what it holds at run time (``CAST($1::VARCHAR AS INTEGER)``
for a ``str``, ``CAST($1::INTEGER AS INTEGER)`` for an ``int``), and PostgreSQL casts it as it did for
psycopg2, with the same error for a value that is not a number (``tests/facts/test_driver_casts.py``
checks all three on asyncpg).  Only columns that cannot be NULL are rewritten, so a ``None`` value finds
nothing before and after (``IS NULL`` and ``= NULL`` agree there); ``!=`` and nullable columns stay reported
only.  The positions come from the original file, so this rewrite runs first in the pipeline.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import PositionProvider

from .base import ScopedTransformer, dotted, names_bound_by

#: modules ``cast``/``literal`` may come from without meaning something else
_SQLALCHEMY = frozenset({"sqlalchemy", "sqlalchemy.sql", "sqlalchemy.sql.expression", "sqlmodel"})


class _Bindings(cst.CSTVisitor):
    """Whether the module binds ``cast`` or ``literal`` to something other than SQLAlchemy's."""

    def __init__(self) -> None:
        self.foreign = False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar):
            source = dotted(node.module) if node.module is not None and not node.relative else None
            self.foreign |= any((a.evaluated_alias or a.evaluated_name) in ("cast", "literal")
                                and not (source in _SQLALCHEMY and a.evaluated_name == (a.evaluated_alias or
                                                                                         a.evaluated_name))
                                for a in node.names)
        elif not isinstance(node, (cst.ImportFrom, cst.Import)):
            self.foreign |= bool(names_bound_by(node) & {"cast", "literal"})
        return True


class CastDriverParameters(ScopedTransformer):
    DESCRIPTION = "cast str values compared with integer columns in the database (asyncpg sends typed parameters)"
    METADATA_DEPENDENCIES = (PositionProvider,)
    fixes = ("ASM207",)

    def visit_Module(self, node: cst.Module) -> None:
        bindings = _Bindings()
        node.visit(bindings)
        self._free = not bindings.foreign

    def leave_Comparison(self, original_node: cst.Comparison, updated_node: cst.Comparison) -> cst.BaseExpression:
        casts = self.plan.driver_casts
        if not casts:
            return updated_node
        start = self.get_metadata(PositionProvider, original_node).start
        side = casts.get((start.line, start.column + 1))
        if side is None or len(updated_node.comparisons) != 1 \
                or not isinstance(updated_node.comparisons[0].operator, cst.Equal):
            return updated_node
        target = updated_node.comparisons[0]
        column, value = (updated_node.left, target.comparator) if side == "right" else (target.comparator,
                                                                                         updated_node.left)
        if not self._free:
            self.warn(f"line {start.line}: `{self.code(original_node)}` needs a database-side cast under asyncpg, "
                      "and this module binds `cast` or `literal` to something else: write "
                      "`sqlalchemy.cast(sqlalchemy.literal(value), Column.type)` by hand")
            return updated_node
        AddImportsVisitor.add_needed_import(self.context, "sqlalchemy", "cast")
        AddImportsVisitor.add_needed_import(self.context, "sqlalchemy", "literal")
        column_type = cst.Attribute(value=column.with_changes(lpar=[], rpar=[]), attr=cst.Name("type"))
        cast = cst.Call(func=cst.Name("cast"), args=[
            cst.Arg(cst.Call(func=cst.Name("literal"), args=[cst.Arg(value.with_changes(lpar=[], rpar=[]))]),
                    comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            cst.Arg(column_type)])
        if side == "right":
            return updated_node.with_changes(comparisons=[target.with_changes(comparator=cast)])
        return updated_node.with_changes(left=cast)

    def code(self, node: cst.CSTNode) -> str:
        return cst.Module(body=[]).code_for_node(node)
