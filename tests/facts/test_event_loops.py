"""The event-loop facts the test-code rewrites rely on (docs/EVENT_LOOPS.md), checked on the installed stack.

- ``TestClient`` runs the app in another thread than the test, on an event loop of its own: a new loop per
  request outside ``with TestClient(app)``, one loop for the whole block inside it.
- An engine's pooled asyncpg connection belongs to the loop that opened it: reused by a request on another
  loop it raises; with ``NullPool`` (a connection per checkout) every request works.  aiosqlite's pooled
  connections do cross loops (its worker thread answers whichever loop asked).

So a twin dependency for tests (``codemods/_database/bound_twin.py``) makes a ``NullPool`` engine inside the
request and disposes of it there.  The asyncpg check needs ``ASYNCMIGRATE_PG_URL`` (scripts/postgres.sh).
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402


def _where_app() -> tuple[FastAPI, list]:
    seen: list = []  # (thread id, loop object): the loops are kept alive, so identity comparisons are sound
    app = FastAPI()

    @app.get("/where")
    async def where() -> dict:
        seen.append((threading.get_ident(), asyncio.get_running_loop()))
        return {}

    return app, seen


def test_testclient_runs_the_app_in_another_thread_on_a_loop_per_request() -> None:
    app, seen = _where_app()
    client = TestClient(app)
    client.get("/where")
    client.get("/where")
    (t1, loop1), (t2, loop2) = seen
    assert threading.get_ident() not in (t1, t2)
    assert loop1 is not loop2


def test_testclient_as_context_manager_keeps_one_loop() -> None:
    app, seen = _where_app()
    with TestClient(app) as client:
        client.get("/where")
        client.get("/where")
    (t1, loop1), (t2, loop2) = seen
    assert threading.get_ident() != t1
    assert loop1 is loop2


def _query_app(url: str, **engine_kwargs) -> FastAPI:
    engine = create_async_engine(url, **engine_kwargs)
    app = FastAPI()

    @app.get("/one")
    async def one() -> dict:
        async with engine.connect() as conn:
            return {"v": (await conn.execute(text("select 1"))).scalar()}

    return app


def _three_requests(app: FastAPI) -> list[int]:
    client = TestClient(app, raise_server_exceptions=True)
    return [client.get("/one").status_code for _ in range(3)]


def _pg_url() -> str:
    base = os.environ.get("ASYNCMIGRATE_PG_URL")
    if not base:
        pytest.skip("ASYNCMIGRATE_PG_URL is not set (start one with scripts/postgres.sh)")
    pytest.importorskip("asyncpg")
    return make_url(base).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@pytest.mark.postgres
def test_pooled_asyncpg_connection_fails_on_the_next_requests_loop() -> None:
    with pytest.raises(RuntimeError, match="attached to a different loop|different event loop|another loop"):
        _three_requests(_query_app(_pg_url()))


@pytest.mark.postgres
def test_nullpool_asyncpg_engine_works_on_every_requests_loop() -> None:
    assert _three_requests(_query_app(_pg_url(), poolclass=NullPool)) == [200, 200, 200]


def test_pooled_aiosqlite_connections_cross_loops(tmp_path) -> None:
    pytest.importorskip("aiosqlite")
    assert _three_requests(_query_app(f"sqlite+aiosqlite:///{tmp_path}/x.db")) == [200, 200, 200]
