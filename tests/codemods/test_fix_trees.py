"""Before/after project trees run through the real ``asyncmigrate fix`` command line.

Each case is a small multi-file project in ``fixtures/codemods/<rewrite>/<case>/``:

``before/``               the project as it is today (sync SQLAlchemy)
``after/``                what ``fix --write`` must leave, byte for byte, every file (changed or not)
``args.txt``              optional: the ``fix`` arguments, one a line, relative to the project (default: the
                          project directory itself); used for module-by-module runs on a subset of files
``expected_report.txt``   optional: lines that must each appear in the summary ``fix`` prints on stderr
                          (boundaries, test files and other things left for a human)
``xfail.txt``             optional: why the tool's output is wrong today.  ``after/`` then holds the CORRECT
                          output, and the case is ``xfail(strict=True)`` until the rewrite is fixed

Every case asserts, on a copy of ``before/`` in a temporary directory:

* ``fix --write --no-cache`` exits 0, and the tree equals ``after/`` (a unified diff on failure);
* every file it wrote re-parses with libcst and compiles;
* a second ``fix --diff`` prints nothing (the rewrite is idempotent);
* ``fix --diff`` on a fresh copy of ``before/`` leaves every byte of it unchanged and no file behind.

The cases are parametrized over every ``before/`` directory below ``fixtures/codemods``, so a tree added
for any rewrite is picked up.  One tree is also executed after the rewrite, against ``sqlite+aiosqlite``
(``test_migrated_tree_runs``), to prove that the migrated code does not just parse but works.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "codemods"
#: the rewrites this file owns; each must have at least one tree
SESSION_REWRITES = ("await_session_methods", "session_factory", "session_dependency", "sleep_to_asyncio",
                    "propagate_async", "response_models", "eager_load", "textual_sql", "driver_casts")
_IGNORED_PARTS = {"__pycache__", ".asyncmigrate_cache", ".pytest_cache"}


def _case_dirs() -> list[Path]:
    return sorted(p.parent for p in FIXTURES.glob("*/*/before") if p.is_dir())


class WrongOutput(AssertionError):
    """The rewrite's output (tree or report) is not the expected one: the only failure an xfail case may have."""


def _param(case: Path, xfail: bool):
    marks = []
    reason = case / "xfail.txt"
    if xfail and reason.exists():
        # raises=WrongOutput: a crash, a bad exit code or a file that does not compile still fails the case
        marks.append(pytest.mark.xfail(strict=True, raises=WrongOutput,
                                       reason=reason.read_text(encoding="utf-8").strip()))
    return pytest.param(case, id=f"{case.parent.name}/{case.name}", marks=marks)


#: for the golden comparison: a case whose output is known to be wrong is a strict xfail
GOLDEN = [_param(c, xfail=True) for c in _case_dirs()]
#: for the properties that hold whatever the output (nothing written by --diff, the expected output is final)
CASES = [_param(c, xfail=False) for c in _case_dirs()]


# ---------------------------------------------------------------- helpers
def run_fix(project: Path, *args: str, mode: str, case: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m asyncmigrate fix`` in ``project`` (the case's ``args.txt``, or the project directory)."""
    targets = list(args)
    if not targets:
        args_file = case / "args.txt" if case is not None else None
        targets = (args_file.read_text(encoding="utf-8").split("\n") if args_file and args_file.exists()
                   else [str(project)])
        targets = [t for t in targets if t]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "asyncmigrate", "fix", *targets, mode, "--no-cache"],
                          cwd=project, capture_output=True, text=True, env=env, timeout=300)


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative posix path -> bytes), caches excluded."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not _IGNORED_PARTS.intersection(rel.parts):
            out[rel.as_posix()] = p.read_bytes()
    return out


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for rel, data in tree_files(root).items():
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def tree_diff(expected: dict[str, bytes], actual: dict[str, bytes]) -> str:
    out: list[str] = []
    for rel in sorted(expected.keys() | actual.keys()):
        a, b = expected.get(rel), actual.get(rel)
        if a == b:
            continue
        if a is None or b is None:
            out.append(f"{rel}: only in {'actual' if a is None else 'expected'}\n")
            continue
        out += difflib.unified_diff(a.decode("utf-8", "replace").splitlines(keepends=True),
                                    b.decode("utf-8", "replace").splitlines(keepends=True),
                                    f"expected/{rel}", f"actual/{rel}")
    return "".join(out)


def copy_before(case: Path, dest: Path) -> Path:
    shutil.copytree(case / "before", dest)
    return dest


def written_files(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    return [rel for rel, data in after.items() if before.get(rel) != data]


# ---------------------------------------------------------------- the trees
def test_every_session_rewrite_has_trees() -> None:
    for rewrite in SESSION_REWRITES:
        cases = [c for c in _case_dirs() if c.parent.name == rewrite]
        assert cases, f"no before/after tree for {rewrite}"
        for case in cases:
            assert (case / "after").is_dir(), f"{case} has no after/"


@pytest.mark.parametrize("case", GOLDEN)
def test_fix_write_gives_after(case: Path, tmp_path: Path) -> None:
    project = copy_before(case, tmp_path / "project")
    before = tree_files(project)

    proc = run_fix(project, mode="--write", case=case)
    assert proc.returncode == 0, proc.stderr
    assert "skipped input" not in proc.stderr and "failed verification" not in proc.stderr, proc.stderr

    actual = tree_files(project)
    for rel in written_files(before, actual):
        if rel.endswith(".py"):
            data = actual[rel]
            cst.parse_module(data)
            compile(data, rel, "exec", dont_inherit=True)

    again = run_fix(project, mode="--diff", case=case)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "", "a second fix run still changes:\n" + again.stdout

    expected = tree_files(case / "after")
    if actual != expected:
        raise WrongOutput("fix --write differs from after/:\n" + tree_diff(expected, actual))
    report = case / "expected_report.txt"
    if report.exists():
        for line in report.read_text(encoding="utf-8").splitlines():
            if line not in proc.stderr:
                raise WrongOutput(f"not reported: {line!r}\nstderr:\n{proc.stderr}")


@pytest.mark.parametrize("case", CASES)
def test_fix_diff_writes_nothing(case: Path, tmp_path: Path) -> None:
    project = copy_before(case, tmp_path / "project")
    digest = tree_digest(project)
    names = sorted(p.name for p in project.rglob("*"))

    proc = run_fix(project, mode="--diff", case=case)

    assert proc.returncode in (0, 3), proc.stderr
    assert tree_digest(project) == digest
    assert sorted(p.name for p in project.rglob("*")) == names, "fix --diff left files behind"
    # the diff it prints is the change --write makes (one header per changed .py file)
    changed = written_files(tree_files(case / "before"), tree_files(case / "after"))
    if not (case / "xfail.txt").exists():
        for rel in changed:
            assert f"+++ b/{rel}" in proc.stdout, f"{rel} changes on --write but is not in the --diff output"


@pytest.mark.parametrize("case", [c for c in CASES if (c.values[0] / "xfail.txt").exists()])
def test_after_is_a_fixed_point(case: Path, tmp_path: Path) -> None:
    """``fix`` on the hand-written expected output of an xfail case changes nothing: it is final.

    (For the other cases ``after/`` is the tool's own output, whose second run is checked above.)
    """
    project = tmp_path / "project"
    shutil.copytree(case / "after", project)
    proc = run_fix(project, mode="--diff", case=case)
    if (case / "xfail.txt").exists() and proc.stdout:
        pytest.xfail("the rewrite is wrong on this case; see xfail.txt")
    assert proc.stdout == "", "fix changes the expected output again:\n" + proc.stdout


# ---------------------------------------------------------------- the migrated code runs
_PRELUDE = """
import asyncio
import warnings

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.database import async_engine

try:
    from app.database import AsyncSessionLocal
except ImportError:  # a project whose sessions come from a factory function of its own
    AsyncSessionLocal = None

try:
    from app.database import Base
except ImportError:  # a SQLModel project: the models' metadata is SQLModel's
    from sqlmodel import SQLModel as Base

warnings.simplefilter("error", RuntimeWarning)  # an un-awaited coroutine fails the run


async def create_schema() -> None:
    async with async_engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


def client(router) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
"""

DRIVERS = {
    # a session factory function stays a def (it awaits nothing); its callers' with becomes async with
    "session_factory/factory_function": """
from app.jobs import nightly, other


async def main() -> None:
    await create_schema()
    assert await nightly() == 1  # TypeError (with await ...) or AttributeError (__enter__) when wrong
    await other()
""",
    # plain-string SQL on a converted session: text() (SQLAlchemy 2.0 refuses a bare string)
    "textual_sql/string_statements": """
from app.health import router


async def main() -> None:
    await create_schema()
    async with client(router) as http:
        health = await http.get("/health")
        assert health.status_code == 200, health.text  # ArgumentError (textual SQL) without text()
        assert health.json()["ok"] is True, health.text
""",
    # SQLModel: Relationship() takes the strategy in sa_relationship_kwargs (lazy= would be a TypeError at import)
    "eager_load/sqlmodel_relationship": """
from app.models import Hero, Team
from app.routers import router


async def main() -> None:
    await create_schema()
    async with AsyncSessionLocal() as db:
        team = Team(name="blue")
        heroes = [Hero(name="ada", team=team), Hero(name="bob", team=team)]
        db.add_all(heroes)
        await db.commit()
        tid, hid = team.id, heroes[0].id
    async with client(router) as http:
        read = await http.get(f"/teams/{tid}")
        assert read.status_code == 200, read.text  # HTTP 500 (MissingGreenlet) without the eager load
        assert read.json() == {"name": "blue", "heroes": ["ada", "bob"]}, read.text
        hero = await http.get(f"/heroes/{hid}")
        assert hero.status_code == 200 and hero.json() == {"name": "ada", "team": "blue"}, hero.text
""",
    # services, a repository held by a service, instances, and routes (one was a plain ``def``)
    "propagate_async/three_modules_self_and_instances": """
from app.models import Item, User
from app.repositories.users import UserRepository
from app.routers.users import router
from app.services.users import UserService, register_many


async def main() -> None:
    await create_schema()
    async with AsyncSessionLocal() as db:
        users = await register_many(db, ["ada", "bob"])
        assert [u.name for u in users] == ["ada", "bob"]
        renamed = await UserService(db).rename(users[0].id, "ada lovelace")
        assert renamed.name == "ada lovelace"
        assert (await UserRepository(db).get(users[1].id)).name == "bob"
    async with AsyncSessionLocal() as db:
        titles = sorted((await db.scalars(select(Item.title))).all())
        assert titles == ["registered ada", "registered bob", "renamed ada lovelace"], titles
    async with client(router) as http:
        created = await http.post("/users", params={"name": "cy"})
        assert created.status_code == 200, created.text
        uid = created.json()["id"]
        bulk = await http.post("/users/bulk", json=["dee", "eve"])
        assert bulk.status_code == 200 and len(bulk.json()["ids"]) == 2, bulk.text
        renamed = await http.put(f"/users/{uid}", params={"name": "cyd"})
        assert renamed.status_code == 200 and renamed.json() == {"name": "cyd"}, renamed.text
    async with AsyncSessionLocal() as db:
        names = sorted((await db.scalars(select(User.name))).all())
        assert names == ["ada lovelace", "bob", "cyd", "dee", "eve"], names
""",
    # response models that read a relationship: validated in run_sync, and the relationship is selectin
    "response_models/relationship_in_response_model": """
from app.models import Item
from app.routers import router


async def main() -> None:
    await create_schema()
    async with client(router) as http:
        created = await http.post("/users", params={"name": "ada"})
        assert created.status_code == 201, created.text
        assert created.json()["items"] == [], created.text
        uid = created.json()["id"]
        async with AsyncSessionLocal() as db:
            db.add_all([Item(title="pen", owner_id=uid), Item(title="ink", owner_id=uid)])
            await db.commit()
        read = await http.get(f"/users/{uid}")
        assert read.status_code == 200, read.text  # HTTP 500 (MissingGreenlet) without the rewrite
        assert sorted(i["title"] for i in read.json()["items"]) == ["ink", "pen"], read.text
        brief = await http.get(f"/users/{uid}/brief")
        assert brief.status_code == 200 and brief.json() == {"id": uid, "name": "ada"}, brief.text
""",
    # a namespace subpackage (no __init__.py) importing its siblings relatively: the added import of the
    # async dependency is relative too (an absolute ``from database import ...`` raises ModuleNotFoundError)
    "session_dependency/relative_import_namespace_subpackage": """
from app.routers.post import router


async def main() -> None:
    await create_schema()
    async with client(router) as http:
        created = await http.post("/posts", params={"title": "first"})
        assert created.status_code == 200, created.text
        listed = await http.get("/posts")
        assert listed.status_code == 200 and [p["title"] for p in listed.json()] == ["first"], listed.text
""",
}
_EPILOGUE = """

async def run() -> None:
    try:
        await main()
    finally:
        await async_engine.dispose()
    print("migrated code ran")


asyncio.run(run())
"""


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_migrated_tree_runs(name: str, tmp_path: Path) -> None:
    """The migrated tree (exactly the golden output) imports and runs on sqlite+aiosqlite."""
    pytest.importorskip("aiosqlite")
    pytest.importorskip("httpx")
    case = FIXTURES / name
    project = copy_before(case, tmp_path / "project")
    proc = run_fix(project, mode="--write", case=case)
    assert proc.returncode == 0, proc.stderr
    assert tree_files(project) == tree_files(case / "after")  # what runs is exactly the golden output

    (project / "drive.py").write_text(_PRELUDE + DRIVERS[name] + _EPILOGUE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(project), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run([sys.executable, "-X", "dev", "drive.py"], cwd=project, capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "migrated code ran" in run.stdout
    assert "never awaited" not in run.stderr, run.stderr
    assert "MissingGreenlet" not in run.stderr, run.stderr
