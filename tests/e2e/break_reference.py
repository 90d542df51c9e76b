#!/usr/bin/env python
"""Prove the e2e suite can fail: break the hand-migrated reference one defect at a time.

Each defect is applied to a fresh temp copy of fixtures/example_backend_reference, then
``pytest tests/e2e`` runs on that copy with ASYNCMIGRATE_E2E_EXPECT=async. A defect is
"caught" when the suite fails. Not collected by pytest (no test_ prefix); run it by hand:

    python tests/e2e/break_reference.py            # sqlite only
    ASYNCMIGRATE_PG_URL=... python tests/e2e/break_reference.py --db postgres
    python tests/e2e/break_reference.py --only time-sleep
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "fixtures" / "example_backend_reference"

# name -> (file, old, new, what it models)
DEFECTS = {
    "missing-await-commit": (
        "app/routers/sync.py",
        "        .execution_options(synchronize_session=False)\n    )\n    await db.commit()",
        "        .execution_options(synchronize_session=False)\n    )\n    db.commit()",
        "DELETE /sync/jobs/finished: `db.commit()` without await (only warns; nothing saved)",
    ),
    "missing-await-rollback": (
        "app/services/order_service.py",
        "    except inventory_service.OutOfStock as exc:\n        await db.rollback()",
        "    except inventory_service.OutOfStock as exc:\n        db.rollback()",
        "create_order: `db.rollback()` without await on the out-of-stock path",
    ),
    "await-add": (
        "app/routers/sync.py",
        "    db.add(job)\n",
        "    await db.add(job)\n",
        "POST /sync/jobs: `await db.add(job)` (TypeError: NoneType can't be awaited)",
    ),
    "lazy-order-items-product": (
        "app/services/order_service.py",
        "    selectinload(Order.items).selectinload(OrderItem.product),\n    selectinload(Order.user),\n)",
        "    selectinload(Order.items),\n    selectinload(Order.user),\n)",
        "OrderOut.items[].product read through the response model without eager loading",
    ),
    "lazy-user-orders": (
        "app/routers/users.py",
        "    user = await UserService(db).get(user_id, with_orders=True)",
        "    user = await UserService(db).get(user_id)",
        "GET /users/{id}: UserWithOrders.orders read without selectinload",
    ),
    "lazy-in-background-task": (
        "app/tasks.py",
        "            .options(selectinload(Order.items).selectinload(OrderItem.product), selectinload(Order.user))\n",
        "",
        "send_order_confirmation (BackgroundTasks): order.items / order.user lazily loaded",
    ),
    "time-sleep-in-sync-job": (
        "app/services/data_sync.py",
        "                    await asyncio.sleep(pause)",
        "                    __import__('time').sleep(pause)",
        "DataSyncService.run: leftover time.sleep between batches",
    ),
    "time-sleep-in-tracker-flush": (
        "app/services/data_sync.py",
        "                await self.db.commit()\n                return\n",
        "                await self.db.commit()\n                __import__('time').sleep(0.2)  # 'let the DB breathe'\n                return\n",
        "SyncProgressTracker.flush: a 0.2 s time.sleep per progress flush",
    ),
    "expire-on-commit-true": (
        "app/database.py",
        "async_sessionmaker(engine, expire_on_commit=False, autoflush=False)",
        "async_sessionmaker(engine, autoflush=False)",
        "async_sessionmaker left with the default expire_on_commit=True; objects are read after commit",
    ),
    "script-not-awaiting": (
        "scripts/sync_all.py",
        "rows = await DataSyncService(db).run(",
        "rows = DataSyncService(db).run(",
        "scripts/sync_all.py calls the now-async DataSyncService.run without await",
    ),
    "script-left-sync": (
        "scripts/sync_all.py",
        "    summary = asyncio.run(run(args))",
        "    summary = run(args)",
        "scripts/sync_all.py calls the async entry point like a sync function",
    ),
    "sync-job-skips-pauses": (
        "app/tasks.py",
        "            rows = await service.run(job_id, batches, batch_size, pause)",
        "            rows = await service.run(job_id, batches, batch_size, 0)",
        "the job skips its pauses (finishes 'fast', not at its normal pace)",
    ),
}


def apply(tree: Path, name: str) -> None:
    rel, old, new, _ = DEFECTS[name]
    path = tree / rel
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"{name}: expected exactly one match of {old!r} in {rel}")
    path.write_text(text.replace(old, new))


def run_suite(tree: Path, db: str, report_dir: Path) -> tuple[int, str, float]:
    env = dict(os.environ, ASYNCMIGRATE_E2E_TREE=str(tree), ASYNCMIGRATE_E2E_EXPECT="async",
               ASYNCMIGRATE_E2E_REPORT=str(report_dir))
    cmd = [sys.executable, "-m", "pytest", "tests/e2e", "-q", "-p", "no:cacheprovider", "-x"]
    if db == "sqlite":
        cmd += ["-k", "not postgres"]
    elif db == "postgres":
        if not os.environ.get("ASYNCMIGRATE_PG_URL"):
            raise SystemExit("--db postgres needs ASYNCMIGRATE_PG_URL")
        cmd += ["-k", "postgres"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


def first_failure(output: str) -> str:
    lines = output.splitlines()
    failed = [l for l in lines if re.match(r"(FAILED|ERROR) tests/", l)]
    reasons = [l.strip() for l in lines if l.startswith("E ")][:3]
    return "; ".join(failed[:2] + reasons)[:600]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres", "all"], default="sqlite",
                        help="which database params to run (postgres needs ASYNCMIGRATE_PG_URL)")
    parser.add_argument("--only", action="append", choices=sorted(DEFECTS))
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    results = []
    for name in args.only or list(DEFECTS):
        with tempfile.TemporaryDirectory(prefix=f"mutant-{name}-") as tmp:
            tree = Path(tmp) / "example_backend_reference"
            shutil.copytree(REFERENCE, tree, ignore=shutil.ignore_patterns("__pycache__", "*.db", "exports"))
            apply(tree, name)
            rc, output, secs = run_suite(tree, args.db, Path(tmp) / "report")
        caught = rc != 0
        results.append({"defect": name, "what": DEFECTS[name][3], "caught": caught,
                        "seconds": round(secs, 1), "first_failure": first_failure(output) if caught else "",
                        "output_tail": output.splitlines()[-40:]})
        print(f"{'CAUGHT ' if caught else 'MISSED '} {name:32s} {secs:5.1f}s  {results[-1]['first_failure'][:300]}",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["caught"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
