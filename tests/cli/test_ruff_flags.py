"""Ruff-compatible flags (issue 11, item 7): each is in ``--help``, in the README, and behaves as tested here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.tree import ROUTES, codes, make_project, paths, run, scan_json

README = Path(__file__).resolve().parents[2] / "README.md"

FLAGS = {
    "scan": ["--statistics", "--output-format", "--extend-select", "--extend-ignore", "--exclude", "--extend-exclude",
             "--force-exclude", "--show-settings", "--show-files", "--fail-on", "--stdin-filename", "--exit-zero"],
    "check": ["--output-format", "--extend-select", "--extend-ignore", "--exclude", "--extend-exclude",
              "--force-exclude", "--show-settings", "--show-files", "--fail-on", "--exit-zero"],
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return make_project(tmp_path)


@pytest.mark.parametrize("command, flag", [(c, f) for c, flags in FLAGS.items() for f in flags])
def test_flag_is_in_help_and_readme(command, flag):
    res = run(command, "--help")
    assert flag in res.stdout
    assert f"`{flag}" in README.read_text(), f"{flag} is not in the README"


def test_statistics_counts_per_rule_most_frequent_first(project):
    rc, doc = scan_json(".")
    res = run("scan", ".", "--statistics", "--no-cache", "-q")
    lines = res.stdout.strip().splitlines()
    rows = [line.split() for line in lines]
    expected = {}
    for f in doc["findings"]:
        expected[f["code"]] = expected.get(f["code"], 0) + 1
    assert {r[1]: int(r[0]) for r in rows} == expected
    assert [int(r[0]) for r in rows] == sorted((int(r[0]) for r in rows), reverse=True)
    assert res.exit_code == 1


def test_statistics_as_json(project):
    rc, doc = scan_json(".")
    res = run("scan", ".", "--statistics", "--output-format", "json", "--no-cache", "-q")
    rows = json.loads(res.stdout)
    for row in rows:
        mine = [f for f in doc["findings"] if f["code"] == row["code"]]
        assert row["count"] == len(mine)
        assert row["blocks_loop"] == sum(f["severity"] == "blocks-loop" for f in mine)
        assert row["debt"] == sum(f["severity"] == "debt" for f in mine)


def test_output_format_is_an_alias_of_format(project):
    a = run("scan", ".", "--output-format", "json", "--no-cache", "-q")
    b = run("scan", ".", "--format", "json", "--no-cache", "-q")
    assert json.loads(a.stdout) == json.loads(b.stdout)
    c = run("check", ".", "--output-format", "json", "--update-baseline", "--no-cache", "-q")
    assert c.exit_code == 0 and json.loads(c.stdout)["baseline"]["updated"] is True


def test_exclude_replaces_and_extend_exclude_adds(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nexclude = ["scripts/"]\n')
    assert paths(scan_json(".")[1]) == {"app/db.py", "app/routes.py"}
    assert "scripts/seed.py" in paths(scan_json(".", "--exclude", "app/routes.py")[1])
    assert "app/routes.py" not in paths(scan_json(".", "--exclude", "app/routes.py")[1])
    assert paths(scan_json(".", "--extend-exclude", "app/routes.py")[1]) == {"app/db.py"}


def test_extend_exclude_in_the_configuration(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nexclude = ["scripts/"]\n'
                                            'extend-exclude = ["app/db.py"]\n')
    assert paths(scan_json(".")[1]) == {"app/routes.py"}


def test_force_exclude_applies_excludes_to_named_paths(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nexclude = ["scripts/"]\n')
    assert paths(scan_json("scripts/seed.py", "app/db.py")[1]) == {"scripts/seed.py", "app/db.py"}
    assert paths(scan_json("scripts/seed.py", "app/db.py", "--force-exclude")[1]) == {"app/db.py"}
    rc, doc = scan_json("scripts/seed.py", "--force-exclude")
    assert rc == 0 and doc["findings"] == [] and doc["files_scanned"] == 0
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nexclude = ["scripts/"]\nforce-exclude = true\n')
    assert paths(scan_json("scripts/seed.py", "app/db.py")[1]) == {"app/db.py"}


def test_per_file_ignores_in_scan(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nper-file-ignores = { "scripts/*" = ["ASM11"] }\n')
    rc, doc = scan_json(".")
    assert [f["code"] for f in doc["findings"] if f["path"] == "scripts/seed.py"] == ["ASM103"]
    assert "ASM110" in codes(doc)  # elsewhere untouched
    assert doc["suppressed"] == 1


def test_per_file_ignores_in_check_do_not_shrink_or_fail_the_baseline(project):
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    assert run("check", ".", "--update-baseline", "--no-cache", "-q").exit_code == 0
    (project / "scripts" / "seed.py").write_text((project / "scripts" / "seed.py").read_text()
                                                 + "    db.query(Item).first()\n")
    assert run("check", ".", "--no-cache", "-q").exit_code == 1
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nper-file-ignores = { "scripts/*" = ["ASM110"] }\n')
    res = run("check", ".", "--no-cache", "-q")
    assert res.exit_code == 0, res.output
    assert "shrinks" not in res.output


def test_show_settings_prints_the_resolved_configuration_and_exits_0(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nignore = ["ASM3"]\nexclude = ["scripts/"]\n')
    res = run("scan", ".", "--show-settings", "--extend-exclude", "gen/", "--select", "ASM110")
    assert res.exit_code == 0
    out = res.stdout
    assert 'exclude = ["scripts/", "gen/"]' in out
    assert "# rules that run (1): ASM110" in out
    assert "pyproject.toml" in out.splitlines()[0]
    assert "--select replaces ignore" in out


def test_show_files_lists_what_would_be_analysed_and_exits_0(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nexclude = ["scripts/"]\n')
    res = run("scan", ".", "--show-files")
    assert res.exit_code == 0
    assert res.stdout.split() == ["app/__init__.py", "app/db.py", "app/routes.py"]
    res = run("check", "app", "--show-files", "--exclude", "app/db.py")
    assert res.stdout.split() == ["app/__init__.py", "app/routes.py"]


def test_check_exit_zero(project):
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (project / "app" / "routes.py").write_text("")
    assert run("check", ".", "--update-baseline", "--no-cache", "-q").exit_code == 0
    (project / "app" / "routes.py").write_text(ROUTES)
    res = run("check", ".", "--no-cache", "-q")
    assert res.exit_code == 1 and "new finding" in res.output
    res = run("check", ".", "--no-cache", "-q", "--exit-zero")
    assert res.exit_code == 0 and "new finding" in res.output  # still listed


def test_fail_on_blocks_loop(project):
    """``app/db.py`` and ``scripts/seed.py`` have only debt; ``app/routes.py`` has an async route that blocks the
    loop."""
    assert run("scan", "app/db.py", "scripts", "--no-cache", "-q").exit_code == 1
    assert run("scan", "app/db.py", "scripts", "--no-cache", "-q", "--fail-on", "blocks-loop").exit_code == 0
    assert run("scan", ".", "--no-cache", "-q", "--fail-on", "blocks-loop").exit_code == 1


def test_check_fail_on_blocks_loop(project):
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    assert run("check", ".", "--update-baseline", "--no-cache", "-q").exit_code == 0
    seed = project / "scripts" / "seed.py"
    seed.write_text(seed.read_text() + "    db.query(Item).first()\n")  # new debt only
    assert run("check", ".", "--no-cache", "-q").exit_code == 1
    assert run("check", ".", "--no-cache", "-q", "--fail-on", "blocks-loop").exit_code == 0
    routes = project / "app" / "routes.py"
    routes.write_text(routes.read_text().replace("return db.query(Item).all()",
                                                 "db.commit()\n    return db.query(Item).all()"))
    assert run("check", ".", "--no-cache", "-q", "--fail-on", "blocks-loop").exit_code == 1


def test_scan_stdin_with_a_filename(project):
    """An editor pipes an unsaved buffer: findings carry its name and its module, nothing is read from disk."""
    buffer = ROUTES.replace("return db.query(Item).all()", "db.commit()\n    return db.query(Item).all()")
    res = run("scan", "-", "--stdin-filename", "app/routes.py", "--format", "json", input=buffer)
    doc = json.loads(res.stdout)
    on_disk = scan_json("app/routes.py")[1]
    assert paths(doc) == {"app/routes.py"}
    assert len(doc["findings"]) == len(on_disk["findings"]) + 1
    assert any(f["code"] == "ASM120" and f["scope"] == "list_items" for f in doc["findings"])
    assert res.exit_code == 1


def test_scan_stdin_without_a_filename(project):
    res = run("scan", "-", "--format", "json", input=ROUTES)
    doc = json.loads(res.stdout)
    assert paths(doc) == {"-"} and "ASM110" in codes(doc)


def test_scan_stdin_honours_force_exclude_and_per_file_ignores(project):
    (project / "pyproject.toml").write_text('[tool.asyncmigrate]\nexclude = ["scripts/"]\nforce-exclude = true\n'
                                            'per-file-ignores = { "app/*" = ["ASM110"] }\n')
    res = run("scan", "-", "--stdin-filename", "scripts/seed.py", "--format", "json", input=ROUTES)
    assert json.loads(res.stdout)["findings"] == [] and res.exit_code == 0
    res = run("scan", "-", "--stdin-filename", "app/x.py", "--format", "json", input=ROUTES)
    assert codes(json.loads(res.stdout)) and "ASM110" not in codes(json.loads(res.stdout))


def test_stdin_usage_errors(project):
    assert run("scan", "-", "app").exit_code == 2
    assert run("scan", "app", "--stdin-filename", "x.py").exit_code == 2
    assert run("check", "-").exit_code == 2
