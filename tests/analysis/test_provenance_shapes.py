"""Edges of the shapes issue 12 taught the analysis (generic bases, session decorators, helpers, roots).

The recall fixtures (``test_recall.py``) show each class found; these pin down what must *not* follow from it.
"""

from __future__ import annotations

import os

from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from tests.helpers import findings

DB = """
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker(bind=create_engine("sqlite://"))
"""


def _session_uses(fs) -> list[tuple[str, int, str, str, str]]:
    return sorted((f.path, f.span.line, f.code, f.severity, f.evidence) for f in fs if f.code in (
        "ASM110", "ASM120", "ASM121", "ASM122"))


def test_a_passthrough_decorator_keeps_the_callers_arguments():
    # ``func(*args, **kwargs)`` passes the caller's session through: the parameter still gets it by call site
    fs = findings({"app/db.py": DB, "app/deco.py": """
        import functools

        def logged(func):
            @functools.wraps(func)
            def run(*args, **kwargs):
                return func(*args, **kwargs)
            return run
    """, "app/svc.py": """
        from app.deco import logged
        from app.db import SessionLocal

        @logged
        def save(tx, row):
            tx.commit()

        async def handler():
            save(SessionLocal(), 1)
    """})
    assert _session_uses(fs) == [("app/svc.py", 7, "ASM120", "blocks-loop", "call-site")]


def test_a_decorator_that_injects_a_session_does_not_take_the_callers_first_argument_for_it():
    # the caller's first argument lands on the wrapper's *second* positional parameter: a session the caller
    # passes is not the decorated function's ``tx``; the wrapper's own session is
    fs = findings({"app/db.py": DB, "app/deco.py": """
        from app.db import SessionLocal

        def with_session(func):
            def wrapper(*args):
                return func(SessionLocal(), *args)
            return wrapper
    """, "app/svc.py": """
        from app.deco import with_session

        @with_session
        def save(tx, other):
            tx.commit()
            other.commit()

        def job(s):
            save(s)
    """})
    uses = _session_uses(fs)
    assert ("app/svc.py", 6, "ASM120", "debt", "call-site") in uses
    assert not any(line == 7 and ev != "name-only" for _p, line, _c, _s, ev in uses)


def test_registration_decorators_are_not_wrappers():
    # ``@router.get`` and a project decorator that returns the function itself: calls reach the function directly
    fs = findings({"app/db.py": DB, "app/reg.py": """
        HANDLERS = []

        def register(func):
            HANDLERS.append(func)
            return func
    """, "app/svc.py": """
        from app.db import SessionLocal
        from app.reg import register

        @register
        def save(tx):
            tx.commit()

        async def handler():
            save(SessionLocal())
    """})
    assert _session_uses(fs) == [("app/svc.py", 7, "ASM120", "blocks-loop", "call-site")]


def test_a_project_file_named_like_sqlalchemy_never_shadows_it(tmp_path):
    # no __init__.py: ``db/sqlalchemy.py`` is named ``sqlalchemy`` by its file name alone, but the app runs from
    # the root, where ``import sqlalchemy`` is SQLAlchemy
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "sqlalchemy.py").write_text("def create_engine(url):\n    return url\n")
    (tmp_path / "routes.py").write_text(
        "from sqlalchemy.orm import Session\n\n\nasync def handler(tx: Session):\n    tx.commit()\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        fs = analyse_paths(["."], Config(root=str(tmp_path)), use_cache=False, jobs=1).result.findings
    finally:
        os.chdir(cwd)
    assert ("routes.py", 5, "ASM120", "blocks-loop", "annotation") in _session_uses(fs)


def test_a_subscripted_value_that_is_not_a_class_stays_unknown():
    # ``pool[0]()`` is an item of a list, not a generic alias: nothing is inferred from it
    fs = findings({"app/db.py": DB, "app/svc.py": """
        from app.db import SessionLocal

        class Repo:
            def __init__(self, tx):
                self.tx = tx

            def save(self):
                self.tx.commit()

        pool = [Repo]

        async def handler():
            pool[0](SessionLocal()).save()
    """})
    assert _session_uses(fs) == []
