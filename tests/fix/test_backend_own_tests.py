"""The example backend's own test suite passes before and after ``asyncmigrate fix --write``.

The suite is run as its authors run it (``python -m pytest tests`` in the backend's directory, in a
subprocess with this interpreter), on a copy of ``fixtures/example_backend``.  Its test functions are
never edited: only ``tests/conftest.py`` changes, with the async twins of its engine, session factory,
dependency override and factory patch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2] / "fixtures" / "example_backend"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _suite(cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run(["-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"], cwd)


@pytest.fixture()
def backend(tmp_path: Path) -> Path:
    tree = tmp_path / "backend"
    shutil.copytree(BACKEND, tree, ignore=shutil.ignore_patterns("__pycache__", "*.db", ".pytest_cache"))
    return tree


@pytest.mark.slow
def test_own_suite_passes_before_and_after_fix(backend: Path) -> None:
    tests_before = {p.name: p.read_bytes() for p in (backend / "tests").glob("test_*.py")}

    legacy = _suite(backend)
    assert legacy.returncode == 0, legacy.stdout + legacy.stderr
    assert " passed" in legacy.stdout and "failed" not in legacy.stdout

    fixed = _run(["-m", "asyncmigrate", "fix", ".", "--write", "--no-cache"], backend)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "tests/conftest.py: async engine and session factory, test overrides" in fixed.stderr

    migrated = _suite(backend)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert migrated.stdout.splitlines()[-1].split(" passed")[0] == legacy.stdout.splitlines()[-1].split(" passed")[0]

    # the test functions are untouched; the app really moved to the async session
    assert {p.name: p.read_bytes() for p in (backend / "tests").glob("test_*.py")} == tests_before
    assert "Depends(get_async_db)" in (backend / "app" / "routers" / "users.py").read_text()

    again = _run(["-m", "asyncmigrate", "fix", ".", "--check", "--no-cache"], backend)
    assert again.returncode == 0, again.stdout + again.stderr
