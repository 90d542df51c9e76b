"""``fix`` on a warm cache means what it means on a cold one (issue 11, caching).

The soundness check analyses the project as the rewrite leaves it; a second run produces the same rewrite, whose
*result* (findings only) is then in the cache.  The check needs the whole analysis, so it must never be served
that cached result (it crashed with "'NoneType' object has no attribute 'project'" and rejected everything).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncmigrate.config import load_config
from asyncmigrate.fix import run_fix
from tests.cli.tree import make_project, run


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "project")
    monkeypatch.chdir(root)
    monkeypatch.setenv("ASYNCMIGRATE_CACHE_DIR", str(tmp_path / "cache"))
    return root


def _outcome(result):
    return sorted((c.path, c.new) for c in result.changes), sorted(result.rejected)


@pytest.mark.parametrize("paths", [["."], ["app/routes.py"]], ids=["project", "one-file"])
def test_a_second_fix_on_a_warm_cache_gives_the_same_rewrite(project, paths):
    config = load_config(None, project)
    cold = run_fix(paths, config, use_cache=True)
    warm = run_fix(paths, config, use_cache=True)
    assert not cold.rejected and cold.changes
    assert _outcome(warm) == _outcome(cold)


def test_fix_twice_through_the_cli_rejects_nothing(project):
    first = run("fix", "app")
    second = run("fix", "app")
    assert first.exit_code == second.exit_code == 0, second.stderr
    assert "internal error" not in second.stderr
    assert second.stdout == first.stdout
