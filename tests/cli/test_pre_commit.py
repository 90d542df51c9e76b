"""``.pre-commit-hooks.yaml`` (issue 11, item 4), run for real with ``pre-commit try-repo`` on a temporary git
repository: pre-commit installs this checkout into its own virtualenv and runs both hooks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from asyncmigrate.cli import main as _main  # noqa: F401  (the package under test must import)
from tests.cli.tree import make_project, run

pytest.importorskip("pre_commit")

ROOT = Path(__file__).resolve().parents[2]
ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
       "GIT_COMMITTER_EMAIL": "test@example.com"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env={**os.environ, **ENV})


def try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, "PRE_COMMIT_HOME": str(home), "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "--all-files"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=900)


def status(output: str, hook_name_start: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith(hook_name_start)]
    return line.rsplit(".", 1)[-1].strip()


@pytest.mark.slow
def test_pre_commit_try_repo_runs_both_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    repo = make_project(tmp_path / "repo")
    monkeypatch.chdir(repo)
    git(repo, "init", "-q")
    assert run("check", ".", "--update-baseline", "--no-cache", "-q").exit_code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    home = tmp_path / "pre-commit-home"

    first = try_repo(repo, home)
    out = first.stdout + first.stderr
    assert status(out, "asyncmigrate check") == "Passed", out  # nothing new against the baseline
    assert status(out, "asyncmigrate scan") == "Failed", out  # but there are findings
    assert "app/routes.py:11:12: ASM110 [blocks-loop]" in out
    assert first.returncode == 1

    routes = repo / "app" / "routes.py"
    routes.write_text(routes.read_text() + '\n\n@router.get("/one")\nasync def one(db: Session = Depends(get_db)):\n'
                      "    return db.query(Item).first()\n")
    git(repo, "add", "-A")
    second = try_repo(repo, home)
    out = second.stdout + second.stderr
    assert status(out, "asyncmigrate check") == "Failed", out
    assert "new finding" in out and "app/routes.py:22:" in out
