"""A run on some files means the same as a run on the project (issue 11, item 1).

pre-commit and lint-staged name only the changed files.  The project those files belong to is analysed from its
root, so a file's findings do not depend on which other files are named; ``check FILES`` compares only those
files' baseline entries and ``--update-baseline`` keeps the entries of the files it did not look at.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.tree import run

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "example_backend"

NEW_CODE = '''


async def count_users_now():
    db = SessionLocal()
    return db.query(User).count()
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "backend"
    shutil.copytree(EXAMPLE, root)
    monkeypatch.chdir(root)
    return root


def findings(*args: str) -> list[tuple]:
    res = run("scan", *args, "-q", "--format", "json")
    assert res.exit_code in (0, 1), res.stderr
    return sorted((f["path"], f["line"], f["code"]) for f in json.loads(res.stdout)["findings"])


def test_scan_of_one_file_reports_what_the_project_scan_reports_for_it(project):
    whole = [f for f in findings(".") if f[0] == "app/tasks.py"]
    assert whole  # the file has findings that need the rest of the project (the session factory's module)
    assert findings("app/tasks.py") == whole
    # warm cache: the same answer
    assert findings("app/tasks.py") == whole


def test_naming_other_files_too_changes_nothing_for_a_file(project):
    alone = findings("app/tasks.py")
    together = [f for f in findings("app/tasks.py", "app/main.py") if f[0] == "app/tasks.py"]
    assert together == alone


def test_findings_are_reported_only_for_the_named_files(project):
    assert {f[0] for f in findings("app/tasks.py", "app/main.py")} <= {"app/tasks.py", "app/main.py"}


def test_check_on_one_file_sees_a_new_finding_and_keeps_the_other_files_entries(project):
    created = run("check", "--update-baseline", ".", "-q")
    assert created.exit_code == 0, created.stderr
    baseline = json.loads((project / ".asyncmigrate-baseline.json").read_text())
    with open(project / "app" / "tasks.py", "a", encoding="utf-8") as fh:
        fh.write(NEW_CODE)

    one = run("check", "app/tasks.py", "-q")
    assert one.exit_code == 1, one.stdout + one.stderr
    assert "ASM103" in one.stdout and "ASM110" in one.stdout
    assert "2 new findings" in one.stdout + one.stderr

    grown = run("check", "app/tasks.py", "-q", "--update-baseline", "--allow-growth")
    assert grown.exit_code == 0, grown.stderr
    updated = json.loads((project / ".asyncmigrate-baseline.json").read_text())
    assert json.dumps(updated).count("app/routers/") == json.dumps(baseline).count("app/routers/")

    full = run("check", ".", "-q")
    assert full.exit_code == 0, full.stdout + full.stderr
    assert "no new findings" in full.stdout + full.stderr


def test_stdin_with_a_filename_is_analysed_in_its_project(project):
    text = (project / "app" / "tasks.py").read_text(encoding="utf-8")
    res = run("scan", "-", "--stdin-filename", "app/tasks.py", "-q", "--format", "json", input=text)
    assert res.exit_code == 1, res.stderr
    piped = sorted((f["path"], f["line"], f["code"]) for f in json.loads(res.stdout)["findings"])
    assert piped == findings("app/tasks.py")
    # the buffer, not the file on disk, is what is analysed
    res = run("scan", "-", "--stdin-filename", "app/tasks.py", "-q", "--format", "json", input="x = 1\n")
    assert json.loads(res.stdout)["findings"] == []
