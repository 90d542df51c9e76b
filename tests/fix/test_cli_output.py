"""``fix`` output people can read (issue 11, item 6): a coloured diff on a terminal, a summary in user words,
and ``--diff --write`` refused instead of silently writing."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import click
import pytest

from asyncmigrate.codemods import BY_NAME
from asyncmigrate.config import Config
from asyncmigrate.fix import run_fix
from tests.cli.tree import make_project, run


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return make_project(tmp_path)


def state(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("flags", [("--diff", "--write"), ("--write", "--diff"), ("--write", "--check"),
                                   ("--diff", "--check")])
def test_exclusive_modes_are_refused_and_nothing_is_written(project, flags):
    before = state(project)
    res = run("fix", ".", *flags, "--no-cache")
    assert res.exit_code == 2
    assert "cannot be combined" in res.stderr and flags[0] in res.stderr and flags[1] in res.stderr
    assert state(project) == before


def test_the_diff_is_coloured_on_a_terminal_and_plain_otherwise(project):
    plain = run("fix", ".", "--no-cache").stdout
    coloured = run("fix", ".", "--no-cache", color=True).stdout
    assert "\x1b[" not in plain
    assert click.unstyle(coloured) == plain
    lines = coloured.splitlines()
    assert any(line.startswith("\x1b[32m+") for line in lines)  # green additions
    assert any(line.startswith("\x1b[31m-") for line in lines)  # red removals
    assert any(line.startswith("\x1b[36m@@") for line in lines)  # cyan hunks


def test_the_summary_speaks_user_words_not_class_names(project):
    res = run("fix", ".", "--no-cache")
    summary = res.stderr
    for cls in BY_NAME.values():
        assert cls.__name__ not in summary, cls.__name__
    result = run_fix(["."], Config(root=str(project)), use_cache=False)
    made = len(result.plan.make_async)
    moved = len(result.plan.converted)
    assert made and moved
    diff = res.stdout
    added = sum(len(re.findall(r"\bawait\b", line)) for line in diff.splitlines()
                if line.startswith("+") and not line.startswith("+++"))
    removed = sum(len(re.findall(r"\bawait\b", line)) for line in diff.splitlines()
                  if line.startswith("-") and not line.startswith("---"))
    assert added > removed
    assert (f"made {made} function{'s' if made != 1 else ''} async, moved {moved} function{'s' if moved != 1 else ''}"
            f" to AsyncSession, added {added - removed} awaits") in summary
    assert "app/routes.py: " in summary and "queries to select()" in summary
