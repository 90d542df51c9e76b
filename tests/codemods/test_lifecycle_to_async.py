"""LifecycleToAsync: before/after fixtures, and rewritten apps whose lifespan runs against real SQLite files.

Each ``fixtures/codemods/lifecycle_to_async/<case>/`` holds ``before.py``, ``after.py``, an optional
``plan.json`` (FilePlan fields) and an optional ``warnings.json`` (the exact warnings expected).  The run-time
tests drive ``app.router.lifespan_context(app)`` directly and talk to the app through httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import libcst as cst
import pytest
from sqlalchemy import inspect

from asyncmigrate.codemods.base import FilePlan
from asyncmigrate.codemods.lifecycle_to_async import LifecycleToAsync, run_on_source

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "codemods" / "lifecycle_to_async"
ENGINE_FIXTURES = ROOT / "fixtures" / "codemods" / "engine_to_async"
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
    names = {c.name for c in CASES}
    assert {"lifespan_relative_import", "on_event_startup_shutdown", "health_pool_endpoint",
            "module_level_create_all", "already_migrated"} <= names
    unchanged = {c.name for c in CASES if (c / "before.py").read_text() == (c / "after.py").read_text()}
    assert unchanged == {"already_migrated", "module_level_create_all"}


def test_fixes_codes() -> None:
    assert LifecycleToAsync.fixes == ("ASM143", "ASM144")


def test_absolute_import_when_the_file_uses_another_module() -> None:
    """The engine comes through a re-export; the async engine is imported from ``plan.database_module``."""
    source = (
        "from app.db import engine\n\n"
        "async def shutdown():\n"
        "    engine.dispose()\n"
    )
    plan = FilePlan(module="app.main", database_module="app.database", sync_engines=frozenset({"engine"}))
    code, warnings = run_on_source(source, plan)
    assert code == (
        "from app.db import engine\n"
        "from app.database import async_engine\n\n"
        "async def shutdown():\n"
        "    await async_engine.dispose()\n"
        "    engine.dispose()\n"
    )
    assert warnings == []


def test_name_clash_is_reported_not_clobbered() -> None:
    """A file that already binds ``async_engine`` to something else is left alone."""
    source = (
        "from app.database import Base, engine\n\n"
        "async_engine = object()\n\n"
        "async def startup():\n"
        "    Base.metadata.create_all(bind=engine)\n"
    )
    code, warnings = run_on_source(source, FilePlan(module="app.main", database_module="app.database"))
    assert code == source
    assert warnings == ["line 6: no async engine is known for engine in this file; left alone"]


def test_nested_sync_def_is_not_on_the_loop() -> None:
    """A sync function defined inside the lifespan (e.g. for run_in_threadpool) keeps its sync calls."""
    source = (
        "from app.database import Base, engine\n\n"
        "async def lifespan(app):\n"
        "    def work():\n"
        "        Base.metadata.create_all(bind=engine)\n"
        "    await run_in_threadpool(work)\n"
        "    yield\n"
    )
    code, warnings = run_on_source(source, FilePlan(module="app.main", database_module="app.database"))
    assert code == source
    assert warnings == []


def test_make_async_function_is_rewritten() -> None:
    """A sync helper the project pass makes async is rewritten like a hook, and becomes ``async def``."""
    source = "from .database import Base, engine\n\n\ndef init_db():\n    Base.metadata.create_all(bind=engine)\n"
    plan = FilePlan(module="app.init_db", database_module="app.database", make_async=frozenset({"init_db"}))
    code, _ = run_on_source(source, plan)
    assert code == (
        "from .database import async_engine, Base, engine\n\n\n"
        "async def init_db():\n"
        "    async with async_engine.begin() as conn:\n"
        "        await conn.run_sync(Base.metadata.create_all)\n"
    )


def test_conn_name_does_not_shadow_a_local() -> None:
    source = (
        "from app.database import Base, engine\n\n"
        "async def startup(conn):\n"
        "    Base.metadata.create_all(engine)\n"
        "    conn.close()\n"
    )
    code, _ = run_on_source(source, FilePlan(module="app.main", database_module="app.database"))
    assert "async with async_engine.begin() as conn_:\n        await conn_.run_sync(Base.metadata.create_all)" in code


# --------------------------------------------------------------------------------------------------
# Rewritten apps, run: startup creates tables through run_sync, the pool endpoint reads the async pool,
# shutdown disposes both engines.
# --------------------------------------------------------------------------------------------------

STUB_ROUTER = "from fastapi import APIRouter\n\nrouter = APIRouter()\n"


@pytest.fixture
def isolated_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` on sys.path; modules imported from it are forgotten afterwards."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    shadowed = {name: sys.modules.pop(name) for name in list(sys.modules) if name == "app" or name.startswith("app.")}
    yield tmp_path
    for name in set(sys.modules) - before:
        sys.modules.pop(name, None)
    sys.modules.update(shadowed)
    importlib.invalidate_caches()


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


@pytest.mark.filterwarnings("ignore:\\s*on_event is deprecated:DeprecationWarning")
def test_example_backend_startup_and_pool_endpoint_run(isolated_imports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example backend's rewritten main.py (on_event handlers), health.py and database.py, run together."""
    root = isolated_imports
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{root / 'tmp.db'}")
    _write(root, {
        "app/__init__.py": '__version__ = "0-test"\n',
        "app/database.py": (ENGINE_FIXTURES / "example_backend" / "after.py").read_text(),
        "app/models.py": (
            "from sqlalchemy import Column, Integer, String\n\nfrom app.database import Base\n\n\n"
            "class User(Base):\n    __tablename__ = 'users'\n    id = Column(Integer, primary_key=True)\n"
            "    name = Column(String(50))\n"
        ),
        "app/routers/__init__.py": "",
        "app/routers/health.py": (FIXTURES / "health_pool_endpoint" / "after.py").read_text(),
        "app/routers/users.py": "from app import models  # registers the tables\n" + STUB_ROUTER,
        **{f"app/routers/{name}.py": STUB_ROUTER for name in ("orders", "products", "reports", "sync")},
        "app/main.py": (FIXTURES / "on_event_startup_shutdown" / "after.py").read_text(),
    })
    main = importlib.import_module("app.main")
    database = importlib.import_module("app.database")
    assert not inspect(database.engine).has_table("users")

    async def run() -> tuple[dict, bool, object]:
        async with main.app.router.lifespan_context(main.app):
            created = inspect(database.engine).has_table("users")  # by run_sync, seen by the sync engine
            transport = httpx.ASGITransport(app=main.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                response = await client.get("/health/pool")
            pool_before_shutdown = database.async_engine.pool
        return response.json(), created, pool_before_shutdown

    status, created, pool = asyncio.run(run())
    assert created
    assert status["pool_class"] == "AsyncAdaptedQueuePool"
    assert status["dialect"] == "sqlite"
    assert {"size", "checked_out", "available", "overflow"} <= status.keys()
    assert database.async_engine.pool is not pool  # shutdown ran await async_engine.dispose()
    database.engine.dispose()


def test_lifespan_with_relative_imports_runs(isolated_imports: Path) -> None:
    """A package (any name) using relative imports: the lifespan creates tables, a route uses get_async_db."""
    root = isolated_imports
    package = f"shop_{uuid.uuid4().hex[:8]}"
    _write(root, {
        f"{package}/__init__.py": "",
        f"{package}/database.py": (ENGINE_FIXTURES / "literal_sqlite" / "after.py").read_text(),
        f"{package}/models.py": (
            "from sqlalchemy import Column, Integer, String\n\nfrom .database import Base\n\n\n"
            "class Item(Base):\n    __tablename__ = 'items'\n    id = Column(Integer, primary_key=True)\n"
            "    name = Column(String(50))\n"
        ),
        f"{package}/routers/__init__.py": "",
        f"{package}/routers/items.py": (
            "from fastapi import APIRouter, Depends\nfrom sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n\n"
            "from ..database import get_async_db\nfrom ..models import Item\n\nrouter = APIRouter()\n\n\n"
            "@router.get('/items')\nasync def list_items(db: AsyncSession = Depends(get_async_db)):\n"
            "    return [i.name for i in (await db.execute(select(Item).order_by(Item.id))).scalars()]\n"
        ),
        f"{package}/main.py": (FIXTURES / "lifespan_relative_import" / "after.py").read_text(),
    })
    main = importlib.import_module(f"{package}.main")
    database = importlib.import_module(f"{package}.database")
    models = importlib.import_module(f"{package}.models")

    async def run() -> list[str]:
        async with main.app.router.lifespan_context(main.app):
            with database.SessionLocal() as s:  # the sync engine writes into the table run_sync created
                s.add(models.Item(name="written-by-sync"))
                s.commit()
            transport = httpx.ASGITransport(app=main.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return (await client.get("/items")).json()

    assert asyncio.run(run()) == ["written-by-sync"]
    assert (root / "sql_app.db").is_file()


def test_single_file_app_merged_ddl_runs(isolated_imports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """drop_all + create_all in one ``async with`` block, twice in a row, then the pool endpoint."""
    monkeypatch.setenv("RESET_DB", "1")
    (isolated_imports / "notes_app.py").write_text((FIXTURES / "single_file_app" / "after.py").read_text())
    app_module = importlib.import_module("notes_app")

    async def run() -> dict:
        for _ in range(2):
            async with app_module.app.router.lifespan_context(app_module.app):
                assert inspect(app_module.engine).has_table("notes")
        async with app_module.app.router.lifespan_context(app_module.app):
            transport = httpx.ASGITransport(app=app_module.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return (await client.get("/pool")).json()

    body = asyncio.run(run())
    assert body["url"] == "sqlite:///./notes.db"
    assert "Pool size: 5" in body["status"]
