"""The generated bridge module (``codemods/bridge_module.py``) runs: rendered on a small project's own factory and
engine, imported in a subprocess, and driven on SQLite.

What it must do (issue 10, item 3): run sync code in a pool of exactly ``pool_size + max_overflow`` threads;
one unit of work per call (a session opened, committed and closed in the worker, rolled back on error);
objects returned usable after their session closed (``expire_on_commit=False``); an async twin of a sync
``*Oper`` class; an ``async with`` session committed on a clean exit and rolled back otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from asyncmigrate.codemods.bridge_module import MARKER, render

DATABASE = '''\
from sqlalchemy import Integer, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

engine = create_engine("sqlite:///{path}", pool_size=3, max_overflow=2, connect_args={{"check_same_thread": False}})
SessionLocal = sessionmaker(bind=engine)


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(50))


Base.metadata.create_all(engine)
'''

DRIVE = '''\
import asyncio
import threading

from sqlalchemy import func, select

from app.database import Note, SessionLocal
from app.db_bridge import AsyncDbSession, _executor, async_db_operation, run_in_db_thread, to_async_db_oper


@async_db_operation
def add_note(db, text):
    note = Note(text=text)
    db.add(note)
    db.flush()
    return note


@async_db_operation
def fail(db):
    db.add(Note(text="never"))
    db.flush()
    raise ValueError("boom")


class NoteOper:
    def __init__(self, db, prefix):
        self.db, self.prefix = db, prefix

    def add(self, text):
        self.db.add(Note(text=self.prefix + text))

    def count(self):
        return self.db.scalar(select(func.count(Note.id)))


def count():
    with SessionLocal() as db:
        return db.scalar(select(func.count(Note.id)))


async def main():
    assert _executor._max_workers == 5, _executor._max_workers  # pool_size 3 + max_overflow 2
    name = await run_in_db_thread(lambda: threading.current_thread().name)
    assert name.startswith("db-bridge"), name

    note = await add_note("first")
    assert note.text == "first" and note.id  # readable after its session closed: expire_on_commit=False
    try:
        await fail()
    except ValueError:
        pass
    else:
        raise AssertionError("the error did not propagate")
    assert await run_in_db_thread(count) == 1  # the failed unit of work was rolled back

    AsyncNoteOper = to_async_db_oper(NoteOper)
    oper = AsyncNoteOper("oper-")
    await asyncio.gather(*(oper.add(str(i)) for i in range(8)))  # each call: a session of its own
    assert await oper.count() == 9

    async with AsyncDbSession() as s:
        await s.run(lambda db: db.add(Note(text="in session")))
    try:
        async with AsyncDbSession() as s:
            await s.run(lambda db: db.add(Note(text="rolled back")))
            raise KeyError("x")
    except KeyError:
        pass
    assert await run_in_db_thread(count) == 10
    print("bridge ok")


asyncio.run(main())
'''


def test_generated_bridge_module_runs(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "database.py").write_text(DATABASE.format(path=tmp_path / "notes.db"))
    text = render("app.database", "SessionLocal", "engine")
    assert text.splitlines()[0] == MARKER
    (app / "db_bridge.py").write_text(text)
    (tmp_path / "drive.py").write_text(DRIVE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run([sys.executable, "-X", "dev", "drive.py"], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "bridge ok" in run.stdout


def test_default_pool_capacity_without_an_engine() -> None:
    """No engine found: SQLAlchemy's QueuePool defaults (5 + 10)."""
    text = render("app.database", "SessionLocal", None)
    assert "pool = None" in text and "return 5 + 10" in text and ", engine" not in text
