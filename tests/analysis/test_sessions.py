"""Session tracking: each kind of evidence, across modules, and what must NOT count as a session."""

from __future__ import annotations

from tests.helpers import brief, findings

DB = """
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine("sqlite://")
SessionLocal = sessionmaker(bind=engine)


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()
"""


def only(fs, *codes):
    return [f for f in fs if f.code in codes]


def test_dependency_evidence_across_modules():
    fs = findings({
        "app/__init__.py": "",
        "app/database.py": DB,
        "app/routes.py": """
            from fastapi import APIRouter, Depends
            from sqlalchemy.orm import Session
            from .database import get_db
            router = APIRouter()

            @router.get("/")
            async def index(session = Depends(get_db)):
                return session.query(User).all()
        """,
    })
    q = only(fs, "ASM110")
    assert [(f.path, f.severity, f.evidence) for f in q] == [("app/routes.py", "blocks-loop", "dependency")]
    assert only(fs, "ASM101")[0].evidence == "dependency"


def test_annotated_alias_dependency():
    fs = findings({
        "deps.py": DB + """
from typing import Annotated
from fastapi import Depends
SessionDep = Annotated[Session, Depends(get_db)]
""",
        "api.py": """
            from deps import SessionDep

            async def read(session: SessionDep):
                session.commit()
        """,
    })
    assert brief(f for f in only(fs, "ASM101", "ASM120") if f.path == "api.py") == [
        ("api.py", 4, "ASM101", "blocks-loop"), ("api.py", 5, "ASM120", "blocks-loop")]


def test_self_attribute_and_call_site_evidence():
    fs = findings({
        "db.py": DB,
        "svc.py": """
            class Repo:
                def __init__(self, session):
                    self.session = session

                def names(self):
                    return self.session.query(User.name).all()
        """,
        "api.py": """
            from db import SessionLocal
            from svc import Repo

            async def job():
                db = SessionLocal()
                return Repo(db).names()
        """,
    })
    q = only(fs, "ASM110")
    assert [(f.path, f.evidence, f.severity) for f in q] == [("svc.py", "self-attribute", "blocks-loop")]
    assert q[0].chain == ("api.job", "svc.Repo.names")


def test_with_factory_and_next_of_dependency():
    fs = findings({
        "db.py": DB,
        "tasks.py": """
            from db import SessionLocal, get_db

            def nightly():
                with SessionLocal() as s:
                    s.flush()
                other = next(get_db())
                other.rollback()
        """,
    })
    assert [(f.code, f.evidence, f.severity) for f in only(fs, "ASM103", "ASM104", "ASM120")
            if f.path == "tasks.py"] == [
        ("ASM103", "factory", "debt"), ("ASM120", "factory", "debt"),
        ("ASM104", "provider", "debt"), ("ASM120", "provider", "debt")]


def test_async_session_is_not_blocking():
    fs = findings("""
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

        async def create(session: AsyncSession, obj):
            session.add(obj)
            await session.flush()
            session.expunge(obj)
            await session.commit()

        class Repo:
            def __init__(self, session: AsyncSession):
                self.session = session

            async def save(self, obj):
                self.session.add(obj)
                await self.session.commit()
    """)
    assert fs == []


def test_name_only_fallback_is_marked_and_cautious():
    fs = findings("""
        import sqlalchemy as sa  # a name is evidence only in a SQLAlchemy project (tests/analysis/test_name_only.py)

        async def handler(db, cache: dict, items: set):
            db.query(User).all()
            db.commit()
            cache.get("x")
            items.add(1)

        async def awaited(session):
            await session.commit()
            session.add(1)
    """)
    assert [(f.code, f.evidence) for f in fs] == [("ASM110", "name-only"), ("ASM120", "name-only")]


def test_other_session_classes_are_not_sqlalchemy():
    fs = findings("""
        import requests
        import aiohttp

        async def fetch(url):
            session = requests.Session()
            session.get(url)
            session.close()
            async with aiohttp.ClientSession() as s:
                await s.get(url)
    """, codes=("ASM1",))
    assert fs == []


def test_sync_def_route_is_debt_and_async_route_blocks():
    fs = findings({
        "db.py": DB,
        "r.py": """
            from fastapi import Depends
            from db import get_db

            def sync_route(db = Depends(get_db)):
                return db.query(User).count()

            async def async_route(db = Depends(get_db)):
                return db.query(User).count()
        """,
    }, codes=("ASM110",))
    assert [(f.scope, f.severity) for f in fs] == [("sync_route", "debt"), ("async_route", "blocks-loop")]


def test_threadpool_and_background_tasks_are_boundaries():
    fs = findings({
        "db.py": DB,
        "r.py": """
            from fastapi import BackgroundTasks
            from starlette.concurrency import run_in_threadpool
            from db import SessionLocal

            def work():
                with SessionLocal() as db:
                    return db.query(User).count()

            async def route(tasks: BackgroundTasks):
                tasks.add_task(work)
                return await run_in_threadpool(work)
        """,
    }, codes=("ASM110",))
    assert [(f.scope, f.severity) for f in fs] == [("work", "debt")]


def test_strip_async_turns_blocks_loop_into_debt_and_loses_nothing():
    """Metamorphic: the same code without ``async`` has the same findings, all debt (sleep aside)."""
    src = DB + """
import time
from fastapi import Depends

class Service:
    def __init__(self, db):
        self.db = db

    def run(self):
        self.db.query(User).update({User.age: 1})
        self.db.commit()
        time.sleep(0.1)

async def route(db = Depends(get_db)):
    Service(db).run()
    db.add(User())
    db.refresh(db)
"""
    before = findings(src)
    after = findings(src.replace("async def", "def"))
    assert any(f.severity == "blocks-loop" for f in before)
    assert all(f.severity == "debt" for f in after)
    key = lambda f: (f.code, f.span.line)  # noqa: E731
    assert sorted(map(key, before)) == sorted(map(key, after))


def test_a_project_module_named_like_a_library_does_not_shadow_it():
    """polar has ``polar/kit/extensions/sqlalchemy``: ``from sqlalchemy.orm import Session`` is still SQLAlchemy."""
    fs = findings({
        "proj/__init__.py": "",
        "proj/ext/__init__.py": "",
        "proj/ext/sqlalchemy.py": "def helper(): pass\n",
        "proj/repo.py": """
            from typing import NewType
            from sqlalchemy.ext.asyncio import AsyncSession as _AsyncSession
            AsyncReadSession = NewType("AsyncReadSession", _AsyncSession)
            AsyncSession = NewType("AsyncSession", AsyncReadSession)

            async def save(session: AsyncSession, obj):
                session.add(obj)
                session.expunge_all()
                await session.commit()
        """,
    })
    assert fs == []


def test_newer_syntax_is_backported_for_analysis():
    """PEP 695 / PEP 758 syntax (3.12+/3.14) still gets analysed on an older interpreter."""
    fs = findings({
        "db.py": DB,
        "repo.py": """
            from sqlalchemy.orm import Session

            type Rows[T] = list[T]

            class Repo[M]:
                def __init__(self, db: Session):
                    self.db = db

                async def first[K](self, key: K):
                    try:
                        return self.db.query(M).first()
                    except ValueError, KeyError:
                        return None
        """,
    }, codes=("ASM110",))
    assert [(f.path, f.line, f.evidence) for f in fs] == [("repo.py", 12, "self-attribute")]


def test_a_dependency_known_only_by_its_return_annotation():
    """mealie: the factory comes from a helper, but ``-> Generator[Session, None, None]`` says what is yielded."""
    fs = findings({
        "deps.py": """
            from collections.abc import Generator
            from sqlalchemy.orm import Session
            from engine_setup import make_factory

            SessionLocal, engine = make_factory()

            def generate_session() -> Generator[Session, None, None]:
                db = SessionLocal()
                try:
                    yield db
                finally:
                    db.close()
        """,
        "routes.py": """
            from fastapi import Depends
            from deps import generate_session

            async def current_user(session = Depends(generate_session)):
                return session.query(User).first()
        """,
    }, codes=("ASM101", "ASM110"))
    assert [(f.path, f.code, f.severity) for f in fs] == [
        ("routes.py", "ASM101", "blocks-loop"), ("routes.py", "ASM110", "blocks-loop")]


def test_async_tests_do_not_put_production_code_on_the_loop():
    fs = findings({
        "app/__init__.py": "",
        "app/jobs.py": """
            from sqlalchemy.orm import Session

            def due_jobs(db: Session):
                return db.query(Job).all()
        """,
        "tests/test_jobs.py": """
            from app.jobs import due_jobs

            async def test_due(session):
                assert due_jobs(session) == []
        """,
    }, codes=("ASM110",))
    assert [(f.path, f.severity) for f in fs] == [("app/jobs.py", "debt")]
