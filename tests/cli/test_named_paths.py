"""The paths named are part of the result, missing ones included (issue 11, item 2).

``scan a.py typo/`` used to exit 1 without mentioning ``typo/`` once the result cache was warm, and a
missing path exited 3 in ``scan`` but 2 in ``fix``.  Now every command reports it as skipped and exits 3.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.tree import make_project, run

SKIPPED = "typo/: cannot read: No such file or directory"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return make_project(tmp_path)


def test_scan_reports_a_missing_path_with_a_warm_cache(project):
    cold = run("scan", "app", "-q")  # fills the cache (summaries and the result) for `app`
    assert cold.exit_code == 1
    for _ in range(2):
        res = run("scan", "app", "typo/", "-q")
        assert res.exit_code == 3, res.output
        assert f"skipped {SKIPPED}" in res.stdout
        assert "app/routes.py:11:12: ASM110" in res.stdout  # the rest is still analysed


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_a_missing_path_is_in_every_format(project, fmt):
    run("scan", "app", "-q")
    res = run("scan", "app", "typo/", "-q", "--format", fmt)
    assert res.exit_code == 3
    assert "typo/" in res.stdout
    if fmt == "json":
        assert json.loads(res.stdout)["errors"][0] == {"path": "typo/", "kind": "read", "line": 0, "column": 0,
                                                       "message": "cannot read: No such file or directory"}


def test_check_reports_a_missing_path(project):
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    assert run("check", "app", "--update-baseline", "-q").exit_code == 0
    res = run("check", "app", "typo/", "-q")
    assert res.exit_code == 3
    # check spells paths relative to the repository (no trailing slash)
    assert "skipped typo: cannot read: No such file or directory" in res.stdout
    res = run("check", "typo/", "-q")
    assert res.exit_code == 3 and "typo/" in res.stdout


def test_fix_reports_a_missing_path_with_the_same_exit_code(project):
    res = run("fix", "app", "typo/", "--diff", "--no-cache")
    assert res.exit_code == 3
    assert SKIPPED in res.stderr
    assert "+++ b/app/routes.py" in res.stdout  # the rest is still migrated
    res = run("fix", "typo/", "--diff", "--no-cache")
    assert res.exit_code == 3 and SKIPPED in res.stderr


def test_scan_of_only_missing_paths(project):
    res = run("scan", "typo/", "nope.py", "-q", "--format", "json")
    assert res.exit_code == 3
    assert [e["path"] for e in json.loads(res.stdout)["errors"]] == ["typo/", "nope.py"]
