"""The end-to-end suite again, on a copy of the legacy backend migrated by the tool, once per strategy.

``asyncmigrate fix --strategy S --write`` runs once per session and strategy (``native``, ``threadpool``,
``auto``; issue 10) on a fresh copy of ``fixtures/example_backend``, with no hand edits. The modules beside
this file re-collect each test module of the suite (one module each, so each keeps its own server, as in the
legacy run) against that copy, expecting the async behaviour: p95 < 100 ms while the sync job runs, ten users
< 10 s, and no ``never awaited`` / ``MissingGreenlet`` in any server log.  ``-k threadpool`` (or ``native``,
``auto``) picks one strategy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import LEGACY_TREE


def _fix(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asyncmigrate", "fix", str(tree), "--no-cache", *args],
                          capture_output=True, text=True, timeout=600)


STRATEGIES = ("native", "threadpool", "auto")


@pytest.fixture(scope="session", params=STRATEGIES)
def strategy(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def backend_tree(tmp_path_factory, strategy) -> Path:
    tree = tmp_path_factory.mktemp("migrated") / f"example_backend_{strategy}"
    shutil.copytree(LEGACY_TREE, tree, ignore=shutil.ignore_patterns("__pycache__", "*.db", ".pytest_cache"))
    first = _fix(tree, "--strategy", strategy, "--write")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "file(s) to change" in first.stderr
    again = _fix(tree, "--strategy", strategy, "--check")
    assert again.returncode == 0, "a second fix would change the migrated tree:\n" + again.stdout + again.stderr
    return tree


@pytest.fixture(scope="session")
def expectation() -> str:
    return "async"
