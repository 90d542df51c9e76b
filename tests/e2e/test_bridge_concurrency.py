"""Concurrent requests through bridged code (issue 10): ``fix --strategy threadpool`` on the example backend, on
PostgreSQL, with a connection pool smaller than the number of requests in flight.

The server runs with a ``sitecustomize`` (on ``PYTHONPATH``, so the app is still never imported here) that
wraps the public methods of SQLAlchemy's ``Session`` and records, for every call, the session and the thread
making it.  Forty requests (reads, order writes with their commit) are sent at once, twice, while the sync job
runs in its own thread.  Then:

* every request succeeded, the orders are in the database, and the log has no pool timeout;
* no session was used by two threads at the same time (a sync ``Session`` is not thread-safe);
* no session was used on the event loop's thread (the main thread): the bridge took all database work off it;
* the work really was spread over several worker threads (the instrumentation saw it).
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from .conftest import LEGACY_TREE, db_engine, running_backend
from .test_acceptance import start_job, wait_until_finished, wait_until_running

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

N_CONCURRENT = 40
ROUNDS = 2
JOB = dict(batches=30, batch_size=20, pause=0.2)

SITECUSTOMIZE = '''
import json, os, threading
from sqlalchemy.orm import Session

_path = os.environ["BRIDGE_TRACE"]
_lock = threading.Lock()
_active = {}  # id(session) -> (thread ident, depth)
_main = threading.main_thread().ident


def _write(event):
    with open(_path, "a") as fh:
        fh.write(json.dumps(event) + "\\n")


def _wrap(name):
    original = getattr(Session, name)

    def wrapper(self, *args, **kwargs):
        me = threading.get_ident()
        key = id(self)
        with _lock:
            owner = _active.get(key)
            if owner is not None and owner[0] != me:
                _write({"kind": "shared", "session": key, "threads": [owner[0], me], "method": name})
            _active[key] = (me, owner[1] + 1 if owner is not None and owner[0] == me else 1)
            _write({"kind": "use", "session": key, "thread": me, "main": me == _main, "method": name})
        try:
            return original(self, *args, **kwargs)
        finally:
            with _lock:
                current = _active.get(key)
                if current is not None and current[0] == me:
                    if current[1] <= 1:
                        del _active[key]
                    else:
                        _active[key] = (me, current[1] - 1)

    setattr(Session, name, wrapper)


for _name in ("execute", "scalars", "scalar", "get", "flush", "commit", "rollback", "refresh", "merge", "delete",
              "close"):
    _wrap(_name)
'''


@pytest.fixture(scope="module")
def bridged_tree(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("bridged") / "example_backend_threadpool"
    shutil.copytree(LEGACY_TREE, tree, ignore=shutil.ignore_patterns("__pycache__", "*.db", ".pytest_cache"))
    proc = subprocess.run([sys.executable, "-m", "asyncmigrate", "fix", str(tree), "--strategy", "threadpool",
                           "--write", "--no-cache"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return tree


async def _burst(base_url: str, user_id: int, product_ids: list[int], order_id: int) -> list[tuple[str, int, str]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as http:
        async def one(i: int):
            kind = i % 4
            if kind == 0:
                r = await http.post("/orders", json={"user_id": user_id,
                                                     "items": [{"product_id": product_ids[i % len(product_ids)],
                                                                "quantity": 1}]})
            elif kind == 1:
                r = await http.get(f"/orders/{order_id}")
            elif kind == 2:
                r = await http.get("/products", params={"page_size": 10})
            else:
                r = await http.get(f"/users/{user_id}")
            return r.request.url.path, r.status_code, r.text[:200]
        return await asyncio.gather(*(one(i) for i in range(N_CONCURRENT)))


def test_concurrent_requests_through_the_bridge(bridged_tree, tmp_path):
    instrument = tmp_path / "instrument"
    instrument.mkdir()
    (instrument / "sitecustomize.py").write_text(SITECUSTOMIZE)
    trace = tmp_path / "trace.jsonl"
    # 5 + 20 connections for 40 requests in flight and the job's own session.  Since FastAPI 0.118 a yield
    # dependency exits after the response *and its background tasks*, so each POST /orders holds its request
    # session's connection while its confirmation task opens a second session: the 10 orders of a burst (20
    # while the previous burst's tasks still run) can hold their connections and wait for as many more.  A
    # pool of 10 (5 + 5) then deadlocks until the pool timeout in the migrated app -- and in any hand-written
    # `def` version of it; a pool larger than those holders plus the job cannot, and is still below the 40.
    env = {"PYTHONPATH": str(instrument), "BRIDGE_TRACE": str(trace), "DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "20"}
    with running_backend(bridged_tree, "postgres", tmp_path / "srv", extra_env=env) as server:
        with server.client() as http:
            user = http.post("/users", json={"email": "burst@example.com", "name": "Burst"}).json()
            cat = http.post("/categories", json={"name": "Burst"}).json()
            products = [http.post("/products", json={"sku": f"BURST-{i}", "name": f"Burst {i}", "price_cents": 100,
                                                      "stock": 1000, "category_id": cat["id"]}).json()
                        for i in range(4)]
            order = http.post("/orders", json={"user_id": user["id"],
                                               "items": [{"product_id": products[0]["id"], "quantity": 1}]})
            assert order.status_code == 201, order.text
        engine = db_engine(server.db_url)
        try:
            job_id = start_job(server, JOB)
            wait_until_running(engine, job_id)
            results = []
            for _ in range(ROUNDS):
                results += asyncio.run(_burst(server.base_url, user["id"], [p["id"] for p in products],
                                              order.json()["id"]))
            failed = [r for r in results if r[1] not in (200, 201)]
            assert not failed, (failed[:5], server.log_tail(60))
            final = wait_until_finished(engine, job_id, JOB)
            assert final.status == "completed"
            with engine.connect() as conn:
                orders = conn.execute(sa.text("SELECT count(*) FROM orders WHERE user_id = :u"),
                                      {"u": user["id"]}).scalar()
            assert orders == 1 + ROUNDS * len([i for i in range(N_CONCURRENT) if i % 4 == 0])
        finally:
            engine.dispose()
        log = server.log_text()
    assert "QueuePool limit" not in log and "TimeoutError" not in log, server.log_tail()
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    shared = [e for e in events if e["kind"] == "shared"]
    on_loop = [e for e in events if e["kind"] == "use" and e["main"]]
    threads = {e["thread"] for e in events if e["kind"] == "use"}
    sessions = {e["session"] for e in events if e["kind"] == "use"}
    assert not shared, f"a session was used by two threads at once: {shared[:5]}"
    assert not on_loop, f"sessions used on the event loop's thread: {on_loop[:5]}"
    assert len(sessions) > N_CONCURRENT and len(threads) > 4, (len(sessions), len(threads))
