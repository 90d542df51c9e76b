"""``fix`` never writes a broken project, and one bad component does not block the rest (issue 9, class 18).

Each tree in ``fixtures/soundness/<case>`` (with ``_common``: the database module, a model and ``healthy.py``,
a route that migrates cleanly) holds one failure class of issue 9 in our own code.  ``fix --write`` must:
leave the component that would break on the sync session (its files byte-identical), report it as left for
a human with the root cause (also with ``-q``), still migrate ``healthy.py``, exit 0, and write a project
that passes the soundness invariant (``result.violations`` is empty when nothing is rejected).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from asyncmigrate.cli import main
from asyncmigrate.config import Config
from asyncmigrate.fix import run_fix

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "soundness"

#: case -> (files that stay byte-identical, where the cause is reported, words of the cause)
CASES = {
    "module_level_call": (["app/main.py"], "app/main.py:24", "`seed()` is a coroutine function, called without await "
                                                              "at import time"),
    "unknown_receiver": (["app/config.py", "app/routes.py"], "app/routes.py:13", "`conf.remove()` is not awaited"),
    "query_in_classmethod": (["app/lookup.py"], "app/lookup.py:18", "`db.query()` does not exist on the AsyncSession"),
    "suppressed_line": (["app/nightly.py"], "app/nightly.py:12", "line 12 is suppressed (`# asyncmigrate: "
                                                                  "ignore[ASM120]`) and fix does not change it"),
    "test_calls_converted": (["app/crud.py", "app/routes.py", "tests/test_crud.py"], "tests/test_crud.py:7",
                             "called without await from test `test_create_item`"),
    # the tests' override opens its session from a factory built in the fixture: no async twin reaches that
    # database, so a route converted to get_async_db would leave it (Lootmann, fastapi-do-zero)
    "untwinned_override": (["app/reporting.py", "tests/conftest.py"], "tests/conftest.py:28",
                           "the tests override get_report_db here with a session that gets no async twin"),
}


def _tree(tmp_path: Path, case: str) -> Path:
    root = tmp_path / case
    shutil.copytree(FIXTURES / "_common", root)
    shutil.copytree(FIXTURES / case, root, dirs_exist_ok=True)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.py"))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_broken_component_stays_sync_and_the_rest_migrates(tmp_path: Path, monkeypatch, case: str) -> None:
    unchanged, where, cause = CASES[case]
    root = _tree(tmp_path, case)
    before = _snapshot(root)
    monkeypatch.chdir(root)

    proc = CliRunner().invoke(main, ["fix", ".", "--write", "--no-cache", "-q"])

    assert proc.exit_code == 0, proc.output
    after = _snapshot(root)
    for path in unchanged:
        assert after[path] == before[path], f"{path} was rewritten:\n{after[path].decode()}"
    assert b"await db.commit()" in after["app/healthy.py"]
    reported = [line.strip() for line in proc.stderr.splitlines() if line.strip().startswith(where + ":")]
    assert any(cause in line and "left on the sync session" in line for line in reported), proc.stderr
    # what was written passes the invariant: a second run finds nothing to leave out and writes nothing new
    again = run_fix(["."], Config(root=str(root)), root=root, use_cache=False, jobs=1)
    assert not again.rejected and not again.violations, (again.rejected, again.violations)


#: classes the rewrite now handles itself (the planted tests show the check still catches them when it does not):
#: case -> (file, what the migrated file must contain)
MIGRATED = {
    # the analysis follows subscripted generic instances and super() now (issue 12): these convert whole
    "generic_instance": ("app/routes.py", b"await crud.item.remove(db, item_id)"),
    "super_call": ("app/repos.py", b"await super().save(db, obj)"),
    "string_sql": ("app/health.py", b'await db.execute(text("SELECT 1"))'),
    "session_factory_function": ("app/jobs.py", b"async with new_session() as s:"),
}


@pytest.mark.parametrize("case", sorted(MIGRATED))
def test_classes_the_rewrite_handles_migrate_soundly(tmp_path: Path, monkeypatch, case: str) -> None:
    path, expected = MIGRATED[case]
    root = _tree(tmp_path, case)
    monkeypatch.chdir(root)
    proc = CliRunner().invoke(main, ["fix", ".", "--write", "--no-cache", "-q"])
    assert proc.exit_code == 0, proc.output
    assert expected in (root / path).read_bytes()
    assert "left on the sync session" not in proc.stderr, proc.stderr
    again = run_fix(["."], Config(root=str(root)), root=root, use_cache=False, jobs=1)
    assert not again.rejected and not again.violations and not again.changes, (again.rejected, again.violations)


def test_a_violation_no_function_causes_rejects_the_migration(tmp_path: Path, monkeypatch) -> None:
    """When leaving components out cannot make the rewrite sound (here: a buggy rewrite adds an unresolvable import
    to the database module, which holds no converted function), nothing is written and ``--write`` exits 3, with the
    cause listed even with ``-q``."""
    import asyncmigrate.fix as fix_module
    from asyncmigrate.codemods.engine_to_async import EngineToAsync

    class _BadImport(EngineToAsync):
        def leave_Module(self, original_node, updated_node):
            updated_node = super().leave_Module(original_node, updated_node)
            if (self.context.filename or "").endswith("database.py"):
                import libcst as cst

                # used, so that the last step (unused imports the rewrite added go) keeps it
                return updated_node.with_changes(body=[cst.parse_statement("from .engines import make\n"),
                                                       cst.parse_statement("_planted = make\n"),
                                                       *updated_node.body])
            return updated_node

    root = _tree(tmp_path, "string_sql")
    before = _snapshot(root)
    monkeypatch.setattr(fix_module, "PIPELINE", tuple(_BadImport if c is EngineToAsync else c for c in fix_module.PIPELINE))
    monkeypatch.chdir(root)

    proc = CliRunner().invoke(main, ["fix", ".", "--write", "--no-cache", "-q"])

    assert proc.exit_code == 3, proc.output
    assert _snapshot(root) == before
    assert "--write writes nothing" in proc.stderr
    assert any("app/database.py" in line and "`from .engines import make`" in line for line in proc.stderr.splitlines()), \
        proc.stderr


def test_the_root_cause_is_named_not_the_symptom(tmp_path: Path, monkeypatch) -> None:
    """Class 18: ``create_engine(**options)`` gets no async twin, so code that would use ``AsyncSessionLocal`` /
    ``get_async_db`` stays sync (it used to reject the whole migration with "would import AsyncSessionLocal from
    app.database, which does not define it"); the report says why the twin is missing."""
    root = _tree(tmp_path, "engine_without_url")
    before = _snapshot(root)
    monkeypatch.chdir(root)

    proc = CliRunner().invoke(main, ["fix", ".", "--write", "--no-cache", "-q"])

    assert proc.exit_code == 0, proc.output
    assert _snapshot(root)["app/other.py"] == before["app/other.py"]
    assert _snapshot(root)["app/healthy.py"] == before["app/healthy.py"]
    for where in ("app/other.py:", "app/healthy.py:"):
        line = next(line for line in proc.stderr.splitlines() if line.strip().startswith(where))
        assert "create_engine() for engine has no URL argument" in line and "left on the sync session" in line, line
