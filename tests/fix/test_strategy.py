"""``fix --strategy native|threadpool|auto`` (issue 10) on one small project, through the command line.

The project has what tells the strategies apart: routes that await nothing (``threadpool`` makes them ``def``),
a route that awaits a request body and then writes through the sync session (its database part goes to
``run_in_db_thread`` of the generated bridge module), and an export that queries and then writes a file with ``open()``: ``native`` converts
the query and has to leave the file write on the loop, ``auto`` then moves that write to the threadpool.

For each strategy: the diff is the one expected of it, ``--write`` leaves files that parse and compile, a
second run changes nothing, the summary says which strategy each component got, and a rescan counts the
blocks-loop findings that are left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest

DATABASE = '''\
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker

engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})
SessionLocal = sessionmaker(bind=engine, autocommit=False, autoflush=False)


class Base(DeclarativeBase):
    pass


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()
'''

MODELS = '''\
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(200))
'''

ROUTES = '''\
from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from app.database import get_db
from app.models import Note

router = APIRouter()


@router.get("/notes/{note_id}")
async def read_note(note_id: int, db: Session = Depends(get_db)):
    note = db.get(Note, note_id)
    return {"id": note.id, "text": note.text}


@router.post("/notes")
async def create_note(request: Request, db: Session = Depends(get_db)):
    payload = await request.json()
    note = Note(text=payload["text"])
    db.add(note)
    db.commit()
    db.refresh(note)
    return {"id": note.id}


@router.post("/notes/export")
async def export_notes(path: str, db: Session = Depends(get_db)):
    texts = [n.text for n in db.query(Note).order_by(Note.id).all()]
    with open(path, "w") as fh:
        fh.write("\\n".join(texts))
    return {"rows": len(texts)}
'''


def _project(root: Path) -> Path:
    app = root / "app"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "database.py").write_text(DATABASE)
    (app / "models.py").write_text(MODELS)
    (app / "routes.py").write_text(ROUTES)
    (root / "requirements.txt").write_text("fastapi\nsqlalchemy\n")
    return root


def _asyncmigrate(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "asyncmigrate", *args, "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)


def _blocks_loop(cwd: Path) -> list[str]:
    proc = _asyncmigrate(cwd, "scan", ".", "--format", "json")
    found = json.loads(proc.stdout)["findings"]
    return sorted(f"{f['path']}:{f['line']}: {f['code']}" for f in found
                  if f["severity"] == "blocks-loop" and f["category"] != "session-dependency")


def _function(source: str, name: str) -> cst.FunctionDef:
    for node in cst.parse_module(source).body:
        if isinstance(node, cst.FunctionDef) and node.name.value == name:
            return node
    raise AssertionError(f"no function {name}")


def _is_async(source: str, name: str) -> bool:
    return _function(source, name).asynchronous is not None


@pytest.fixture(scope="module", params=["native", "threadpool", "auto"])
def migrated(request, tmp_path_factory):
    """(strategy, project, stderr of --write, routes.py after) for one strategy."""
    root = _project(tmp_path_factory.mktemp(request.param) / "project")
    before = _blocks_loop(root)
    proc = _asyncmigrate(root, "fix", ".", "--strategy", request.param, "--write")
    assert proc.returncode == 0, proc.stderr
    return request.param, root, proc.stderr, (root / "app" / "routes.py").read_text(), before


def test_bridge_module_only_where_code_uses_it(migrated):
    """The generated ``app/db_bridge.py`` (beside ``app/database.py``) exists when offloaded code imports it."""
    strategy, root, err, routes, _before = migrated
    bridge = root / "app" / "db_bridge.py"
    assert bridge.exists() == (strategy != "native") == ("run_in_db_thread" in routes)
    if bridge.exists():
        assert "from app.database import SessionLocal, engine" in bridge.read_text()
        assert "app/db_bridge.py: the thread-pool bridge module (generated)" in err


def test_written_files_parse_and_compile(migrated):
    _strategy, root, _err, _routes, _before = migrated
    for path in root.rglob("*.py"):
        data = path.read_bytes()
        cst.parse_module(data)
        compile(data, str(path), "exec", dont_inherit=True)


def test_second_run_changes_nothing(migrated):
    strategy, root, _err, _routes, _before = migrated
    again = _asyncmigrate(root, "fix", ".", "--strategy", strategy, "--diff")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "", again.stdout


def test_the_diff_each_strategy_makes(migrated):
    strategy, _root, _err, routes, _before = migrated
    if strategy == "threadpool":
        # the sync code stays; the route that awaits nothing is a def, the other awaits its database part
        assert "AsyncSession" not in routes and "select(" not in routes
        assert not _is_async(routes, "read_note") and not _is_async(routes, "export_notes")
        create = cst.Module(body=[_function(routes, "create_note")]).code
        assert "await run_in_db_thread(_blocking_part" in create
        assert "db.commit()" in create and "await db.commit()" not in create
        assert "from app.db_bridge import run_in_db_thread" in routes
    else:
        # native conversion of every route; auto also moves the file write off the loop
        assert "AsyncSession" in routes and "await db.commit()" in routes
        export = cst.Module(body=[_function(routes, "export_notes")]).code
        assert ("await run_in_db_thread(" in export) == (strategy == "auto")
        assert _is_async(routes, "read_note")


def test_summary_names_the_strategy_of_each_component(migrated):
    strategy, _root, err, _routes, _before = migrated
    if strategy == "native":
        assert "strategy " not in err
        return
    assert f"strategy {strategy}:" in err
    if strategy == "threadpool":
        assert "threadpool: 2 coroutines made def" in err, err
        assert "app/routes.py:11: read_note: async def → def (runs in the framework's threadpool)" in err
        assert "app/routes.py:17: create_note: blocking part awaited in the threadpool" in err
        assert "native (AsyncSession)" not in err
    else:
        assert "native (AsyncSession): " in err and "native (AsyncSession): 0 functions" not in err
        assert "export_notes: blocking part awaited in the threadpool" in err, err


def test_blocks_loop_findings_left(migrated):
    strategy, root, _err, _routes, before = migrated
    after = _blocks_loop(root)
    assert before, "the project must block the loop before the rewrite"
    if strategy == "native":
        # the file write native cannot take
        assert [f.split(": ")[1] for f in after] == ["ASM301"] and after[0].startswith("app/routes.py:"), after
    else:
        assert after == [], after


def test_unknown_strategy_is_a_usage_error(tmp_path):
    root = _project(tmp_path / "project")
    proc = _asyncmigrate(root, "fix", ".", "--strategy", "greenlet")
    assert proc.returncode == 2
    assert "greenlet" in proc.stderr
