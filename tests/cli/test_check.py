"""``asyncmigrate check``: the baseline ratchet and ``--diff-against``, in a real git repository.

Each test builds a small FastAPI + sync-SQLAlchemy package in a fresh ``git init`` repository,
records a baseline (or commits), edits the code and runs the gate through the CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from asyncmigrate.analysis.findings import fingerprint
from asyncmigrate.baseline import Baseline, Key, compare
from asyncmigrate.cli import main

DB = '''\
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite:///app.db")
SessionLocal = sessionmaker(bind=engine)


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()
'''

MODELS = '''\
from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
    name = Column(String)
'''

ROUTES = '''\
from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from .db import get_db
from .models import Item

router = APIRouter()


@router.get("/items")
async def list_items(db: Session = Depends(get_db)):
    return db.query(Item).filter(Item.name != "").all()


@router.post("/items")
async def create_item(name: str, db: Session = Depends(get_db)):
    item = Item(name=name)
    db.add(item)
    db.commit()
    db.refresh(item)
    return item
'''

NEW_ROUTE = '''

@router.get("/items/{item_id}")
async def get_item(item_id: int, db: Session = Depends(get_db)):
    return db.query(Item).filter(Item.id == item_id).first()
'''

BASELINE = ".asyncmigrate-baseline.json"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "db.py").write_text(DB)
    (root / "app" / "models.py").write_text(MODELS)
    (root / "app" / "routes.py").write_text(ROUTES)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    monkeypatch.chdir(root)
    return root


def check(*args: str):
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


def check_json(*args: str) -> tuple[int, dict]:
    res = check(*args, "--format", "json")
    return res.exit_code, json.loads(res.stdout)


def record(repo: Path) -> dict:
    res = check("app", "--update-baseline")
    assert res.exit_code == 0, res.output
    return json.loads((repo / BASELINE).read_text())


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    p = repo / rel
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new, 1))


def brief(doc: dict) -> list[tuple]:
    return [(f["path"], f["line"], f["code"], f["scope"]) for f in doc["findings"]]


def tree_state(repo: Path) -> tuple[str, str]:
    """A hash of every file outside .git, plus ``git status --porcelain``."""
    h = hashlib.sha256()
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo)
        if rel.parts[0] == ".git" or not p.is_file():
            continue
        h.update(rel.as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest(), git(repo, "status", "--porcelain")


# ---------------------------------------------------------------- the baseline file
def test_missing_baseline_is_a_usage_error(repo):
    res = check("app")
    assert res.exit_code == 2
    assert "no baseline at .asyncmigrate-baseline.json" in res.output
    assert "--update-baseline" in res.output


def test_update_baseline_writes_sorted_diff_friendly_json(repo):
    doc = record(repo)
    text = (repo / BASELINE).read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "version": 1,')
    assert list(doc) == ["version", "tool", "entries"]
    assert doc["version"] == 1 and doc["tool"] == "asyncmigrate"
    entries = doc["entries"]
    keys = [(e["path"], e["code"], e["scope"], e["snippet"]) for e in entries]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for e in entries:
        assert list(e) == ["path", "code", "scope", "snippet", "fingerprint", "count"]
        assert e["fingerprint"] == fingerprint(e["path"], e["code"], e["scope"], e["snippet"])
        assert e["count"] >= 1
    assert ("app/routes.py", "ASM110", "list_items", "db.query(Item)") in keys
    assert ("app/db.py", "ASM140", "<module>", 'create_engine("sqlite:///app.db")') in keys
    assert not [p for p in repo.iterdir() if p.name.endswith(".tmp")]  # the temp file was renamed into place
    # a second update changes nothing, not even the bytes
    res = check("app", "--update-baseline")
    assert res.exit_code == 0 and "is up to date" in res.output
    assert (repo / BASELINE).read_text() == text
    # and the gate passes on the unchanged tree
    res = check("app")
    assert res.exit_code == 0, res.output
    assert f"no new findings against {BASELINE} (" in res.output


def test_adding_lines_above_old_findings_does_not_trip(repo):
    record(repo)
    edit(repo, "app/routes.py", "router = APIRouter()\n",
         'router = APIRouter()\n\n\ndef unrelated(x):\n    """Padding."""\n    return [x, x, x]\n\n\nLIMIT = 10\n')
    code, doc = check_json("app")
    assert code == 0, doc
    assert doc["findings"] == [] and doc["baseline"]["new"] == 0


def test_reformatting_a_call_does_not_trip(repo):
    record(repo)
    edit(repo, "app/routes.py", 'return db.query(Item).filter(Item.name != "").all()',
         'return (\n        db.query(\n            Item,\n        )\n        .filter(Item.name != "",)\n        .all()\n    )')
    edit(repo, "app/db.py", 'create_engine("sqlite:///app.db")', 'create_engine(\n    "sqlite:///app.db",\n)')
    code, doc = check_json("app")
    assert code == 0, doc
    assert doc["baseline"]["before"] == doc["baseline"]["now"]


def test_moving_a_function_within_its_file_does_not_trip(repo):
    record(repo)
    text = (repo / "app/routes.py").read_text()
    head, rest = text.split('@router.get("/items")\n')
    list_items, create_item = rest.split('\n\n@router.post("/items")\n')
    (repo / "app/routes.py").write_text(head + '@router.post("/items")\n' + create_item.rstrip() + "\n\n\n"
                                        + '@router.get("/items")\n' + list_items.rstrip() + "\n")
    code, doc = check_json("app")
    assert code == 0, doc


def test_new_query_in_an_async_route_fails_and_is_listed(repo):
    record(repo)
    with open(repo / "app/routes.py", "a") as f:
        f.write(NEW_ROUTE)
    line = (repo / "app/routes.py").read_text().splitlines().index(
        "    return db.query(Item).filter(Item.id == item_id).first()") + 1
    code, doc = check_json("app")
    assert code == 1
    assert ("app/routes.py", line, "ASM110", "get_item") in brief(doc)
    assert {f["scope"] for f in doc["findings"]} == {"get_item"}  # only the new route's findings
    assert all(f["severity"] == "blocks-loop" for f in doc["findings"])
    assert {(n["code"], n["scope"], n["baseline"], n["count"]) for n in doc["new"]} >= {("ASM110", "get_item", 0, 1)}
    assert doc["baseline"]["new"] == len(doc["findings"])
    assert doc["counts"]["total"]["total"] == len(doc["findings"])
    res = check("app")
    assert res.exit_code == 1
    assert f"app/routes.py:{line}:12: ASM110 [blocks-loop]" in res.output
    assert "new finding" in res.output


def test_a_key_that_grows_reports_only_the_extra_findings(repo):
    """A second ``db.commit()`` in the same function: same key, count 1 -> 2, the later one is new."""
    record(repo)
    edit(repo, "app/routes.py", "    db.refresh(item)\n", "    db.refresh(item)\n    db.commit()\n")
    line = (repo / "app/routes.py").read_text().splitlines().index("    db.refresh(item)") + 2
    code, doc = check_json("app")
    assert code == 1
    assert brief(doc) == [("app/routes.py", line, "ASM120", "create_item")]
    [grown] = doc["new"]
    assert (grown["snippet"], grown["baseline"], grown["count"]) == ("db.commit()", 1, 2)


def test_a_removed_finding_shrinks_the_baseline(repo):
    before = record(repo)
    edit(repo, "app/routes.py", "    db.refresh(item)\n", "")
    res = check("app")
    assert res.exit_code == 0, res.output
    assert "the baseline shrinks by 1" in res.output
    assert "--update-baseline" in res.output
    assert json.loads((repo / BASELINE).read_text()) == before  # checking never writes
    res = check("app", "--update-baseline")
    assert res.exit_code == 0, res.output
    after = json.loads((repo / BASELINE).read_text())
    removed = [e for e in before["entries"] if e not in after["entries"]]
    assert [(e["code"], e["snippet"]) for e in removed] == [("ASM120", "db.refresh(item)")]
    assert len(after["entries"]) == len(before["entries"]) - 1
    assert check("app").exit_code == 0


def test_update_baseline_refuses_growth_unless_allowed(repo):
    record(repo)
    text = (repo / BASELINE).read_text()
    with open(repo / "app/routes.py", "a") as f:
        f.write(NEW_ROUTE)
    res = check("app", "--update-baseline")
    assert res.exit_code == 1
    assert "refusing to grow the baseline" in res.output and "--allow-growth" in res.output
    assert "ASM110 [blocks-loop]" in res.output  # the findings it refuses are listed
    assert (repo / BASELINE).read_text() == text
    assert check("app", "--allow-growth").exit_code == 2  # only meaningful with --update-baseline
    res = check("app", "--update-baseline", "--allow-growth")
    assert res.exit_code == 0, res.output
    doc = json.loads((repo / BASELINE).read_text())
    assert any(e["scope"] == "get_item" and e["code"] == "ASM110" for e in doc["entries"])
    assert check("app").exit_code == 0


def test_update_baseline_keeps_what_this_run_did_not_look_at(repo):
    """Entries of unselected rules and of paths outside the scanned ones are neither shrunk nor dropped."""
    before = record(repo)
    res = check("app/routes.py", "--select", "ASM110", "--update-baseline")
    assert res.exit_code == 0, res.output
    assert json.loads((repo / BASELINE).read_text()) == before
    res = check("app/routes.py", "--select", "ASM110")
    assert res.exit_code == 0 and "shrinks" not in res.output


def test_paths_are_relative_to_the_repository_whatever_the_working_directory(repo, monkeypatch):
    total = sum(e["count"] for e in record(repo)["entries"])
    monkeypatch.chdir(repo / "app")
    res = check(".", "--baseline", f"../{BASELINE}")
    assert res.exit_code == 0, res.output
    assert f"no new findings against {repo / BASELINE} ({total} there, {total} now)" in res.output
    with open(repo / "app/routes.py", "a") as f:
        f.write(NEW_ROUTE)
    code, doc = check_json(".", "--baseline", f"../{BASELINE}")
    assert code == 1
    assert {f["path"] for f in doc["findings"]} == {"app/routes.py"}
    assert {f["fingerprint"] for f in doc["findings"]} == {n["fingerprint"] for n in doc["new"]}


def test_a_renamed_file_keeps_its_entries(repo):
    record(repo)
    os.rename(repo / "app/routes.py", repo / "app/items.py")
    edit(repo, "app/items.py", "router = APIRouter()\n", "router = APIRouter()\n# moved from routes.py\n")
    code, doc = check_json("app")
    assert code == 0, doc
    assert doc["baseline"]["renamed"] == [{"from": "app/routes.py", "to": "app/items.py"}]
    assert doc["baseline"]["shrinks_by"] == 0
    res = check("app", "--update-baseline")
    assert res.exit_code == 0, res.output
    paths = {e["path"] for e in json.loads((repo / BASELINE).read_text())["entries"]}
    assert "app/items.py" in paths and "app/routes.py" not in paths
    # a genuinely new finding in the renamed file is still caught
    with open(repo / "app/items.py", "a") as f:
        f.write(NEW_ROUTE)
    code, doc = check_json("app")
    assert code == 1 and {f["scope"] for f in doc["findings"]} == {"get_item"}


def test_a_copied_file_is_not_a_rename(repo):
    """The old file still exists, so the copy's findings are new."""
    record(repo)
    (repo / "app/copy.py").write_text((repo / "app/routes.py").read_text())
    code, doc = check_json("app")
    assert code == 1
    assert {f["path"] for f in doc["findings"]} == {"app/copy.py"}
    assert doc["baseline"]["renamed"] == []


@pytest.mark.parametrize("content, message", [
    ("{\n<<<<<<< HEAD\n", "not valid JSON"),
    ('{"version": 1, "tool": "asyncmigrate", "entries": [{"path": "a.py", "count": 1}]}', "entry 0"),
    (json.dumps({"version": 1, "tool": "asyncmigrate",
                 "entries": [{"path": "a.py", "code": "ASM110", "scope": "f", "snippet": "x", "count": 0}]}),
     "positive integer"),
    ('{"version": 99, "tool": "asyncmigrate", "entries": []}', "version 99"),
    ('[]', "not an asyncmigrate baseline"),
])
def test_a_corrupt_baseline_exits_2(repo, content, message):
    (repo / BASELINE).write_text(content)
    res = check("app")
    assert res.exit_code == 2
    assert message in res.output
    res = check("app", "--update-baseline")
    assert res.exit_code == 2
    assert (repo / BASELINE).read_text() == content  # never overwritten


def test_a_file_with_a_syntax_error_exits_3_and_is_listed(repo):
    before = record(repo)
    (repo / "app/broken.py").write_text("def oops(:\n    pass\n")
    res = check("app")
    assert res.exit_code == 3
    assert "skipped app/broken.py:1:" in res.output
    code, doc = check_json("app")
    assert code == 3
    assert [(e["path"], e["kind"]) for e in doc["errors"]] == [("app/broken.py", "syntax")]
    # breaking a file that has entries does not count its findings as fixed, nor drop them on update
    edit(repo, "app/routes.py", "router = APIRouter()", "router = APIRouter(")
    code, doc = check_json("app")
    assert code == 3 and doc["baseline"]["shrinks_by"] == 0
    assert check("app", "--update-baseline").exit_code == 3
    assert json.loads((repo / BASELINE).read_text()) == before


@pytest.mark.parametrize("fmt", ["sarif", "github"])
def test_machine_formats_list_only_new_findings(repo, fmt):
    record(repo)
    with open(repo / "app/routes.py", "a") as f:
        f.write(NEW_ROUTE)
    _, doc = check_json("app")
    res = check("app", "--format", fmt)
    assert res.exit_code == 1
    if fmt == "sarif":
        run = json.loads(res.stdout)["runs"][0]
        assert [r["partialFingerprints"]["asyncmigrate/v1"] for r in run["results"]] == [
            f["fingerprint"] for f in doc["findings"]]
        assert run["properties"]["asyncmigrate/baseline"]["new"] == len(doc["findings"])
    else:
        lines = res.stdout.splitlines()
        assert len(lines) == len(doc["findings"]) + 1
        assert all(line.startswith("::error file=app/routes.py,") for line in lines[:-1])
        assert lines[-1].startswith("::notice title=asyncmigrate::") and "new finding" in lines[-1]


def test_output_file(repo):
    record(repo)
    res = check("app", "--format", "json", "--output", "report.json")
    assert res.exit_code == 0
    doc = json.loads((repo / "report.json").read_text())
    assert doc["findings"] == [] and doc["baseline"]["source"] == "file"


# ---------------------------------------------------------------- --diff-against
def test_diff_against_head_flags_exactly_the_new_finding_and_touches_nothing(repo):
    # one changed file: a new route with a query, and an unrelated edit above old findings
    edit(repo, "app/routes.py", "router = APIRouter()\n", "router = APIRouter()\nPREFIX = '/v1'\n")
    edit(repo, "app/routes.py", "    db.refresh(item)\n    return item\n",
         "    db.refresh(item)\n    return item\n\n\n@router.get('/one')\nasync def one(item_id: int):\n"
         "    return SessionLocal().query(Item).get(item_id)\n")
    edit(repo, "app/routes.py", "from .db import get_db\n", "from .db import SessionLocal, get_db\n")
    before = tree_state(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    code, doc = check_json("app", "--diff-against", "HEAD", "--no-cache")
    assert tree_state(repo) == before
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert before[1] == " M app/routes.py\n"
    assert code == 1
    line = (repo / "app/routes.py").read_text().splitlines().index(
        "    return SessionLocal().query(Item).get(item_id)") + 1
    assert sorted((f["code"], f["line"], f["scope"]) for f in doc["findings"]) == [
        ("ASM103", line, "one"), ("ASM110", line, "one")]
    assert doc["baseline"]["source"] == "git" and doc["baseline"]["commit"] == head
    # the other side really is HEAD: committing the change makes the gate pass
    git(repo, "commit", "-qam", "add /one")
    code, doc = check_json("app", "--diff-against", "HEAD", "--no-cache")
    assert code == 0 and doc["findings"] == []
    assert check_json("app", "--diff-against", "HEAD~1")[0] == 1


def test_diff_against_uses_the_refs_content_not_the_work_tree(repo):
    """A finding removed in the work tree shrinks, one added is new; the cache does not mix the sides."""
    edit(repo, "app/routes.py", "    db.refresh(item)\n", "")
    with open(repo / "app/routes.py", "a") as f:
        f.write(NEW_ROUTE)
    for _ in range(2):  # the second run is served from the cache
        code, doc = check_json("app", "--diff-against", "main")
        assert code == 1
        assert {f["scope"] for f in doc["findings"]} == {"get_item"}
        assert doc["baseline"]["shrinks_by"] == 1


def test_diff_against_from_a_subdirectory_and_with_a_renamed_file(repo, monkeypatch):
    git(repo, "mv", "app/routes.py", "app/items.py")
    monkeypatch.chdir(repo / "app")
    code, doc = check_json(".", "--diff-against", "HEAD")
    assert code == 0, doc
    assert doc["baseline"]["renamed"] == [{"from": "app/routes.py", "to": "app/items.py"}]
    with open(repo / "app/items.py", "a") as f:
        f.write(NEW_ROUTE)
    code, doc = check_json(".", "--diff-against", "HEAD")
    assert code == 1
    assert {(f["path"], f["scope"]) for f in doc["findings"]} == {("app/items.py", "get_item")}


def test_diff_against_a_bad_ref_or_outside_git(repo, tmp_path, monkeypatch):
    res = check("app", "--diff-against", "no-such-branch")
    assert res.exit_code == 2 and "does not name a commit" in res.output
    res = check("app", "--diff-against", "--help")
    assert res.exit_code == 2 and "is not a git revision" in res.output
    assert check("app", "--diff-against", "HEAD", "--update-baseline").exit_code == 2
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / "m.py").write_text("import time\n\nasync def f():\n    time.sleep(1)\n")
    monkeypatch.chdir(outside)
    res = check(".", "--diff-against", "HEAD")
    assert res.exit_code == 2 and "git" in res.output


# ---------------------------------------------------------------- compare() on its own
def test_compare_counts_renames_and_scope():
    k = Key("a.py", "ASM110", "f", "db.query(X)")
    base = Baseline({k: 2, Key("gone.py", "ASM120", "g", "db.commit()"): 1,
                     Key("other/x.py", "ASM110", "h", "db.query(Y)"): 3})
    from asyncmigrate.model import DEBT, Finding, Span

    def finding(path, code, scope, snippet, line):
        return Finding(path, Span(line, 1, line, 5), code, "query", DEBT, "m", scope, snippet=snippet,
                       fingerprint=fingerprint(path, code, scope, snippet))

    now = [finding("a.py", "ASM110", "f", "db.query(X)", n) for n in (30, 10, 20)]
    now.append(finding("new.py", "ASM120", "g", "db.commit()", 1))  # gone.py -> new.py
    cmp = compare(base, now, in_scope=lambda key: not key.path.startswith("other/"), scanned={"a.py", "new.py"})
    assert [f.span.line for f in cmp.new] == [30]  # the last by position
    assert [(g.key, g.before, g.now) for g in cmp.grown] == [(k, 2, 3)]
    assert cmp.renamed == [("gone.py", "new.py")]
    assert cmp.shrunk == [] and cmp.before == 3 and cmp.now == 4
    assert cmp.updated.counts[Key("other/x.py", "ASM110", "h", "db.query(Y)")] == 3  # out of scope: kept
    assert Key("gone.py", "ASM120", "g", "db.commit()") not in cmp.updated.counts
    assert Baseline.loads(cmp.updated.dumps()).counts == cmp.updated.counts
