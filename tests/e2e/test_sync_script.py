"""`python scripts/sync_all.py` (the cron job) against the same database as a running server."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCRIPT_TIMEOUT = 120


def test_sync_script_writes_every_row(server, db, http, tmp_path):
    summary_path = tmp_path / "summary.json"
    env = dict(os.environ, DATABASE_URL=server.db_url, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "scripts/sync_all.py", "--batches", "3", "--batch-size", "10",
         "--summary", str(summary_path)],
        cwd=server.tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    output = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, output
    for bad in ("was never awaited", "MissingGreenlet", "greenlet_spawn has not been called"):
        assert bad not in proc.stderr, output

    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert json.loads(summary_path.read_text()) == summary
    job_id = summary["job_id"]
    assert summary["rows_written"] == 30
    # item 0 of each batch has stock 0 and is hidden by the reconcile step
    assert summary["hidden_products"] == 3

    prefix = f"SUP{job_id:04d}-%"
    with db.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM products WHERE sku LIKE :p"), {"p": prefix}).scalar()
        hidden = conn.execute(
            sa.text("SELECT count(*) FROM products WHERE sku LIKE :p AND is_active = :f"),
            {"p": prefix, "f": False},
        ).scalar()
        job = conn.execute(
            sa.text("SELECT source, status, batches_done, rows_written FROM sync_jobs WHERE id = :i"),
            {"i": job_id},
        ).one()
    assert total == 30 and hidden == 3
    assert tuple(job) == ("cli", "completed", 3, 30)

    # and the running app sees it
    over_http = http.get(f"/sync/jobs/{job_id}").json()
    assert over_http["status"] == "completed" and over_http["rows_written"] == 30
    listed = http.get("/products", params={"q": "Supplier item", "page_size": 100}).json()
    assert listed["total"] == 27
    stock = {s["category"]: s["product_count"] for s in http.get("/reports/stock-by-category").json()}
    assert sum(stock.get(c, 0) for c in ("Hardware", "Garden", "Kitchen", "Office")) == 30


def test_sync_script_is_idempotent_per_job(server, db, tmp_path):
    """A second run upserts its own rows and leaves the first run's rows alone."""
    env = dict(os.environ, DATABASE_URL=server.db_url)
    outputs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "scripts/sync_all.py", "--batches", "2", "--batch-size", "5", "--no-reconcile"],
            cwd=server.tree, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert outputs[0]["job_id"] != outputs[1]["job_id"]
    with db.connect() as conn:
        for out in outputs:
            n = conn.execute(
                sa.text("SELECT count(*) FROM products WHERE sku LIKE :p AND is_active = :t"),
                {"p": f"SUP{out['job_id']:04d}-%", "t": True},
            ).scalar()
            assert n == 10
