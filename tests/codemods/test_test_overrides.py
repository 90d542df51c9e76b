"""MigrateTestOverrides (with EngineToAsync, as ``fix`` runs them on test code): before/after fixtures, and the
shared in-memory SQLite database the rewritten test engines rely on, checked against real engines.

Each ``fixtures/codemods/test_overrides/<case>/`` holds ``before.py``, ``after.py``, ``plan.json`` (FilePlan
fields; test code gets ``test_module`` and the app's ``app_twins`` from the planner) and an optional
``warnings.json`` (the exact warnings expected, lines of before.py).  The cases run through
``fix.transform_file`` with the whole pipeline: one parse, every rewrite, imports applied at the end.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import libcst as cst
import pytest
from sqlalchemy import Integer, String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool, StaticPool

from asyncmigrate import facts
from asyncmigrate.codemods import BY_NAME, PIPELINE, EngineToAsync, MigrateTestOverrides
from asyncmigrate.codemods._database.names import twin_name
from asyncmigrate.codemods._database.urls import shared_memory_url, sqlite_memory
from asyncmigrate.codemods.base import FilePlan
from asyncmigrate.codemods.test_overrides import run_on_source
from asyncmigrate.fix import transform_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "codemods" / "test_overrides"
CASES = sorted(p for p in FIXTURES.iterdir() if (p / "before.py").is_file())
APP_TWINS = {"engine": "async_engine", "SessionLocal": "AsyncSessionLocal", "get_db": "get_async_db"}


def plan_for(case: Path) -> FilePlan:
    return FilePlan(**json.loads((case / "plan.json").read_text()))


def expected_warnings(case: Path) -> list[str]:
    path = case / "warnings.json"
    return json.loads(path.read_text()) if path.is_file() else []


def rewrite(case: Path, source: bytes) -> tuple[bytes, list[str]]:
    change = transform_file(f"tests/{case.name}.py", source, plan_for(case), PIPELINE)
    return change.new, change.warnings


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_rewrite_matches_after(case: Path) -> None:
    """The pipeline's rewrite of before.py is after.py, with exactly the expected warnings."""
    new, warnings = rewrite(case, (case / "before.py").read_bytes())
    assert new.decode() == (case / "after.py").read_text()
    assert warnings == expected_warnings(case)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_after_reparses_and_second_run_is_noop(case: Path) -> None:
    """after.py parses (libcst and CPython), and rewriting it again changes nothing."""
    after = (case / "after.py").read_bytes()
    cst.parse_module(after)
    compile(after, str(case / "after.py"), "exec")
    again, _ = rewrite(case, after)
    assert again == after


def test_cases_cover_the_brief() -> None:
    names = {c.name for c in CASES}
    assert {"example_backend_conftest", "fastapi_docs_module_level", "fixture_session_closure", "file_database",
            "app_factory_module_key", "left_alone"} <= names
    left = FIXTURES / "left_alone"
    assert "dependency_overrides[get_async_db]" not in (left / "after.py").read_text()


def test_registered_after_engine_to_async() -> None:
    """The override twins are valued with the test module's async factory, which EngineToAsync adds first."""
    assert BY_NAME["tests"] is MigrateTestOverrides
    assert PIPELINE.index(EngineToAsync) < PIPELINE.index(MigrateTestOverrides)


def test_app_code_is_left_alone() -> None:
    """Outside test code (or without the app's names) nothing changes, even with ``dependency_overrides``."""
    source = (FIXTURES / "example_backend_conftest" / "before.py").read_text()
    assert run_on_source(source, FilePlan(module="app.main", app_twins=APP_TWINS))[0] == source
    assert run_on_source(source, FilePlan(module="tests.conftest", test_module=True))[0] == source


def test_example_backend_conftest_twins() -> None:
    """The statements the example backend's suite needs, and none that shadow the app's names."""
    after = (FIXTURES / "example_backend_conftest" / "after.py").read_text()
    assert "    app.dependency_overrides[get_async_db] = override_get_async_db\n" in after
    # (split over lines by the last step: it runs past the line length)
    assert ('    monkeypatch.setattr(\n        tasks, "AsyncSessionLocal", AsyncTestingSessionLocal, raising=False\n'
            '    )\n') in after
    assert "from app.database import Base, get_async_db, get_db\n" in after
    assert "AsyncSessionLocal =" not in after and "def get_async_db" not in after
    assert '"sqlite:///file:tests_conftest?mode=memory&cache=shared&uri=true"' in after


@pytest.mark.parametrize(
    ("sync", "twin"),
    [("TestingSessionLocal", "AsyncTestingSessionLocal"), ("override_get_db", "override_get_async_db"),
     ("engine", "async_engine"), ("test_engine", "test_async_engine"), ("db_session", "async_db_session"),
     ("_override", "_async_override"), ("get_db", "get_async_db"), ("SessionLocal", "AsyncSessionLocal")],
)
def test_twin_names(sync: str, twin: str) -> None:
    assert twin_name(sync, APP_TWINS) == twin


# --------------------------------------------------------------------------------------------------
# The shared in-memory database: one database for the sync test engine and the async app engine.
# --------------------------------------------------------------------------------------------------


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://"])
def test_shared_memory_url_shape(url: str) -> None:
    shared = shared_memory_url(url, "tests.conftest")
    assert sqlite_memory(url) and not sqlite_memory(shared)
    assert shared.endswith(":///file:tests_conftest?mode=memory&cache=shared&uri=true")
    assert facts.async_url(shared) == "sqlite+aiosqlite:///file:tests_conftest?mode=memory&cache=shared&uri=true"


@pytest.mark.parametrize("async_pool", [NullPool, StaticPool])
def test_shared_memory_database_is_one_database(async_pool: type) -> None:
    """Tables the sync engine creates and rows either side writes are seen by the other, over several event
    loops (TestClient runs each request on its own); a differently named database stays separate."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    url = shared_memory_url("sqlite://", f"asyncmigrate_check_{async_pool.__name__}")
    engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    async_engine = create_async_engine(facts.async_url(url), connect_args={"check_same_thread": False},
                                       poolclass=async_pool)
    Sync = sessionmaker(bind=engine)
    Async = async_sessionmaker(async_engine, expire_on_commit=False)
    _Base.metadata.create_all(bind=engine)

    async def request(name: str) -> list[str]:
        async with Async() as session:
            seen = list((await session.scalars(select(_Row.name).order_by(_Row.id))).all())
            session.add(_Row(name=name))
            await session.commit()
        return seen

    try:
        with Sync() as s:
            s.add(_Row(name="sync-0"))
            s.commit()
        assert asyncio.run(request("async-1")) == ["sync-0"]
        with Sync() as s:
            s.add(_Row(name="sync-2"))
            s.commit()
        assert asyncio.run(request("async-3")) == ["sync-0", "async-1", "sync-2"]
        with Sync() as s:
            assert list(s.scalars(select(_Row.name).order_by(_Row.id))) == ["sync-0", "async-1", "sync-2", "async-3"]
        other = create_engine(shared_memory_url("sqlite://", "asyncmigrate_check_other"), poolclass=StaticPool)
        with other.connect() as conn:
            assert conn.execute(text("SELECT name FROM sqlite_master")).all() == []
        other.dispose()
    finally:
        _Base.metadata.drop_all(bind=engine)
        asyncio.run(async_engine.dispose())
        engine.dispose()


@pytest.mark.parametrize("key", sorted(facts.SQLITE_MEMORY_ASYNC_REJECTED_KWARGS))
def test_null_pool_rejects_queue_pool_sizing(key: str) -> None:
    """Why the test engine's ``poolclass=NullPool`` drops pool sizing arguments."""
    from sqlalchemy.ext.asyncio import create_async_engine

    with pytest.raises(TypeError, match=key):
        value = True if key == "pool_use_lifo" else 5
        create_async_engine("sqlite+aiosqlite:///x.db", poolclass=NullPool, **{key: value})


# --------------------------------------------------------------------------------------------------
# What the planner hands test code.
# --------------------------------------------------------------------------------------------------


def test_planner_gives_test_code_the_app_twins() -> None:
    """The example backend: the app's engine, factory and dependency with their twins' names, and a test plan
    for the conftest (which has nothing converted in it)."""
    from asyncmigrate.config import Config
    from asyncmigrate.migration import plan_migration
    from tests.helpers import analyse

    root = Path(__file__).resolve().parents[2] / "fixtures" / "example_backend"
    files = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py"))}
    plan = plan_migration(analyse(files), None, Config())
    assert plan.app_twins == APP_TWINS
    conftest = plan.files.get("tests/conftest.py") or plan.fallback("tests/conftest.py", "tests.conftest")
    assert conftest.test_module and conftest.app_twins == APP_TWINS and conftest.database_module == "app.database"
    app_plan = plan.fallback("app/main.py", "app.main")
    assert not app_plan.test_module and not app_plan.app_twins
