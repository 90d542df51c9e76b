"""Scanning an untrusted repository (README "Security model"): nothing in it runs, nothing outside is touched.

* No file from the scanned tree is deserialised into objects: a pickle planted under
  ``.asyncmigrate_cache/`` (where the cache used to live) never runs, and a cache file in the real cache
  location that is not sealed with this user's key is ignored (the run is the same as a cold one).
* Read-only commands (``scan``, ``check`` without ``--update-baseline``, ``fix --diff``, ``fix --check``)
  change nothing inside the project: every path, type, size, mode, mtime and content is the same after.
* ``fix --write`` writes only the project's files: never through a symlink that leads outside the root;
  a requirements file linked to a shared location is reported, not edited.
* The project's code is never imported or executed, whatever it does at import.
* A symlink to a file outside the scanned directory is not read.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asyncmigrate import cache_codec
from asyncmigrate.config import Config
from asyncmigrate.model import ScanResult
from asyncmigrate.runner import CODE_HASH, Cache
from tests.fix.test_write_safety import make_project


def run(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "asyncmigrate", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (directories and links included): type, mode, size, mtime and content hash."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            content = b""
            if os.path.islink(p):
                content = os.readlink(p).encode()
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    content = f.read()
            state[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                               hashlib.sha256(content).hexdigest())
    return state


class _Payload:
    """What an attacker commits: unpickling it creates ``path`` (a stand-in for any command)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---------------------------------------------------------------- the planted-cache attack
def test_a_pickle_planted_in_the_tree_never_runs(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    marker = tmp_path / "PWNED"
    planted = root / ".asyncmigrate_cache"
    planted.mkdir()
    key = f"{CODE_HASH}-{Config().analysis_key()}"
    payload = pickle.dumps(_Payload(str(marker)))
    # every name the cache has used, in the scanned tree (committed with ``git add -f``)
    for kind in ("summaries", "result", "stats"):
        for suffix in ("pickle", "amc"):
            (planted / f"{kind}-{key}.{suffix}").write_bytes(payload + payload)
    for args in (["scan", "."], ["check", "."], ["fix", ".", "--diff"]):
        run(args, root)
        assert not marker.exists(), f"`asyncmigrate {args[0]}` ran code from a planted cache file"


def test_a_forged_cache_file_is_ignored(tmp_path: Path) -> None:
    """A well-formed file in the real cache location, not sealed with this user's key, is a miss: a forged
    "no findings" result cannot hide anything from ``scan`` or ``check``."""
    root = make_project(tmp_path / "p")
    cache_home = tmp_path / "cache"
    env = {"ASYNCMIGRATE_CACHE_DIR": str(cache_home)}
    first = run(["scan", ".", "--format", "json"], root, env)
    assert first.returncode == 1
    files = sorted((cache_home / "projects").glob("*/result-*.amc"))
    assert len(files) == 1, "the cache lives in the user's cache directory"
    forged = cache_codec.encode({k: ScanResult() for k in ("a",)})
    other_key = bytes(32)
    for f in (cache_home / "projects").glob("*/*.amc"):
        # forged entries: sealed with another key, and with no seal at all
        f.write_bytes(cache_codec.seal(other_key, forged) if "result" in f.name else forged)
    again = run(["scan", ".", "--format", "json"], root, env)
    assert again.returncode == 1 and again.stdout == first.stdout


def test_a_key_others_can_read_turns_the_cache_off(tmp_path: Path) -> None:
    base = tmp_path / "cache"
    assert cache_codec.secret_key(base) is not None
    os.chmod(base / "cache.key", 0o644)
    assert cache_codec.secret_key(base) is None
    assert Cache(tmp_path / "c", "k").directory is not None  # (the suite's own key is private)


def test_the_codec_builds_only_model_classes() -> None:
    import msgpack

    # an extension number outside the table, and a known class given fields it does not have
    for blob in (msgpack.packb([msgpack.ExtType(1, bytes([200])), 1]),
                 msgpack.packb([msgpack.ExtType(1, bytes([0])), 1, 2, 3, 4, 5, 6, 7]),
                 msgpack.packb(msgpack.ExtType(9, b"os.system"))):
        with pytest.raises(ValueError):
            cache_codec.decode(blob)


# ---------------------------------------------------------------- read-only commands write nothing in the project
READ_ONLY = {
    "scan": ["scan", "."],
    "check": ["check", "."],
    "check-diff-against": ["check", ".", "--diff-against", "HEAD"],
    "fix-diff": ["fix", ".", "--diff"],
    "fix-check": ["fix", ".", "--check"],
}


@pytest.mark.parametrize("command", list(READ_ONLY))
def test_read_only_commands_write_nothing_inside_the_project(tmp_path: Path, command: str) -> None:
    root = make_project(tmp_path / "p")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    run(["check", ".", "--update-baseline", "--no-cache"], root)  # the committed baseline
    assert (root / ".asyncmigrate-baseline.json").is_file()
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    (root / "app" / "routers" / "r000.py").write_text((root / "app" / "routers" / "r001.py").read_text())
    # the default cache location: $XDG_CACHE_HOME (the suite's ASYNCMIGRATE_CACHE_DIR removed)
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    clean = {k: v for k, v in os.environ.items() if k != "ASYNCMIGRATE_CACHE_DIR"}
    before = tree_state(root)
    proc = subprocess.run([sys.executable, "-m", "asyncmigrate", *READ_ONLY[command]], cwd=root, capture_output=True,
                          text=True, env={**clean, **env, "PYTHONDONTWRITEBYTECODE": "1"}, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert tree_state(root) == before
    assert list((home / ".cache" / "asyncmigrate" / "projects").glob("*/*.amc")), "the cache went elsewhere"


def test_the_pyproject_cannot_choose_where_the_cache_goes(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "pyproject.toml").write_text('[tool.asyncmigrate]\ncache-dir = "../elsewhere"\n')
    proc = run(["scan", "."], root)
    assert "'cache-dir' is ignored" in proc.stderr
    assert not (tmp_path / "elsewhere").exists()


# ---------------------------------------------------------------- fix --write stays inside the root
def test_fix_never_writes_through_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    outside = tmp_path / "shared"
    outside.mkdir()
    router = root / "app" / "routers" / "r001.py"
    shutil.move(router, outside / "r001.py")
    router.symlink_to(outside / "r001.py")
    before = tree_state(outside)

    proc = run(["fix", ".", "--write", "--no-cache"], root)

    assert tree_state(outside) == before
    assert proc.returncode != 0
    assert "app/routers/r001.py: symlink to a file outside the scanned directory" in proc.stderr
    assert router.is_symlink()


def test_the_write_guard_refuses_any_path_that_resolves_outside(tmp_path: Path) -> None:
    """The last line of defence, under discovery's: whatever a plan names, nothing outside the root is written."""
    from asyncmigrate.fix import FileChange, FixResult, confine_writes, outside_root

    root = tmp_path / "p"
    (root / "app").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "x.py").write_text("x = 1\n")
    (root / "app" / "x.py").symlink_to(tmp_path / "shared" / "x.py")
    (root / "app" / "linked").symlink_to(tmp_path / "shared", target_is_directory=True)
    (root / "app" / "own.py").write_text("y = 1\n")
    assert outside_root(root / "app" / "own.py", root) is None
    assert outside_root(root / "app" / "new_module.py", root) is None
    for escaping in (root / "app" / "x.py", root / "app" / "linked" / "x.py", root / ".." / "shared" / "x.py",
                     root / "app" / ".." / ".." / "elsewhere.py"):
        assert "outside the project root" in outside_root(escaping, root)
    result = FixResult(changes=[FileChange(str(root / "app" / "x.py"), b"x = 1\n", b"x = 2\n")],
                       requirements={root / "app" / "linked" / "requirements.txt": ("a", "b")})
    confine_writes(result, root)
    assert [p for p, _ in result.rejected] == [str(root / "app" / "x.py")]
    assert result.requirements == {} and "outside the project root" in result.warnings[0][1]


def test_a_shared_requirements_file_is_reported_not_edited(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "requirements.txt").write_text("sqlalchemy>=2.0\nfastapi\n")
    (root / "requirements.txt").symlink_to(outside / "requirements.txt")
    before = tree_state(outside)

    proc = run(["fix", ".", "--write", "--no-cache"], root)

    assert proc.returncode == 0, proc.stderr
    assert tree_state(outside) == before
    assert "requirements.txt is a symlink to" in proc.stderr
    assert (root / "requirements.txt").is_symlink()
    assert "await db.commit()" in (root / "app" / "routers" / "r000.py").read_text()  # the rest is migrated


def test_a_symlink_to_a_file_outside_is_not_read(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    secret = tmp_path / "secret.py"
    secret.write_text("import time\nasync def leak():\n    time.sleep(1)  # TOKEN=hunter2\n")
    (root / "app" / "leak.py").symlink_to(secret)
    proc = run(["scan", ".", "--format", "json"], root)
    assert "hunter2" not in proc.stdout + proc.stderr
    assert "symlink to a file outside the scanned directory" in proc.stdout


# ---------------------------------------------------------------- the project's code never runs
BOOBY_TRAP = '''\
import sys
open({marker!r}, "a").write(__file__ + "\\n")
sys.exit(7)
'''


def test_the_projects_code_is_never_imported(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    marker = str(tmp_path / "RAN")
    trap = BOOBY_TRAP.format(marker=marker)
    for rel in ("conftest.py", "setup.py", "app/plugins.py", "app/settings.py", "alembic/env.py", "noxfile.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(trap)
    for p in (root / "app").rglob("*.py"):
        p.write_text(trap + p.read_text())
    (root / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "app.plugins"\n\n'
                                         '[tool.asyncmigrate]\nentry-points = ["app.plugins:main"]\n')
    for args in (["scan", "."], ["check", ".", "--update-baseline"], ["check", "."], ["fix", ".", "--diff"],
                 ["fix", ".", "--write"]):
        proc = run(args, root)
        assert proc.returncode in (0, 1, 3), (args, proc.stderr)
        assert not os.path.exists(marker), f"`asyncmigrate {' '.join(args)}` ran the project's code"


def test_the_pyproject_cannot_put_the_baseline_outside_the_project(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "pyproject.toml").write_text('[tool.asyncmigrate]\nbaseline = "../outside.json"\n')
    proc = run(["check", ".", "--update-baseline"], root)
    assert proc.returncode == 2 and "outside the project root" in proc.stderr
    assert not (tmp_path / "outside.json").exists()
    explicit = tmp_path / "chosen.json"  # a path the user names on the command line is theirs to choose
    assert run(["check", ".", "--update-baseline", "--baseline", str(explicit)], root).returncode == 0
    assert explicit.is_file()
