"""``fix`` write safety (DESIGN "Write safety"): what ``--diff``/``--check``/``--write`` may and may not do to disk.

* ``--diff`` and ``--check`` change no byte and leave no file behind; ``--check`` exits 1 when there are
  changes and 0 when there are none.
* ``--write`` keeps each file's encoding (a latin-1 coding cookie, a UTF-8 BOM), newline style (CRLF) and
  permission bits.
* Atomicity: ``fix --write`` killed at random moments (SIGKILL, and SIGINT) leaves every file byte-identical
  to its old or its new version, never half-written.  A SIGKILL that lands between ``mkstemp`` and
  ``os.replace`` *can* leave a ``.asyncmigrate-*.tmp`` file in the directory: nothing can clean up after
  SIGKILL.  What must hold is that such a file never takes the place of a real one (every real file is
  old-or-new, and the temp file is a dotfile ending in ``.tmp``, which no later run discovers).  SIGINT
  runs the cleanup, so after it no temp file is left.
* A rewrite whose output does not compile is never written: that file is reported with the reason, and
  since a half-applied cross-module migration would be inconsistent, ``--write`` then writes nothing at all.
* Bad input (a syntax error, undecodable bytes) among good files: reported per file, the good files are
  still fixed, exit code 3.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner

from asyncmigrate.cli import main
from asyncmigrate.codemods import BY_NAME
from asyncmigrate.codemods.await_session_methods import AwaitSessionMethods

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
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
'''

ROUTER = '''\
from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from app.database import get_db
from app.models import User

router = APIRouter()


@router.post("/users/{n}")
async def create_user_{n}(name: str, db: Session = Depends(get_db)):
    """Crée l'utilisateur « {n} » (café)."""
    db.add(User(name=name))
    db.commit()
    return {{"id": {n}}}
'''

UNCHANGED = '''\
def helper(x: int) -> int:
    return x + 1
'''


def make_project(root: Path, routers: int = 3) -> Path:
    (root / "app" / "routers").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "routers" / "__init__.py").write_text("")
    (root / "app" / "database.py").write_text(DATABASE)
    (root / "app" / "models.py").write_text(MODELS)
    (root / "app" / "util.py").write_text(UNCHANGED)
    for n in range(routers):
        (root / "app" / "routers" / f"r{n:03d}.py").write_text(ROUTER.format(n=n), encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for rel, data in snapshot(root).items():
        h.update(rel.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".asyncmigrate-*"))


def fix(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "asyncmigrate", "fix", str(root), *args, "--no-cache"],
                          cwd=root, capture_output=True, text=True, env=env, timeout=300)


# ---------------------------------------------------------------- --diff / --check
@pytest.mark.parametrize("mode", ["--diff", "--check"])
def test_diff_and_check_change_no_byte(tmp_path: Path, mode: str) -> None:
    root = make_project(tmp_path / "p")
    before = snapshot(root)
    modes = {p: p.stat().st_mode for p in root.rglob("*")}

    proc = fix(root, mode)

    assert proc.returncode == (1 if mode == "--check" else 0), proc.stderr
    assert snapshot(root) == before
    assert {p: p.stat().st_mode for p in root.rglob("*")} == modes
    assert temp_files(root) == []
    if mode == "--diff":
        assert "+    await db.commit()" in proc.stdout
    else:
        assert proc.stdout == ""


def test_check_exits_0_when_there_is_nothing_to_change(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    assert fix(root, "--write").returncode == 0
    migrated = snapshot(root)

    proc = fix(root, "--check")

    assert proc.returncode == 0, proc.stderr
    assert snapshot(root) == migrated
    assert temp_files(root) == []


def test_check_exits_1_for_one_pending_change(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    assert fix(root, "--write").returncode == 0
    # a new sync route appears in an already-migrated module
    (root / "app" / "routers" / "r999.py").write_text(ROUTER.format(n=999), encoding="utf-8")
    before = snapshot(root)

    proc = fix(root, "--check")

    assert proc.returncode == 1, proc.stderr
    assert snapshot(root) == before
    assert temp_files(root) == []


# ---------------------------------------------------------------- --write keeps encoding, newlines, mode
def test_write_keeps_encoding_newlines_and_permissions(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", routers=0)
    routers = root / "app" / "routers"
    text = ROUTER.format(n=1)
    latin = routers / "latin.py"
    latin.write_bytes(("# -*- coding: latin-1 -*-\n" + text).encode("latin-1"))
    bom = routers / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    crlf = routers / "crlf.py"
    crlf.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    script = routers / "script.py"
    script.write_bytes(("#!/usr/bin/env python3\n" + text).encode("utf-8"))
    latin.chmod(0o640)
    script.chmod(0o755)
    crlf.chmod(0o600)

    proc = fix(root, "--write")
    assert proc.returncode == 0, proc.stderr

    for path in (latin, bom, crlf, script):
        assert b"await db.commit()" in path.read_bytes(), path.name
    # latin-1 stays latin-1 (é is one byte 0xE9), and still decodes with its cookie
    data = latin.read_bytes()
    assert data.startswith(b"# -*- coding: latin-1 -*-\n")
    assert b"caf\xe9" in data and b"caf\xc3\xa9" not in data
    compile(data, str(latin), "exec")
    # the BOM is kept, once
    data = bom.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and not data.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")
    assert "café".encode() in data
    # CRLF everywhere, including on the lines the rewrite added; no bare LF
    data = crlf.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") >= text.count("\n")  # every line, the new ones too
    # permission bits
    assert stat.S_IMODE(latin.stat().st_mode) == 0o640
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert stat.S_IMODE(crlf.stat().st_mode) == 0o600
    assert script.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert temp_files(root) == []
    # and a second run agrees that there is nothing left to do
    assert fix(root, "--diff").stdout == ""


def test_diff_of_a_latin1_file_is_readable(tmp_path: Path) -> None:
    """The diff shows the file's text (decoded with its own encoding), not replacement characters."""
    root = make_project(tmp_path / "p", routers=0)
    (root / "app" / "routers" / "latin.py").write_bytes(
        ("# -*- coding: latin-1 -*-\n" + ROUTER.format(n=1)).encode("latin-1"))

    proc = fix(root, "--diff")

    assert proc.returncode == 0, proc.stderr
    assert "\ufffd" not in proc.stdout
    assert "« 1 » (café)" in proc.stdout


# ---------------------------------------------------------------- atomicity under kill
def _start(root: Path, extra_env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(extra_env or {})}
    # its own process group: the worker pool dies with it, and SIGINT reaches the group like a Ctrl-C would
    return subprocess.Popen([sys.executable, "-m", "asyncmigrate", "fix", str(root), "--write", "--no-cache", "-q"],
                            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)


def _stop(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def _write_started(root: Path, database_mtime: int) -> bool:
    """The first write has begun: a temp file exists, or the first file written (app/database.py) changed."""
    for directory in (root / "app", root / "app" / "routers"):
        with os.scandir(directory) as entries:
            if any(e.name.startswith(".asyncmigrate-") for e in entries):
                return True
    return (root / "app" / "database.py").stat().st_mtime_ns != database_mtime


@pytest.fixture(scope="module")
def many_files(tmp_path_factory) -> tuple[Path, dict[str, bytes], dict[str, bytes], float]:
    """A project of ~40 files, its bytes before and after ``fix --write``, and how long its write phase lasts.

    Files are written in path order, app/database.py first and app/routers/r039.py last: the write phase is
    measured from the first temp file (or the first change) to the last router's change.
    """
    base = tmp_path_factory.mktemp("atomic")
    original = make_project(base / "original", routers=ROUTERS)
    old = snapshot(original)
    done = base / "done"
    shutil.copytree(original, done)
    last = done / "app" / "routers" / f"r{ROUTERS - 1:03d}.py"
    last_mtime, database_mtime = last.stat().st_mtime_ns, (done / "app" / "database.py").stat().st_mtime_ns
    proc = _start(done)
    first = end = None
    while proc.poll() is None and end is None:
        now = time.monotonic()
        if first is None and _write_started(done, database_mtime):
            first = now
        if first is not None and last.stat().st_mtime_ns != last_mtime:
            end = now
        time.sleep(0.0005)
    assert proc.wait(timeout=300) == 0
    new = snapshot(done)
    assert sum(old[k] != new[k] for k in old) == ROUTERS + 1  # every router and the database module change
    window = (end - first) if first is not None and end is not None else 0.05
    return original, old, new, max(window, 0.005)


ROUTERS = 40


def _assert_old_or_new(root: Path, old: dict[str, bytes], new: dict[str, bytes], sig: int, delay: float) -> int:
    """Every real file is its old or its new version; returns how many changed files are new."""
    now = snapshot(root)
    temps = [p.relative_to(root).as_posix() for p in temp_files(root)]
    real = {k: v for k, v in now.items() if k not in temps}
    where = f"(signal {int(sig)} {delay * 1000:.1f} ms into the write phase)"
    assert set(real) == set(old), f"files appeared or vanished {where}"
    for rel, data in real.items():
        assert data in (old[rel], new[rel]), f"{rel} is neither old nor new {where}"
    for rel in temps:
        name = rel.rsplit("/", 1)[-1]
        assert name.startswith(".asyncmigrate-") and name.endswith(".tmp"), rel
    if sig == signal.SIGINT:
        assert temps == [], f"SIGINT left temp files {where}: {temps}"
    return sum(real[k] == new[k] and old[k] != new[k] for k in real)


def _start_paused(root: Path, point: str) -> tuple[subprocess.Popen, Path]:
    """``fix --write`` that stops at the pause point ``point`` (``asyncmigrate.pause_points``) and waits there."""
    marker = root.parent / f"{root.name}.paused"
    env = {"ASYNCMIGRATE_TEST_PAUSE": point, "ASYNCMIGRATE_TEST_PAUSE_FILE": str(marker)}
    return _start(root, env), marker


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_write_leaves_every_file_old_or_new(many_files, tmp_path: Path, sig: int) -> None:
    """Kill ``fix --write`` at known points (paused there, no timing involved): before the first write, and
    after the 1st, 20th and last file written; then at random moments of its write phase (found by
    watching the tree), where the kill may land inside one file's write."""
    original, old, new, window = many_files
    changed = sum(old[k] != new[k] for k in old)
    for point, written in (("before-write", 0), ("written:1", 1), ("written:20", 20), (f"written:{changed}", changed)):
        root = tmp_path / point.replace(":", "-")
        shutil.copytree(original, root)
        proc, marker = _start_paused(root, point)
        while proc.poll() is None and not marker.exists():
            time.sleep(0.01)
        assert proc.poll() is None, f"fix ended before reaching {point}"
        _stop(proc, sig)
        assert _assert_old_or_new(root, old, new, sig, 0.0) == written, point
        shutil.rmtree(root)
    rng = random.Random(20240611 + int(sig))
    for i, delay in enumerate(sorted(rng.uniform(0.0, 1.2) * window for _ in range(3))):
        root = tmp_path / f"run{i}"
        shutil.copytree(original, root)
        database_mtime = (root / "app" / "database.py").stat().st_mtime_ns
        proc = _start(root)
        while proc.poll() is None and not _write_started(root, database_mtime):
            time.sleep(0.0005)
        time.sleep(delay)
        _stop(proc, sig)
        _assert_old_or_new(root, old, new, sig, delay)
        shutil.rmtree(root)


def test_next_run_after_a_kill_completes_the_migration(many_files, tmp_path: Path) -> None:
    original, old, new, window = many_files
    root = tmp_path / "p"
    shutil.copytree(original, root)
    database_mtime = (root / "app" / "database.py").stat().st_mtime_ns
    proc = _start(root)
    while proc.poll() is None and not _write_started(root, database_mtime):
        time.sleep(0.0005)
    time.sleep(window / 2)
    _stop(proc, signal.SIGKILL)

    assert fix(root, "--write", "-q").returncode == 0

    temps = {p.relative_to(root).as_posix() for p in temp_files(root)}
    assert {k: v for k, v in snapshot(root).items() if k not in temps} == new


# ---------------------------------------------------------------- output that does not compile is not written
class _BreaksOneFile(AwaitSessionMethods):
    """A buggy rewrite: in ``r001.py`` it also puts an ``await`` at module level (libcst accepts it, compile does not)."""

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not (self.context.filename or "").endswith("r001.py"):
            return updated_node
        stray = cst.parse_statement("await db.commit()\n")
        return updated_node.with_changes(body=[*updated_node.body, stray])


class _ForgetsOneAwait(AwaitSessionMethods):
    """A buggy rewrite: in ``r001.py`` it leaves ``db.commit()`` un-awaited (it compiles, and it is ASM201)."""

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if (self.context.filename or "").endswith("r001.py") and self._session_call(original_node) == "commit":
            return updated_node
        return super().leave_Call(original_node, updated_node)


def test_a_rewrite_that_adds_a_post_migration_bug_leaves_its_component_sync(tmp_path: Path, monkeypatch) -> None:
    """The project is analysed as the rewrite would leave it, before writing (the soundness invariant): a new
    ASM2xx finding leaves the component that causes it on the sync session, reported with the finding as the
    cause, and the rest of the project is still migrated; what is written passes the invariant."""
    root = make_project(tmp_path / "p", routers=3)
    before = snapshot(root)
    import asyncmigrate.fix as fix_module

    pipeline = fix_module.PIPELINE
    monkeypatch.setattr(fix_module, "PIPELINE", tuple(_ForgetsOneAwait if c is AwaitSessionMethods else c for c in pipeline))
    monkeypatch.chdir(root)

    result = CliRunner().invoke(main, ["fix", str(root), "--write", "--no-cache", "-q"])

    assert result.exit_code == 0, result.output
    after = snapshot(root)
    assert after["app/routers/r001.py"] == before["app/routers/r001.py"]
    assert b"await db.commit()" in after["app/routers/r000.py"] and b"await db.commit()" in after["app/routers/r002.py"]
    reason = next(line for line in result.stderr.splitlines() if "app/routers/r001.py:" in line)
    assert "ASM201 `db.commit()`" in reason and "left on the sync session: `create_user_1`" in reason, reason
    assert temp_files(root) == []
    # nothing post-migration in what was written
    scan = CliRunner().invoke(main, ["scan", str(root), "--select", "ASM2", "--no-cache"])
    assert "ASM2" not in scan.output, scan.output


def test_output_that_does_not_compile_is_never_written(tmp_path: Path, monkeypatch) -> None:
    """The broken file is reported with its reason and not written.

    Since the migration is cross-module (a route awaits a service that another file makes async), writing the
    other files without this one could leave the project half-migrated: ``--write`` then writes nothing at
    all ("all-or-nothing", fix.py) and exits 3.  ``--diff`` still shows the changes that did verify.
    """
    root = make_project(tmp_path / "p", routers=3)
    before = snapshot(root)
    broken = root / "app" / "routers" / "r001.py"
    before_mtime = broken.stat().st_mtime_ns
    monkeypatch.setitem(BY_NAME, "await", _BreaksOneFile)
    monkeypatch.chdir(root)

    result = CliRunner().invoke(main, ["fix", str(root), "--select", "await", "--write", "--no-cache"])

    assert result.exit_code == 3, result.output
    assert broken.stat().st_mtime_ns == before_mtime
    assert snapshot(root) == before  # nothing written, the broken file least of all
    reason = next(line for line in result.stderr.splitlines() if "app/routers/r001.py:" in line)
    assert "rewritten code does not" in reason and "SyntaxError" in reason, reason
    assert "--write writes nothing" in result.stderr
    assert temp_files(root) == []

    diff = CliRunner().invoke(main, ["fix", str(root), "--select", "await", "--diff", "--no-cache"])
    assert diff.exit_code == 3
    assert "+++ b/app/routers/r000.py" in diff.stdout and "+++ b/app/routers/r002.py" in diff.stdout
    assert "r001.py" not in diff.stdout
    assert snapshot(root) == before


# ---------------------------------------------------------------- bad input among good files
def test_bad_files_are_reported_and_the_others_fixed(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", routers=2)
    routers = root / "app" / "routers"
    bad_syntax = routers / "broken.py"
    bad_syntax.write_text(ROUTER.format(n=7) + "\ndef oops(:\n    pass\n", encoding="utf-8")
    undecodable = routers / "undecodable.py"
    undecodable.write_bytes(ROUTER.format(n=8).encode("utf-8").replace(b"caf\xc3\xa9", b"caf\xff\xfe"))
    bad_before = {p: p.read_bytes() for p in (bad_syntax, undecodable)}

    proc = fix(root, "--write")

    assert proc.returncode == 3, proc.stderr
    for path, data in bad_before.items():
        assert path.read_bytes() == data
        assert f"app/routers/{path.name}" in proc.stderr, proc.stderr
    for n in (0, 1):
        assert b"await db.commit()" in (routers / f"r{n:03d}.py").read_bytes()
    assert b"create_async_engine" in (root / "app" / "database.py").read_bytes()
    assert temp_files(root) == []


def test_undecodable_file_with_database_code_is_skipped_not_blocking(tmp_path: Path) -> None:
    """A legacy latin-1 script without a coding cookie, which also creates the tables: skipped input only."""
    root = make_project(tmp_path / "p", routers=1)
    (root / "scripts").mkdir()
    legacy = root / "scripts" / "init_db.py"
    legacy.write_bytes("# Création des tables\nfrom app.database import Base, engine\n\n"
                       "Base.metadata.create_all(bind=engine)\n".encode("latin-1"))
    before = legacy.read_bytes()

    proc = fix(root, "--write")

    assert proc.returncode == 3, proc.stderr
    assert "scripts/init_db.py: cannot decode" in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    assert legacy.read_bytes() == before
    assert b"await db.commit()" in (root / "app" / "routers" / "r000.py").read_bytes()


def test_bad_files_do_not_make_check_hide_changes(tmp_path: Path) -> None:
    """``--check`` still says "changes pending" (1) when some files could not be read."""
    root = make_project(tmp_path / "p", routers=1)
    (root / "app" / "routers" / "broken.py").write_text("def oops(:\n    pass\n", encoding="utf-8")
    before = snapshot(root)

    proc = fix(root, "--check")

    assert proc.returncode == 1, proc.stderr
    assert "app/routers/broken.py" in proc.stderr
    assert snapshot(root) == before
