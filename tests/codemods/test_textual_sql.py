"""``TextualSqlToText``: plain-string SQL on a converted session becomes ``text(...)``, and only there.

The multi-file golden tree (``fixtures/codemods/textual_sql/``) runs through ``fix`` and on aiosqlite in
``test_fix_trees.py``; these cases pin the edges with a hand-made plan (``db`` converted in ``f``).
"""

from __future__ import annotations

import textwrap

import libcst as cst
from libcst.codemod import CodemodContext

from asyncmigrate.codemods.base import FilePlan
from asyncmigrate.codemods.textual_sql import TextualSqlToText
from libcst.codemod.visitors import AddImportsVisitor


def rewrite(source: str) -> tuple[str, list[str]]:
    context = CodemodContext(scratch={"plan": FilePlan(sessions={"f": frozenset({"db"})})})
    module = TextualSqlToText(context).transform_module(cst.parse_module(textwrap.dedent(source)))
    module = AddImportsVisitor(context).transform_module(module)
    return module.code, context.warnings


def test_literals_are_wrapped_and_text_imported() -> None:
    code, warnings = rewrite('''
        def f(db, other, sql):
            db.execute("SELECT 1")
            db.scalar(statement=f"SELECT {sql}")
            db.execute(sql)
            other.execute("SELECT 2")
    ''')
    assert 'db.execute(text("SELECT 1"))' in code
    assert 'db.scalar(statement=text(f"SELECT {sql}"))' in code
    assert "db.execute(sql)" in code  # a variable: it may hold a statement
    assert 'other.execute("SELECT 2")' in code  # not a converted session (a cursor, asyncpg...)
    assert "from sqlalchemy import text" in code and warnings == []


def test_a_module_that_binds_text_otherwise_is_left_alone_and_reported() -> None:
    for binding in ("from app.utils import text", "text = 'x'", "def text(): ...", "import textwrap as text",
                    "with open('f') as text: ...", "try: ...\nexcept ValueError as text: ...",
                    "names = [text for text in 'ab']", "for text in 'ab': ..."):
        source = f'{binding}\n\ndef f(db):\n    db.execute("SELECT 1")\n'
        code, warnings = rewrite(source)
        assert code == source, binding
        assert len(warnings) == 1 and "binds `text`" in warnings[0], binding


def test_sqlalchemys_own_text_is_reused() -> None:
    code, warnings = rewrite('from sqlalchemy import text\n\ndef f(db):\n    db.execute("SELECT 1")\n')
    assert code == 'from sqlalchemy import text\n\ndef f(db):\n    db.execute(text("SELECT 1"))\n'
