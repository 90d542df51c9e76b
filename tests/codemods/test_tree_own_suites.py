"""Fixture trees whose own test suite (``tests/`` in the tree) passes before and after ``fix --write``.

Issue 9: a migration is right when the project's own tests still pass.  These trees reproduce, in a few
files, a test set-up shape of a real project (shared/REALSUITES.md); their suite is run as its authors run
it (``python -m pytest tests`` in the project, a fresh SQLite database) on a copy of ``before/`` and again
on the copy ``fix --write`` migrated, whose files must equal ``after/``.  A run passes only with exit 0 and
no "was never awaited" in its output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_fix_trees import FIXTURES, run_fix, tree_files

#: tree -> why it is here
SUITES = {
    # Buuntu/fastapi-react's conftest: the fixture builds its own engine and session, and the override
    # yields that session; the async dependency needs a twin that reaches the same (test) database
    "test_overrides/fixture_own_engine": "fixture-built engine and session, override yields it",
    # the SQLModel template's shape: ``with Session(engine) as session: yield session`` on the test engine,
    # and ``dependency_overrides[get_session] = lambda: session``
    "test_overrides/lambda_fixture_session": "Session(engine) fixture, lambda override",
    # lorenzocesconetto/fastapi-postgresql's shape (issue 9 class 2): generic CRUDBase instances
    # (``crud.item = CRUDBase[Item, ...](Item)``), ``super().update()``, ``def`` routes whose dependencies share the
    # request's session (``item = Depends(get_item)``), ``init()`` at import, tests calling crud with SessionLocal()
    "propagate_async/generic_crud_init_at_import": "generic CRUD instances, init() at import, tests call crud",
}


def _suite(project: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env.update(DATABASE_URL=f"sqlite:///{tmp}/app.db", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "-W", "always::RuntimeWarning"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", sorted(SUITES))
def test_own_suite_passes_before_and_after_fix(name: str, tmp_path: Path) -> None:
    pytest.importorskip("aiosqlite")
    case = FIXTURES / name
    project = tmp_path / "project"
    shutil.copytree(case / "before", project)
    (tmp_path / "db_before").mkdir()
    before = _suite(project, tmp_path / "db_before")
    assert before.returncode == 0, before.stdout + before.stderr

    fixed = run_fix(project, mode="--write", case=case)
    assert fixed.returncode == 0, fixed.stderr
    assert tree_files(project) == tree_files(case / "after")  # what runs is exactly the golden output

    (tmp_path / "db_after").mkdir()
    after = _suite(project, tmp_path / "db_after")
    out = after.stdout + after.stderr
    assert after.returncode == 0, out
    assert "was never awaited" not in out, out
    assert after.stdout.split(" passed")[0].split()[-1] == before.stdout.split(" passed")[0].split()[-1]
