"""The soundness invariant (``asyncmigrate/soundness.py``) catches each failure class even when a rewrite has a bug.

``fix`` rewrites ``fixtures/soundness/base`` (with ``_common``) correctly: the invariant holds.  Each case then
*plants* one class of issue 9 into that correct rewrite, by editing the rewritten text the way a buggy rewrite
would (an ``await`` removed or added, a now-async function called from code that cannot await it, an import
that does not resolve...), and the invariant must reject it with the right kind of violation, at the right file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asyncmigrate.config import Config
from asyncmigrate.fix import run_fix
from asyncmigrate.soundness import check
from tests.helpers import analyse

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "soundness"


def _texts(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.py"))}


@pytest.fixture(scope="module")
def rewrite(tmp_path_factory) -> tuple[dict[str, str], dict[str, str]]:
    """(original files, files as ``fix`` rewrites them) of the base fixture."""
    root = tmp_path_factory.mktemp("soundness") / "base"
    shutil.copytree(FIXTURES / "_common", root)
    shutil.copytree(FIXTURES / "base", root, dirs_exist_ok=True)
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = run_fix(["."], Config(root=str(root)), root=root, use_cache=False, jobs=1)
    finally:
        os.chdir(cwd)
    assert not result.rejected and not result.left, (result.rejected, result.left)
    before = _texts(root)
    after = dict(before)
    for change in result.changes:
        after[change.path] = change.new.decode("utf-8")
    assert after["app/crud.py"] != before["app/crud.py"] and after["app/routes.py"] != before["app/routes.py"]
    return before, after


def _violations(before: dict[str, str], after: dict[str, str]):
    changes = {p: (before.get(p, "").encode(), after[p].encode()) for p in after if after[p] != before.get(p)}
    return check(analyse(before), analyse(after), changes)


def test_the_correct_rewrite_passes(rewrite) -> None:
    before, after = rewrite
    assert _violations(before, after) == []


def _replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


def _append(code: str):
    return lambda text: text + code


RENAME = "async def rename(\n    item_id: int, name: str, db: AsyncSession = Depends(get_async_db)\n):"


def _sync_rename(text: str) -> str:
    """``rename`` handed the sync session again; the rewrite removed the sync imports it no longer used, so the
    planted edit brings them back."""
    text = _replace(RENAME, RENAME.replace("AsyncSession = Depends(get_async_db)", "Session = Depends(get_db)"))(text)
    return "from sqlalchemy.orm import Session\nfrom app.database import get_db\n" + text


PLANTS = [
    # class 3/4: an await is missing, or one is added on a sync method
    ("unawaited-commit", "app/crud.py", _replace("await db.commit()", "db.commit()"), "post-migration", "ASM201"),
    ("awaited-add", "app/crud.py", _replace("db.add(item)", "await db.add(item)"), "post-migration", "ASM202"),
    ("awaited-plain-def", "app/crud.py", _replace("Item(name=slug(name))", "Item(name=await slug(name))"),
     "await-sync", "`slug` is a plain def"),
    # class 4: a session that stays sync is awaited and handed to converted code
    ("sync-session-awaited", "app/routes.py", _sync_rename, "await-sync", "is a sync Session"),
    ("sync-session-to-converted", "app/routes.py", _sync_rename, "session-mismatch",
     "is given a sync Session for `db`, which is an AsyncSession in `get_item`"),
    # class 3: sync-only code left on the AsyncSession
    ("query-left", "app/crud.py", _replace("(await db.execute(select(Item))).scalars().all()", "db.query(Item).all()"),
     "async-session-sync-use", "`db.query()` does not exist on the AsyncSession"),
    ("string-sql", "app/crud.py", _replace("    return (await db.execute(select(Item)))",
                                           "    await db.execute(\"SELECT 1\")\n    return (await db.execute(select(Item)))"),
     "async-session-sync-use", "plain-string SQL"),
    # class 2: a coroutine function called where nothing awaits it
    ("module-level-call", "app/crud.py", _append("\n\ncreate_item(None, 'boot')\n"), "coroutine-unawaited",
     "at import time"),
    ("plain-def-caller", "app/crud.py", _append("\n\ndef sync_name(db):\n    item = create_item(db, 'x')\n    return item\n"),
     "coroutine-unawaited", "from `sync_name`, a plain def"),
    ("dropped-in-async", "app/routes.py", _replace("    item.name = name\n", "    item.name = name\n    crud.list_items(db)\n"),
     "coroutine-unawaited", "whose result is dropped"),
    ("super-unawaited", "app/crud.py", _append(
        "\n\nclass Base:\n    async def save(self, db):\n        await db.commit()\n\n\n"
        "class Child(Base):\n    def save(self, db):\n        super().save(db)\n"), "coroutine-unawaited", "`super().save()` is a "
     "coroutine function, called without await"),
    # class 17: a receiver whose type is not inferred may be a converted class
    ("unknown-receiver", "app/crud.py", _append(
        "\n\nclass Store:\n    async def remove(self, db):\n        await db.commit()\n\n\n"
        "async def drop(conf, db: AsyncSession):\n    conf.remove(db)\n"), "unknown-receiver", "`conf.remove()`"),
    ("generic-base", "app/crud.py", _append(
        "\n\nclass Fetcher:\n    def fetch(self, db):\n        return db.query(Item).all()\n\n\n"
        "class Typed(Fetcher[int]):\n    pass\n\n\nrepo = Typed()\n\n\n"
        "async def use_typed(db: AsyncSession):\n    return repo.fetch(db)\n"), "async-session-sync-use",
     "`db.query()` does not exist on the AsyncSession"),
    # class 15: what a coroutine returns entered with a plain ``with``
    ("with-await", "app/crud.py", _append(
        "\n\nasync def make_session(db):\n    return db\n\n\nasync def use_it(db):\n"
        "    with await make_session(db) as s:\n        await s.commit()\n"), "async-session-sync-use", "with await"),
    # class 16: a def route that does blocking work made async
    ("blocking-route-made-async", "app/routes.py", _replace("def export():", "async def export():"), "blocks-loop",
     "ASM3"),
    # class 1: imports the rewrite adds that do not resolve
    ("import-wrong-root", "app/routes.py", lambda t: "from database import get_async_db\n" + t, "import",
     "wrong package root"),
    ("import-relative-missing", "app/routes.py", lambda t: "from .db import get_async_db\n" + t, "import",
     "`app.db`, which is not a module"),
    ("import-undefined-name", "app/routes.py", lambda t: "from .database import get_async_session\n" + t, "import",
     "names `get_async_session`, which `app.database` does not define"),
    ("import-beyond-top", "app/routes.py", lambda t: "from ...database import get_async_db\n" + t, "import",
     "beyond the top-level package"),
]


@pytest.mark.parametrize(("path", "edit", "kind", "words"), [p[1:] for p in PLANTS], ids=[p[0] for p in PLANTS])
def test_a_planted_class_is_rejected(rewrite, path: str, edit, kind: str, words: str) -> None:
    before, after = rewrite
    planted = {**after, path: edit(after[path])}

    found = _violations(before, planted)

    assert any(v.kind == kind and v.path == path and words in v.message for v in found), \
        "\n".join(f"{v.kind}: {v}" for v in found) or "no violation"


def test_a_test_calling_converted_code_is_rejected(rewrite) -> None:
    """A plain ``def`` test that calls a function the rewrite makes async (the test itself is unchanged)."""
    before, after = rewrite
    test = "from app import crud\n\n\ndef test_create(db):\n    assert crud.create_item(db, 'x').name == 'x'\n"

    found = _violations({**before, "tests/test_crud.py": test}, {**after, "tests/test_crud.py": test})

    assert [(v.kind, v.path, v.causes) for v in found] == [("coroutine-unawaited", "tests/test_crud.py",
                                                            ("app.crud:create_item",))]
    assert "from test `test_create`" in found[0].message


def test_pre_existing_problems_are_not_blamed_on_the_rewrite(rewrite) -> None:
    """The same unawaited call in the original and in the rewrite (an already-async project's bug) is not new."""
    before, after = rewrite
    legacy = "async def ping():\n    pass\n\n\ndef boot():\n    ping()\n"

    assert _violations({**before, "app/legacy.py": legacy}, {**after, "app/legacy.py": legacy}) == []


def test_imports_resolve_under_another_package_root(rewrite) -> None:
    """The project analysed from a parent directory (modules ``backend.app.*``, imports ``app.*``): the correct
    rewrite's imports still resolve, and one spelled from the wrong root is still rejected."""
    before, after = rewrite
    moved_before = {f"backend/{p}": t for p, t in before.items()}
    moved_after = {f"backend/{p}": t for p, t in after.items()}

    assert _violations(moved_before, moved_after) == []
    planted = {**moved_after, "backend/app/routes.py": "from database import get_async_db\n" + moved_after["backend/app/routes.py"]}
    assert [v.kind for v in _violations(moved_before, planted)] == ["import"]


def test_a_rewritten_suppressed_line_is_rejected(rewrite) -> None:
    """A line the original suppresses (``# asyncmigrate: ignore[...] reason``) that the rewrite changes."""
    before, after = rewrite
    note = "  # asyncmigrate: ignore[ASM120] committed by the nightly job"
    old = {**before, "app/crud.py": before["app/crud.py"].replace("    db.commit()\n", f"    db.commit(){note}\n", 1)}
    new = {**after, "app/crud.py": after["app/crud.py"].replace("    await db.commit()\n", f"    await db.commit(){note}\n", 1)}

    found = _violations(old, new)

    assert [(v.kind, v.path, v.causes) for v in found] == [("suppressed", "app/crud.py", ("app.crud:create_item",))]
