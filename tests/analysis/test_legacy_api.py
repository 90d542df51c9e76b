"""analysis/legacy_api.py: SQLAlchemy 1.4-only API, found by what the receiver or callee is, not by its name."""

from __future__ import annotations

from asyncmigrate.analysis.legacy_api import (AUTOCOMMIT, ENGINE_METHOD, LIST_ARGUMENT, METADATA_BIND, TEXTUAL_SQL,
                                              legacy_uses, pin_blockers)
from tests.helpers import analyse

DB = """
from sqlalchemy import MetaData, create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite://")
SessionLocal = sessionmaker(bind=engine, autocommit=False)
"""


def uses(files):
    return sorted((u.path, u.line, u.kind, u.receiver or u.callee) for u in legacy_uses(analyse(files).project))


def test_string_sql_on_sessions_that_stay_sync_and_on_connections():
    found = uses({
        "app/__init__.py": "",
        "app/db.py": DB,
        "app/pre_start.py": """
from app.db import SessionLocal, engine


def init():
    db = SessionLocal()
    db.execute("SELECT 1")
    db.execute(f"SELECT {1}")
    with engine.connect() as conn:
        conn.execute('SELECT 2')
    other = engine.begin()
    other.execute("SELECT 3")
""",
    })
    assert found == [
        ("app/pre_start.py", 7, TEXTUAL_SQL, "db"),
        ("app/pre_start.py", 8, TEXTUAL_SQL, "db"),
        ("app/pre_start.py", 10, TEXTUAL_SQL, "conn"),
        ("app/pre_start.py", 12, TEXTUAL_SQL, "other"),
    ]


def test_what_is_not_a_session_or_not_a_string_is_left():
    found = uses({
        "app/__init__.py": "",
        "app/db.py": DB,
        "app/jobs.py": """
import sqlite3
from sqlalchemy import text
from app.db import SessionLocal

STATEMENT = "SELECT 1"


def job(cursor):
    db = SessionLocal()
    db.execute(text("SELECT 1"))
    db.execute(STATEMENT)
    sqlite3.connect(":memory:").execute("SELECT 1")
    cursor.execute("SELECT 1")
""",
    })
    assert found == []


def test_list_arguments_resolve_through_imports():
    found = uses({
        "app/__init__.py": "",
        "app/q.py": """
import sqlalchemy as sa
from sqlalchemy import case, select
from sqlalchemy.sql import select as sql_select

LEVEL = case([(1 == 1, "x")], else_="y")


def f(t):
    select([t.c.a])
    sa.select([t.c.a]).where(sa.case([(t.c.a == 1, 2)]) == 2)
    sql_select([t.c.a])
    select(t.c.a)


def g(select):
    return select([1])
""",
    })
    assert found == [
        ("app/q.py", 6, LIST_ARGUMENT, "case"),
        ("app/q.py", 10, LIST_ARGUMENT, "select"),
        ("app/q.py", 11, LIST_ARGUMENT, "sa.case"),
        ("app/q.py", 11, LIST_ARGUMENT, "sa.select"),
        ("app/q.py", 12, LIST_ARGUMENT, "sql_select"),
    ]


def test_blockers_are_what_no_rewrite_changes():
    analysis = analyse({
        "app/__init__.py": "",
        "app/db.py": DB + """
metadata = MetaData(bind=engine)
Audit = sessionmaker(bind=engine, autocommit=True)


def vacuum():
    engine.execute("VACUUM")
    return engine.table_names()


def ping():
    SessionLocal().execute("SELECT 1")
""",
    })
    found = legacy_uses(analysis.project)
    assert [(u.line, u.kind) for u in found] == [(8, METADATA_BIND), (9, AUTOCOMMIT), (13, ENGINE_METHOD),
                                                 (14, ENGINE_METHOD), (18, TEXTUAL_SQL)]
    assert found[-1].receiver == "SessionLocal()"  # the codemod finds the receiver by this text
    assert pin_blockers(found) == found[:-1]
    assert all("2.0" in u.message for u in found)
