"""The name-only fallback (``db``, ``session``, ``s``...): where a name is evidence, and where it is not.

A name is a session only in a project that uses SQLAlchemy, and never for a value whose provenance shows it
is something else (``with listener.accept()[0] as s``, ``db = sqlite3.connect(p)``).  ``fix`` converts a
name-only receiver only when a method the scan reports is called on it (never on ``db.close()`` alone).
Found by running ``fix --diff`` over the standard library (tests/robustness/test_fix_stdlib.py).
"""

from __future__ import annotations

from asyncmigrate.analysis.findings import analyze
from asyncmigrate.analysis.sessions import Settings
from asyncmigrate.config import Config
from asyncmigrate.migration import Planner, plan_migration
from asyncmigrate.rules.base import all_rules
from tests.helpers import analyse, findings, summaries

HANDLER = """
async def handler(db):
    db.query(User).all()
    db.commit()
"""


def codes(fs) -> list[tuple[str, int, str]]:
    return sorted((f.path, f.span.line, f.code) for f in fs if f.code.startswith("ASM1"))


# ---------------------------------------------------------------- the project must use SQLAlchemy
def test_a_name_is_no_evidence_in_a_project_without_sqlalchemy():
    assert findings({"app/routes.py": HANDLER}) == []
    # the same code in a project where any module imports SQLAlchemy: real sessions, by name
    fs = findings({"app/routes.py": HANDLER, "app/models.py": "from sqlalchemy.orm import DeclarativeBase\n"})
    assert [(f.code, f.evidence) for f in fs] == [("ASM110", "name-only"), ("ASM120", "name-only")]


def test_configured_session_names_count_without_sqlalchemy_imports():
    rules = [cls() for cls in all_rules().values()]
    settings = Settings(session_names=frozenset({"db"}))
    fs = analyze(summaries({"app/routes.py": HANDLER}), rules=rules, settings=settings).result.findings
    assert [(f.code, f.evidence) for f in fs] == [("ASM110", "name-only"), ("ASM120", "name-only")]


def test_fix_plans_nothing_for_session_names_in_a_project_without_sqlalchemy():
    # the standard library's ``multiprocessing/forkserver.py`` and ``idlelib/pyshell.py``, in small
    plan = plan_migration(analyse({"lib/server.py": """
        import socket

        def serve(listener):
            with listener.accept()[0] as s:
                s.sendall(b"x")
                s.close()

        class Shell:
            def close_debugger(self):
                db = self.interp.getdebugger()
                if db:
                    db.close()
                    db.flush()
    """}), None, Config())
    assert plan.converted == set() and plan.make_async == set()


# ---------------------------------------------------------------- provenance that is not SQLAlchemy
NOT_SESSIONS = """
import contextlib
import socket
import sqlite3
from contextvars import ContextVar

import requests
from sqlalchemy.orm import Session


def connect():
    return sqlite3.connect(":memory:")


class Cache:
    def __init__(self):
        self.db = sqlite3.connect(":memory:")

    async def save(self):
        self.db.commit()                      # self.db is a sqlite3 connection


async def local_from_stdlib(path):
    db = sqlite3.connect(path)
    db.commit()
    db.rollback()


async def with_from_a_socket(listener: socket.socket):
    with listener.accept()[0] as s:
        s.flush()


async def with_open(path):
    with open(path) as s:
        s.flush()


async def from_a_project_function():
    db = connect()
    db.commit()


async def parameter_with_another_type(s: str, session: requests.Session):
    s.flush()
    session.commit()


async def http(url):
    session = requests.Session()
    session.merge(url)
"""


def test_a_value_from_something_else_is_not_a_session_by_name():
    assert codes(findings({"app/jobs.py": NOT_SESSIONS})) == []


STILL_SESSIONS = """
import contextlib
from contextvars import ContextVar
from typing import Any, cast

from sqlalchemy.orm import Session

from app.state import make_session

current_db: ContextVar = ContextVar("db")


async def unannotated_parameter(db):
    db.commit()


async def from_request_state(request):
    db = request.state.db
    db.commit()


async def from_a_context_variable():
    db = current_db.get()
    db.commit()


async def through_closing():
    with contextlib.closing(make_session()) as db:
        db.commit()


async def cast_and_any(x, db: Any):
    session = cast(Session, x)
    session.commit()
    db.commit()


async def abstract_provider(repo):
    session = repo.session()
    session.commit()


async def reassigned(path, db=None):
    sess = None
    sess = make_session()
    sess.commit()
"""


def test_names_whose_provenance_says_nothing_stay_name_only_sessions():
    fs = [f for f in findings({"app/jobs.py": STILL_SESSIONS}) if f.code.startswith("ASM1")]
    assert {(f.scope, f.code, f.evidence) for f in fs} == {
        ("unannotated_parameter", "ASM120", "name-only"),
        ("from_request_state", "ASM120", "name-only"),
        ("from_a_context_variable", "ASM120", "name-only"),
        ("through_closing", "ASM120", "name-only"),
        ("cast_and_any", "ASM120", "name-only"),
        ("abstract_provider", "ASM120", "name-only"),
        ("reassigned", "ASM120", "name-only"),
    }
    assert len([f for f in fs if f.scope == "cast_and_any"]) == 2


# ---------------------------------------------------------------- fix: same evidence as the scan
def test_fix_converts_name_only_receivers_only_for_methods_the_scan_reports():
    plan = plan_migration(analyse({
        "app/models.py": "from sqlalchemy.orm import DeclarativeBase\n",
        "app/crud.py": """
            from sqlalchemy import select

            def close_it(db):
                db.close()

            def fetch(db, pk):
                return db.get(Item, pk)

            def read(s, key):
                return s.get(key, "")

            def items(db):
                rows = db.query(Item).all()
                db.close()
                return rows

            def by_statement(db):
                stmt = select(Item).where(Item.id == 1)
                return db.execute(stmt)

            def by_result(session, stmt):
                return session.execute(stmt).scalars().all()

            def get_db():
                db = make_session()
                try:
                    yield db
                finally:
                    db.close()

            class Repo:
                def names(self):
                    return self.session.query(Item.name).all()

                def drop(self):
                    self.session.close()
        """,
    }), None, Config())
    assert plan.converted == {"app.crud:items", "app.crud:by_statement", "app.crud:by_result",
                              "app.crud:Repo.names", "app.crud:Repo.drop"}
    # ``yield db`` confirms get_db's receiver as a session; being a sync generator that is no dependency (nothing
    # gives it an async twin), it cannot await ``db.close()`` and stays on the sync session, reported as such
    assert any(item.path == "app/crud.py" and "`get_db` is a sync generator and calls `db.close()`" in item.reason
               for item in plan.left), plan.left
    sessions = plan.files["app/crud.py"].sessions
    assert sessions["items"] == frozenset({"db"}) and sessions["Repo.drop"] == frozenset({"self.session"})


def test_a_session_stored_on_request_state_is_known_by_provenance_everywhere():
    # ``request.state.db = SessionLocal()`` ... ``request.state.db.close()``: the factory becomes async, so must the
    # close; a function that only closes it holds the same stored session (evidence ``attribute``, not a name)
    analysis = analyse({
        "app/database.py": """
            from sqlalchemy import create_engine
            from sqlalchemy.orm import sessionmaker
            SessionLocal = sessionmaker(bind=create_engine("sqlite://"))
        """,
        "app/main.py": """
            from app.database import SessionLocal

            async def db_session_middleware(request, call_next):
                request.state.db = SessionLocal()
                response = await call_next(request)
                request.state.db.close()
                return response

            def close_only(request):
                request.state.db.close()
        """,
    })
    planner = Planner(analysis, None, Config())
    assert planner.receivers("app.main:db_session_middleware") == {"request.state.db": "attribute"}
    assert planner.receivers("app.main:close_only") == {"request.state.db": "attribute"}
