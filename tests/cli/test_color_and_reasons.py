"""``--color`` on every command, and ``fix`` saying why each file outside the named paths changes (issue 11,
item 6), at 80 columns."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from asyncmigrate.report.fix_text import OUTSIDE_REASONS
from tests.cli.tree import make_project, run

ESC = "\x1b["


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return make_project(tmp_path)


@pytest.mark.parametrize("args", [("scan", "."), ("fix", "."), ("rules",), ("explain", "ASM110")],
                         ids=["scan", "fix", "rules", "explain"])
def test_color_always_colours_output_that_is_not_a_terminal(project, args):
    plain = run(*args, "--no-cache" if args[0] in ("scan", "fix") else "--color=auto")
    always = run(*args, "--color", "always", *(("--no-cache",) if args[0] in ("scan", "fix") else ()))
    assert ESC not in plain.stdout
    assert ESC in always.stdout
    assert click.unstyle(always.stdout).split() == plain.stdout.split()


@pytest.mark.parametrize("args", [("scan", ".", "--no-cache"), ("fix", ".", "--no-cache"), ("rules",)],
                         ids=["scan", "fix", "rules"])
def test_color_never_wins_over_a_terminal(project, args):
    res = run(*args, "--color", "never", color=True)
    assert ESC not in res.stdout


def test_check_accepts_color(project):
    assert run("check", ".", "--update-baseline", "--no-cache", "-q").exit_code == 0
    res = run("check", ".", "--color", "always", "--no-cache", "-q")
    assert res.exit_code == 0, res.stderr


def test_no_color_environment_means_no_colour_on_auto(project, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert ESC not in run("fix", ".", "--no-cache", color=True).stdout


def test_each_file_changed_outside_the_named_paths_says_why(project):
    res = run("fix", "app/routes.py", "--no-cache")
    lines = res.stderr.splitlines()
    changed = [line.strip().split(":")[0] for line in lines if line.startswith("  ") and not line.startswith("   ")
               and line.strip().split(":")[0].endswith(".py")]
    assert "app/routes.py" in changed and "app/db.py" in changed
    reasons = {why for _name, why in OUTSIDE_REASONS}
    for path in changed:
        i = next(k for k, line in enumerate(lines) if line.strip().startswith(path + ":"))
        following = [line for line in lines[i + 1:] if line.startswith("    ")]
        said = [line.strip()[len("not named: "):] for line in following[:2] if "not named: " in line]
        if path == "app/routes.py":
            assert not said, lines  # named: no reason needed
        else:
            assert said and said[0] in reasons, lines


def test_the_summary_fits_in_80_columns(project):
    res = run("fix", "app/routes.py", "--no-cache")
    summary = [line for line in res.stderr.splitlines() if not line.startswith(("left for a human", "    "))
               or "not named" in line]
    assert summary
    assert all(len(line) <= 80 for line in summary), [line for line in summary if len(line) > 80]
