"""``CastDriverParameters``: the comparisons the plan names get ``cast(literal(value), Column.type)``, and only
those, only for ``==``.  The golden trees (``fixtures/codemods/driver_casts/``: a PostgreSQL project rewritten,
the same project on SQLite left alone) run through ``fix`` in ``test_fix_trees.py``; what the planner picks
(NOT NULL integer columns against ``str`` values) is pinned in ``test_castable_picks_not_null_integer_columns``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from asyncmigrate.codemods.base import FilePlan
from asyncmigrate.codemods.driver_casts import CastDriverParameters


def rewrite(source: str, casts: dict) -> tuple[str, list[str]]:
    context = CodemodContext(scratch={"plan": FilePlan(driver_casts=casts)})
    module = CastDriverParameters(context).transform_module(cst.parse_module(textwrap.dedent(source)))
    module = AddImportsVisitor(context).transform_module(module)
    return module.code, context.warnings


SOURCE = '''
def f(db, token):
    a = q.filter(User.id == token.id)
    b = q.filter(token.id == User.id)
    c = q.filter(User.id != token.id)
    d = q.filter(User.id == token.id)
'''


def test_named_comparisons_get_the_cast_on_the_value_side() -> None:
    code, warnings = rewrite(SOURCE, {(3, 18): "right", (4, 18): "left", (5, 18): "right"})
    assert "q.filter(User.id == cast(literal(token.id), User.id.type))" in code
    assert "q.filter(cast(literal(token.id), User.id.type) == User.id)" in code
    assert "q.filter(User.id != token.id)" in code  # != compares None differently after a cast: never
    assert code.count("cast(") == 2  # line 6 is not in the plan
    assert "from sqlalchemy import cast, literal" in code and warnings == []


def test_a_module_that_binds_cast_otherwise_is_left_alone_and_reported() -> None:
    for binding in ("from typing import cast", "from app.sql import literal", "cast = None", "def literal(): ..."):
        source = binding + "\n" + SOURCE
        code, warnings = rewrite(source, {(4, 18): "right"})
        assert code == textwrap.dedent(source), binding
        assert len(warnings) == 1 and "binds `cast` or `literal`" in warnings[0], binding


def test_sqlalchemys_own_cast_is_reused() -> None:
    source = "from sqlalchemy import cast\n" + SOURCE
    code, _ = rewrite(source, {(4, 18): "right"})
    assert "User.id == cast(literal(token.id), User.id.type)" in code
    assert code.count("import") == 1 and "cast" in code.splitlines()[0] and "literal" in code.splitlines()[0]


def test_castable_picks_not_null_integer_columns(tmp_path: Path) -> None:
    """Through ``fix``'s planner: primary keys, ``nullable=False`` and ``Mapped[int]`` columns are cast; a
    nullable column, a ``Mapped[Optional[int]]`` one and an ``int`` value are not."""
    from asyncmigrate.api import analyse_paths
    from asyncmigrate.config import Config
    from asyncmigrate.migration import plan_migration

    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(textwrap.dedent('''
        from typing import Optional
        from sqlalchemy import Column, Integer
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

        class Base(DeclarativeBase):
            pass

        class User(Base):
            __tablename__ = "users"
            id = Column(Integer, primary_key=True)
            team = Column(Integer, nullable=False)
            owner = Column(Integer)
            age: Mapped[int] = mapped_column()
            boss: Mapped[Optional[int]] = mapped_column()
    '''))
    (app / "views.py").write_text(textwrap.dedent('''
        from sqlalchemy.orm import Session
        from .models import User

        def find(db: Session, key: str, number: int):
            return db.query(User).filter(User.id == key, User.team == key, User.owner == key,
                                         User.age == key, User.boss == key, User.id == number).all()
    '''))
    run = analyse_paths([str(tmp_path)], Config(), use_cache=False, need_analysis=True)
    plan = plan_migration(run.analysis, None, Config())
    casts = next(fp.driver_casts for path, fp in plan.files.items() if path.endswith("views.py"))
    lines = (app / "views.py").read_text().splitlines()
    picked = sorted(lines[line - 1][col - 1:].split(",")[0].split(")")[0] for line, col in casts)
    assert picked == ["User.age == key", "User.id == key", "User.team == key"]
