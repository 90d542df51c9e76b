"""``[tool.asyncmigrate]`` errors and the configuration/command-line interplay (issue 11, item 3).

Malformed TOML and unknown keys exit 2 with the position or the nearest key; ``--select`` on the command line
replaces the configured select/ignore as in Ruff, and says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.tree import codes, make_project, run, scan_json

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return make_project(tmp_path)


def test_malformed_toml_in_the_nearest_pyproject_exits_2_with_the_position(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nselect = ["ASM1"\nignore = []\n')
    res = run("scan", "app", "--no-cache", "-q")
    assert res.exit_code == 2
    assert "pyproject.toml:3:1: invalid TOML: Unclosed array" in res.stderr


def test_malformed_toml_given_with_config_exits_2_with_the_position(project):
    (project / "other.toml").write_text('[tool.asyncmigrate]\nbaseline = \n')
    res = run("scan", "app", "--config", "other.toml", "--no-cache", "-q")
    assert res.exit_code == 2
    assert re.search(r"other\.toml:2:\d+: invalid TOML", res.stderr), res.stderr


def test_malformed_toml_also_stops_check_and_fix(project):
    (project / "pyproject.toml").write_text("[tool.asyncmigrate\n")
    for command in ("check", "fix"):
        res = run(command, "app", "--no-cache")
        assert res.exit_code == 2, (command, res.output)
        assert "pyproject.toml:1:" in res.stderr and "invalid TOML" in res.stderr


def test_an_unknown_key_suggests_the_nearest_one(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nsession-name = ["sess"]\n')
    res = run("scan", "app", "--no-cache", "-q")
    assert res.exit_code == 2
    assert "unknown key 'session-name' in [tool.asyncmigrate]; did you mean 'session-names'?" in res.stderr


def test_an_unknown_key_far_from_any_lists_the_known_ones(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nzzz = 1\n')
    res = run("scan", "app", "--no-cache", "-q")
    assert res.exit_code == 2
    assert "unknown key 'zzz'" in res.stderr and "(known: " in res.stderr and "did you mean" not in res.stderr


def test_cli_select_beats_a_configured_ignore_and_says_so(project):
    """Config ``ignore = ["ASM1"]`` with ``--select ASM110``: the selected rule runs (Ruff's precedence), and a
    note names what the command line replaced."""
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nignore = ["ASM1"]\n')
    rc, doc = scan_json("app", "--select", "ASM110")
    assert codes(doc) == {"ASM110"}
    res = run("scan", "app", "--select", "ASM110", "--no-cache", "-q", "--format", "json")
    assert "--select replaces ignore = ['ASM1'] from" in res.stderr and "--extend-select" in res.stderr


def test_without_cli_select_the_configured_ignore_holds(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nignore = ["ASM11"]\n')
    rc, doc = scan_json("app", "--ignore", "ASM120")
    assert "ASM101" in codes(doc) and not codes(doc) & {"ASM110", "ASM120"}
    res = run("scan", "app", "--no-cache", "-q", "--format", "json")
    assert "note:" not in res.stderr


def test_extend_select_adds_to_the_configured_selection(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nselect = ["ASM101"]\n')
    rc, doc = scan_json("app", "--extend-select", "ASM110")
    assert codes(doc) == {"ASM101", "ASM110"}


def test_extend_ignore_removes_from_the_configured_selection(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nselect = ["ASM101", "ASM110"]\n')
    rc, doc = scan_json("app", "--extend-ignore", "ASM110")
    assert codes(doc) == {"ASM101"}


def test_the_more_specific_prefix_wins_on_the_command_line(project):
    rc, doc = scan_json("app", "--ignore", "ASM1", "--select", "ASM110")
    assert codes(doc) == {"ASM110"}
    rc, doc = scan_json("app", "--select", "ASM11,ASM12", "--ignore", "ASM120")
    assert codes(doc) == {"ASM110"}


def test_a_selection_that_leaves_nothing_is_a_usage_error(project):
    res = run("scan", "app", "--select", "ASM110", "--ignore", "ASM110", "--no-cache", "-q")
    assert res.exit_code == 2 and "leaves no rule" in res.stderr


@pytest.mark.parametrize("text, message", [
    ('per-file-ignores = ["x"]', "'per-file-ignores' must be a table"),
    ('per-file-ignores = { "scripts/*" = ["ASM9"] }', "'ASM9' matches no rule code"),
    ('force-exclude = "yes"', "'force-exclude' must be true or false"),
    ('extend-exclude = "x"', "'extend-exclude' must be a list of strings"),
])
def test_new_keys_are_validated(project, text, message):
    (project / "pyproject.toml").write_text(f"[tool.asyncmigrate]\n{text}\n")
    res = run("scan", "app", "--no-cache", "-q")
    assert res.exit_code == 2 and message in res.stderr, res.stderr


@pytest.mark.parametrize("key", ["respect-gitignore", "session-names", "name-heuristics", "max-file-size",
                                 "cache-dir", "extend-exclude", "force-exclude", "per-file-ignores"])
def test_every_configuration_key_is_documented_in_the_readme(key):
    from asyncmigrate.config import _KNOWN

    assert key.replace("-", "_") in _KNOWN
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"^{re.escape(key)} = ", section, re.MULTILINE), key


def test_the_readme_documents_every_known_key():
    from asyncmigrate.config import _KNOWN

    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^([a-z-]+) = ", section, re.MULTILINE))
    assert documented == {k.replace("_", "-") for k in _KNOWN}
