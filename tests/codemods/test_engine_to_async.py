"""EngineToAsync: before/after fixtures, and the rewritten database module run against real SQLite files.

Each ``fixtures/codemods/engine_to_async/<case>/`` holds ``before.py``, ``after.py``, an optional
``plan.json`` (FilePlan fields) and an optional ``warnings.json`` (the exact warnings expected).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import libcst as cst
import pytest
from sqlalchemy import Integer, String, select, text
from sqlalchemy.orm import Mapped, mapped_column

from asyncmigrate import facts
from asyncmigrate.codemods.base import FilePlan
from asyncmigrate.codemods.engine_to_async import DRIVERS_KEY, EngineToAsync, run_on_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "codemods" / "engine_to_async"
CASES = sorted(p for p in FIXTURES.iterdir() if (p / "before.py").is_file())


def plan_for(case: Path) -> FilePlan:
    path = case / "plan.json"
    fields = json.loads(path.read_text()) if path.is_file() else {}
    return FilePlan(**{k: frozenset(v) if isinstance(v, list) else v for k, v in fields.items()})


def expected_warnings(case: Path) -> list[str]:
    path = case / "warnings.json"
    return json.loads(path.read_text()) if path.is_file() else []


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_rewrite_matches_after(case: Path) -> None:
    """The rewrite of before.py is after.py, with exactly the expected warnings."""
    code, warnings = run_on_source((case / "before.py").read_text(), plan_for(case))
    assert code == (case / "after.py").read_text()
    assert warnings == expected_warnings(case)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_after_reparses_and_second_run_is_noop(case: Path) -> None:
    """after.py parses (libcst and CPython), and rewriting it again changes nothing."""
    after = (case / "after.py").read_text()
    cst.parse_module(after)
    compile(after, str(case / "after.py"), "exec")
    again, _ = run_on_source(after, plan_for(case))
    assert again == after


def test_cases_cover_the_brief() -> None:
    """The fixture set keeps the cases the rewrite is specified by."""
    names = {c.name for c in CASES}
    assert {"literal_sqlite", "env_url_conditional_connect_args", "postgres_settings_pool", "scoped_session",
            "event_listeners", "already_migrated", "example_backend", "unmappable_url"} <= names
    unchanged = {c.name for c in CASES if (c / "before.py").read_text() == (c / "after.py").read_text()}
    assert unchanged == {"already_migrated", "unmappable_url", "engine_in_function"}


def test_fixes_codes() -> None:
    assert EngineToAsync.fixes == ("ASM140", "ASM141", "ASM142")


@pytest.mark.parametrize(
    ("case", "drivers"),
    [("literal_sqlite", {"aiosqlite"}), ("example_backend", {"aiosqlite"}), ("fstring_url", {"asyncpg"}),
     ("session_class_dependency", {"asyncpg"}), ("postgres_settings_pool", set()), ("unmappable_url", set())],
)
def test_drivers_recorded_for_requirements(case: str, drivers: set[str]) -> None:
    """The async drivers a file's URLs need are left in ``context.scratch`` for requirements.py."""
    from libcst.codemod import CodemodContext

    context = CodemodContext(scratch={"plan": FilePlan()})
    EngineToAsync(context).transform_module(cst.parse_module((FIXTURES / case / "before.py").read_text()))
    assert context.scratch.get(DRIVERS_KEY, set()) == drivers


def _helper_from(case: str) -> ModuleType:
    source = (FIXTURES / case / "after.py").read_text()
    helper = next(s for s in cst.parse_module(source).body if isinstance(s, cst.FunctionDef)
                  and s.name.value == "_async_database_url")
    module = ModuleType("helper")
    exec(cst.Module(body=[helper]).code, module.__dict__)
    return module


@pytest.mark.parametrize(
    "url",
    ["sqlite:///./app.db", "sqlite+pysqlite:///x.db", "sqlite://", "postgresql://u:p@h/db",
     "postgresql+psycopg2://u:p@h:5432/db?ssl=require", "postgres://u@h/db", "postgresql+psycopg://u@h/db",
     "mysql+pymysql://u:p@h/db", "mysql://u@h/db", "mariadb://u@h/db"],
)
def test_generated_helper_agrees_with_the_facts_table(url: str) -> None:
    """The run-time helper is the facts table, emitted as literals: it maps exactly as ``facts.async_url``."""
    assert _helper_from("example_backend")._async_database_url(url) == facts.async_url(url)


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///x.db", "postgresql+asyncpg://u@h/db", "oracle://u@h/db"])
def test_generated_helper_leaves_async_and_unknown_urls(url: str) -> None:
    assert _helper_from("example_backend")._async_database_url(url) == url


# --------------------------------------------------------------------------------------------------
# The rewritten module, imported and used: async and sync engines side by side on one SQLite file.
# --------------------------------------------------------------------------------------------------


def _import_after(case: str, tmp_path: Path, name: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text((FIXTURES / case / "after.py").read_text())
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def _item_model(db: ModuleType) -> type:
    class Item(db.Base):  # type: ignore[name-defined,misc]
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        name: Mapped[str] = mapped_column(String(50))

    return Item


def _rows_cross_both_ways(db: ModuleType) -> list[str]:
    """Write with the sync session, read and write through ``get_async_db``, read back with the sync session."""
    Item = _item_model(db)
    db.Base.metadata.create_all(db.engine)
    with db.SessionLocal() as s:
        s.add(Item(name="from-sync"))
        s.commit()

    async def use_async() -> list[str]:
        dependency = db.get_async_db()
        session = await dependency.__anext__()
        seen = list((await session.execute(select(Item.name).order_by(Item.id))).scalars())
        session.add(Item(name="from-async"))
        await session.commit()
        await dependency.aclose()
        await db.async_engine.dispose()
        return seen

    seen_by_async = asyncio.run(use_async())
    assert seen_by_async == ["from-sync"]
    with db.SessionLocal() as s:
        names = list(s.scalars(select(Item.name).order_by(Item.id)))
    db.engine.dispose()
    return names


def test_env_url_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example backend's database module, URL from the environment: mapped at run time, kwargs kept."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'tmp.db'}")
    db = _import_after("example_backend", tmp_path, "db_env_example")
    assert db.async_engine.url.drivername == "sqlite+aiosqlite"
    assert db.async_engine.url.database == db.engine.url.database == str(tmp_path / "tmp.db")
    assert db.async_engine.sync_engine.pool._pre_ping is True  # engine_kwargs["pool_pre_ping"]
    assert type(db.async_engine.pool).__name__ == "AsyncAdaptedQueuePool"
    assert _rows_cross_both_ways(db) == ["from-sync", "from-async"]


def test_env_url_with_conditional_connect_args_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``connect_args=... if DATABASE_URL.startswith("sqlite") else {}`` still holds for the async engine."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'tmp.db'}")
    db = _import_after("env_url_conditional_connect_args", tmp_path, "db_env_conditional")
    assert db.async_engine.url.drivername == "sqlite+aiosqlite"
    assert _rows_cross_both_ways(db) == ["from-sync", "from-async"]


def test_literal_url_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A literal ``sqlite:///./sql_app.db`` mapped when the rewrite ran: both engines share the file."""
    monkeypatch.chdir(tmp_path)
    db = _import_after("literal_sqlite", tmp_path, "db_literal")
    assert str(db.async_engine.url) == "sqlite+aiosqlite:///./sql_app.db"
    assert _rows_cross_both_ways(db) == ["from-sync", "from-async"]
    assert (tmp_path / "sql_app.db").is_file()


def test_event_listener_runs_on_the_async_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQLite PRAGMA listener registered on ``async_engine.sync_engine`` fires for async connections."""
    monkeypatch.chdir(tmp_path)
    db = _import_after("event_listeners", tmp_path, "db_events")

    async def pragma() -> int:
        async with db.async_engine.connect() as conn:
            value = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
            assert conn.info["query_start_time"]  # before_cursor_execute ran too
        await db.async_engine.dispose()
        return int(value)

    assert asyncio.run(pragma()) == 1
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    db.engine.dispose()


def test_scoped_session_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``async_scoped_session(..., scopefunc=asyncio.current_task)``: one session per task, removed afterwards."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'tmp.db'}")
    # pool_size/max_overflow are kept: a file SQLite URL gets AsyncAdaptedQueuePool, which takes them.
    db = _import_after("scoped_session", tmp_path, "db_scoped")
    assert db.async_engine.pool.size() == 30

    async def request() -> int:
        dependency = db.get_async_db()
        session = await dependency.__anext__()
        assert db.AsyncSessionLocal() is session  # the registry hands the task its session
        value = (await session.execute(text("SELECT 1"))).scalar_one()
        await dependency.aclose()
        assert not db.AsyncSessionLocal.registry.has()
        return int(value)

    async def main() -> list[int]:
        try:
            return list(await asyncio.gather(request(), request()))
        finally:
            await db.async_engine.dispose()

    assert asyncio.run(main()) == [1, 1]
    db.engine.dispose()


# --------------------------------------------------------------------------------------------------
# The facts this rewrite adds to facts.py, checked against the installed SQLAlchemy.
# --------------------------------------------------------------------------------------------------

PSYCOPG2_OPTION_VALUES = {"executemany_mode": "values_only", "executemany_batch_page_size": 100,
                          "use_native_hstore": False, "client_encoding": "utf8", "server_side_cursors": True}


@pytest.mark.filterwarnings("ignore:The create_engine.server_side_cursors parameter is deprecated")
@pytest.mark.parametrize("key", sorted(facts.ENGINE_KWARGS_PSYCOPG2_ONLY))
def test_psycopg2_only_kwargs_are_rejected_by_async_drivers(key: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.ext.asyncio import create_async_engine

    pytest.importorskip("psycopg2")
    create_engine("postgresql+psycopg2://u@h/db", **{key: PSYCOPG2_OPTION_VALUES[key]}).dispose()
    for url in ("postgresql+asyncpg://u@h/db", "sqlite+aiosqlite:///x.db"):
        with pytest.raises(Exception, match=key):
            create_async_engine(url, **{key: PSYCOPG2_OPTION_VALUES[key]})


@pytest.mark.parametrize("key", sorted(facts.SQLITE_MEMORY_ASYNC_REJECTED_KWARGS))
def test_memory_sqlite_pool_kwargs_are_rejected(key: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.ext.asyncio import create_async_engine

    value = True if key == "pool_use_lifo" else 5
    with pytest.raises(TypeError, match=key):
        create_async_engine("sqlite+aiosqlite://", **{key: value})
    create_async_engine("sqlite+aiosqlite:///x.db", **{key: value})  # a file database takes them
    if key == "pool_size":
        create_engine("sqlite://", pool_size=5).dispose()  # SingletonThreadPool takes it: code that runs today


def test_creator_cannot_serve_an_async_engine() -> None:
    import sqlite3

    from sqlalchemy.ext.asyncio import create_async_engine

    assert facts.ENGINE_KWARGS_SYNC_ONLY == {"creator"}
    engine = create_async_engine("sqlite+aiosqlite://", creator=lambda: sqlite3.connect(":memory:"))

    async def connect() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    with pytest.raises(Exception, match="async"):
        asyncio.run(connect())


def test_poolclass_table() -> None:
    from sqlalchemy import exc, pool
    from sqlalchemy.ext.asyncio import create_async_engine

    for sync_name, async_name in facts.ASYNC_POOLCLASS.items():
        with pytest.raises(exc.ArgumentError, match="cannot be used with asyncio engine"):
            create_async_engine("sqlite+aiosqlite:///x.db", poolclass=getattr(pool, sync_name))
        if async_name is not None:
            create_async_engine("sqlite+aiosqlite:///x.db", poolclass=getattr(pool, async_name))


def test_session_class_and_dropped_sessionmaker_kwargs() -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import Session

    class AuditedSession(Session):
        pass

    engine = create_async_engine("sqlite+aiosqlite://")
    factory = async_sessionmaker(engine, expire_on_commit=False, sync_session_class=AuditedSession,
                                 autocommit=False, future=True)

    async def run() -> str:
        async with factory() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
            return type(session.sync_session).__name__

    assert asyncio.run(run()) == "AuditedSession"
    assert {"autocommit", "future"} <= facts.SESSIONMAKER_KWARGS_DROPPED


# --------------------------------------------------------------------------------------------------
# Left alone and reported.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "warnings"),
    [
        pytest.param(
            'from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n'
            'async_engine = "taken"\nengine = create_engine("sqlite:///x.db")\nSessionLocal = sessionmaker(bind=engine)\n',
            ["line 4: async_engine is already defined here; async engine not added",
             "line 5: SessionLocal binds engine, which gets no async engine here; left alone"],
            id="name-taken",
        ),
        pytest.param(
            "import sqlite3\nfrom sqlalchemy import create_engine\nfrom sqlalchemy.pool import QueuePool\n"
            'engine = create_engine("sqlite:///x.db", poolclass=QueuePool, creator=lambda: sqlite3.connect("x.db"))\n',
            ["line 4: create_engine(creator=...) returns a sync DBAPI connection; create_async_engine needs "
             "async_creator=; engine left alone"],
            id="creator-no-stray-import",
        ),
        pytest.param(
            "from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n"
            'engine = create_engine("sqlite:///x.db")\nread_engine = create_engine("sqlite:///replica.db")\n'
            "SessionLocal = sessionmaker(bind=engine)\nReadSession = sessionmaker(bind=read_engine)\n",
            None,
            id="second-engine",
        ),
    ],
)
def test_left_alone_and_reported(source: str, warnings: list[str] | None) -> None:
    code, got = run_on_source(source, FilePlan())
    if warnings is not None:
        assert code == source
        assert got == warnings
    else:  # the engine the first factory binds gets its twin; the replica is reported
        assert 'async_engine = create_async_engine("sqlite+aiosqlite:///x.db")\n' in code
        assert "aiosqlite:///replica.db" not in code
        assert got == ["line 4: second engine read_engine left alone: the plan names one async engine",
                       "line 6: session factory ReadSession left alone: AsyncSessionLocal mirrors SessionLocal"]


def test_sessionmaker_configured_later_is_reported() -> None:
    source = (
        "from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n"
        'SessionLocal = sessionmaker()\nengine = create_engine("sqlite:///x.db")\nSessionLocal.configure(bind=engine)\n'
    )
    code, warnings = run_on_source(source, FilePlan())
    assert "async_engine = create_async_engine(" in code and "async_sessionmaker" not in code
    assert warnings == ["line 3: session factory SessionLocal binds no engine, which gets no async engine here; "
                        "left alone"]


def test_legacy_async_sessionmaker_counts_as_async() -> None:
    """1.4's ``sessionmaker(engine, class_=AsyncSession)`` is already an async factory: nothing to add."""
    source = (
        "from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine\n"
        "from sqlalchemy.orm import sessionmaker\n\n"
        'engine = create_async_engine("postgresql+asyncpg://u@h/db")\n'
        "SessionLocal = sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)\n\n\n"
        "async def get_db():\n    async with SessionLocal() as session:\n        yield session\n"
    )
    assert run_on_source(source, FilePlan(sync_factories=frozenset({"SessionLocal"}))) == (source, [])
