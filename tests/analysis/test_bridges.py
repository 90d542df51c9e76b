"""Thread-pool bridges (issue 10): code a bridge runs in a worker thread is debt, the same code called from
``async def`` blocks the loop.

Each tree under ``fixtures/bridges/<shape>/`` holds one family of bridge shapes, with its truth counted by hand
on the lines themselves (``# truth: ASM110 debt``, the format of ``fixtures/recall``): every ASM1xx/ASM2xx
finding of the tree must be marked, and every mark found.  Each tree has its negatives: a function called
directly (or evaluated in a runner's argument list, or handed to a helper or decorator that only *looks* like
a bridge) is blocks-loop.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from asyncmigrate.report.github import finding_command

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "bridges"
TREES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
_MARKER = re.compile(r"#\s*truth:\s*(ASM\d{3})\s+(blocks-loop|debt)")


def truth(tree: Path) -> set[tuple[str, int, str, str]]:
    out = set()
    for path in sorted(tree.rglob("*.py")):
        rel = path.relative_to(tree).as_posix()
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            for code, severity in _MARKER.findall(line):
                out.add((rel, line_no, code, severity))
    return out


@functools.lru_cache(maxsize=None)
def scan(name: str):
    tree = ROOT / name
    run = analyse_paths([str(tree)], Config(), use_cache=False, jobs=1)
    assert run.result.errors == []
    return tree, run


def _rel(tree: Path, path: str) -> str:
    return Path(os.path.relpath(os.path.abspath(path), tree)).as_posix()


def chains(name: str) -> dict[tuple[str, int, str], tuple[str, ...]]:
    tree, run = scan(name)
    return {(_rel(tree, f.path), f.span.line, f.code): f.chain for f in run.result.findings}


def test_every_shape_has_a_tree():
    assert TREES == ["decorators", "generated_bridge", "project_helpers", "runners", "shared_session"]


@pytest.mark.parametrize("name", TREES)
def test_findings_match_the_hand_counted_truth(name):
    tree, run = scan(name)
    found = {(_rel(tree, f.path), f.span.line, f.code, f.severity) for f in run.result.findings
             if f.code.startswith(("ASM1", "ASM2"))}
    expected = truth(tree)
    assert sorted(found - expected) == [], "false or mis-graded findings"
    assert sorted(expected - found) == [], "missed findings"
    # each tree has both sides: code under a bridge (debt) and the same kind of code on the loop
    severities = {(code, sev) for _p, _l, code, sev in expected}
    assert {("ASM110", "debt"), ("ASM110", "blocks-loop")} <= severities


@pytest.mark.parametrize(("name", "where", "chain"), [
    ("runners", ("app/crud.py", 8, "ASM110"),
     ("app.routes.starlette_reference", "starlette.concurrency.run_in_threadpool", "app.crud.list_users")),
    ("runners", ("app/crud.py", 12, "ASM110"),
     ("app.routes.fastapi_reference", "fastapi.concurrency.run_in_threadpool", "app.crud.count_users")),
    ("runners", ("app/crud.py", 18, "ASM120"), ("app.routes.to_thread_keywords", "asyncio.to_thread", "app.crud.rename")),
    ("runners", ("app/crud.py", 22, "ASM110"), ("app.routes.anyio_partial", "anyio.to_thread.run_sync", "app.crud.purge")),
    # through a sync call inside the thread
    ("runners", ("app/crud.py", 31, "ASM110"),
     ("app.routes.executor_partial", "loop.run_in_executor", "app.crud.audit", "app.crud._audit_rows")),
    # a lambda handed to the runner: the chain ends at the runner
    ("runners", ("app/routes.py", 56, "ASM110"), ("app.routes.executor_lambda", "loop.run_in_executor")),
    ("runners", ("app/routes.py", 86, "ASM110"),
     ("app.routes.loop_query_beside_a_lambda", "starlette.concurrency.run_in_threadpool")),
    # the negatives: on the loop, no bridge in the chain
    ("runners", ("app/crud.py", 35, "ASM110"), ("app.routes.direct", "app.crud.first_user")),
    ("runners", ("app/crud.py", 39, "ASM110"), ("app.routes.evaluated_on_the_loop", "app.crud.newest_user")),
    ("project_helpers", ("app/crud.py", 11, "ASM110"),
     ("app.routes.count", "app.helpers.offload_twice_removed", "app.crud.count_users")),
    ("project_helpers", ("app/crud.py", 20, "ASM110"), ("app.routes.oldest", "app.helpers.Runner.run", "app.crud.oldest")),
    ("project_helpers", ("app/crud.py", 24, "ASM110"),
     ("app.routes.newest", "app.helpers.run_in_thread", "app.crud.newest")),
    ("decorators", ("app/crud.py", 18, "ASM110"),
     ("app.routes.count", "app.deco.threaded.<locals>.run", "app.crud.count_users", "app.crud._count")),
    ("decorators", ("app/crud.py", 45, "ASM110"),
     ("app.routes.names", "app.deco.async_db_operation.<locals>.wrapper", "app.crud.UserOper.names")),
    ("decorators", ("app/crud.py", 36, "ASM110"),
     ("app.routes.newest", "app.deco.run_in_threadpool_decorator.<locals>.wrapper", "app.crud.newest")),
    ("generated_bridge", ("app/routes.py", 19, "ASM110"),
     ("app.routes.user_by_name", "app.db_bridge.async_db_operation.<locals>.wrapper", "app.routes.get_user_by_name_sync")),
    # a class handed to ``to_async_db_oper``: its methods run in the worker, whichever the derived class is asked for
    ("generated_bridge", ("app/user_oper.py", 15, "ASM120"),
     ("app.routes.<module>", "app.db_bridge.to_async_db_oper", "app.user_oper.UserOper.add")),
    # b10b's shape: a local def the route hands to the pool; the route's session parameter is used only there
    ("runners", ("app/routes.py", 94, "ASM120"), ("app.routes.local_function_in_the_pool",
     "starlette.concurrency.run_in_threadpool", "app.routes.local_function_in_the_pool.<locals>._blocking_part")),
    ("runners", ("app/routes.py", 91, "ASM102"),
     ("app.routes.local_function_in_the_pool", "starlette.concurrency.run_in_threadpool")),
    ("runners", ("app/routes.py", 103, "ASM120"), ("app.routes.local_function_called_on_the_loop",
     "app.routes.local_function_called_on_the_loop.<locals>._blocking_part")),
    ("generated_bridge", ("app/routes.py", 23, "ASM110"),
     ("app.routes.user_count", "app.db_bridge.run_in_db_thread", "app.routes.count_users")),
])
def test_the_chain_names_the_bridge(name, where, chain):
    assert chains(name)[where] == chain


def test_project_runners_are_found_by_their_code_not_their_names():
    _tree, run = scan("project_helpers")
    bridges = run.analysis.project.bridges
    params = {fid.split(":", 1)[1]: set(names) for fid, names in bridges.thread_params.items()
              if fid.startswith("app.helpers:")}
    assert params == {"offload": {"fn"}, "offload_twice_removed": {"func"}, "with_limiter": {"work"},
                      "Runner.run": {"fn"}}
    _tree, run = scan("decorators")
    bridged = {f.split(":", 1)[1]: w.split(":", 1)[1] for f, w in run.analysis.project.bridges.bridged_by.items()}
    assert bridged == {
        "get_user": "async_db_operation.<locals>.wrapper",
        "count_users": "threaded.<locals>.run",
        "rename": "offload.<locals>.decorate.<locals>.inner",
        "purge": "in_pool.<locals>.wrapper",
        "UserOper.names": "async_db_operation.<locals>.wrapper",
    }


def test_reports_say_a_debt_chain_runs_in_a_thread_pool():
    _tree, run = scan("runners")
    f = next(f for f in run.result.findings if f.code == "ASM110" and f.path.endswith("crud.py") and f.span.line == 8)
    assert f.severity == "debt"
    assert "runs in a thread pool via app.routes.starlette_reference → starlette.concurrency.run_in_threadpool" \
        in finding_command(f)
    loop = next(f for f in run.result.findings if f.code == "ASM110" and f.path.endswith("crud.py") and f.span.line == 35)
    assert "on the loop via app.routes.direct" in finding_command(loop)


def test_a_session_handed_to_a_bridge_reaches_the_functions_parameter():
    # ``tx`` is no session-like name and has no annotation: only the call through the bridge says what it is
    from tests.helpers import findings

    fs = findings({"app/db.py": """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import sessionmaker
        SessionLocal = sessionmaker(bind=create_engine("sqlite://"))
    """, "app/r.py": """
        import asyncio, functools
        from starlette.concurrency import run_in_threadpool
        from app.db import SessionLocal

        def load(tx, uid):
            return tx.query(User).get(uid)

        def load_by_keyword(uid, tx=None):
            return tx.query(User).get(uid)

        class Oper:
            def work(self, tx):
                tx.commit()

        def unrelated(tx):
            tx.commit()

        async def route():
            with SessionLocal() as s:
                await run_in_threadpool(load, s, 1)
                await asyncio.get_running_loop().run_in_executor(None, functools.partial(load_by_keyword, 1, tx=s))
                await asyncio.to_thread(Oper().work, s)
                await asyncio.to_thread(unrelated, 1)
    """})
    got = [(f.path, f.span.line, f.code, f.severity, f.evidence) for f in fs if f.path == "app/r.py"]
    assert got == [
        ("app/r.py", 7, "ASM110", "debt", "call-site"),
        ("app/r.py", 10, "ASM110", "debt", "call-site"),
        ("app/r.py", 14, "ASM120", "debt", "call-site"),
        ("app/r.py", 20, "ASM103", "blocks-loop", "factory"),
    ]
