"""The rewrite gates (``codemods.GATES``) only skip work: with and without them, ``fix`` produces the same bytes
and the same warnings.

A gate reads the plan and the file's text to decide that a rewrite has nothing to do there; a wrong gate would
silently drop a rewrite.  The fixture trees of ``fixtures/codemods`` run gated through ``test_fix_trees.py`` and
must equal their ``after/`` byte for byte, which covers them; here the example backend (the most varied project)
is planned once, then every file goes through ``transform_file`` with and without the gates, comparing code,
warnings and the rewrites named in the summary.  ``ASYNCMIGRATE_GATES_ALL=1`` adds every fixture tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asyncmigrate import codemods
from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from asyncmigrate.fix import transform_file
from asyncmigrate.migration import plan_migration
from asyncmigrate.runner import discover

REPO = Path(__file__).resolve().parents[2]
PROJECTS = [REPO / "fixtures" / "example_backend"] + (
    sorted(p for p in (REPO / "fixtures" / "codemods").glob("*/*/before") if p.is_dir())
    if os.environ.get("ASYNCMIGRATE_GATES_ALL") == "1" else [])


def _ids(path: Path) -> str:
    return "example_backend" if path.name == "example_backend" else f"{path.parent.parent.name}/{path.parent.name}"


def _files_and_plans(root: Path, monkeypatch):
    monkeypatch.chdir(root)
    config = Config(root=str(root))
    run = analyse_paths(["."], config, use_cache=False, jobs=1, need_analysis=True)
    plan = plan_migration(run.analysis, {s.path for s in discover(["."], config).sources}, config)
    for src in run.discovery.sources:
        data = Path(src.fs_path).read_bytes()
        file_plan = plan.files.get(src.path) or plan.fallback(src.path, src.module)
        yield src.path, data, file_plan


@pytest.mark.parametrize("project", PROJECTS, ids=[_ids(p) for p in PROJECTS])
def test_gates_change_no_output(project: Path, monkeypatch) -> None:
    compared = skipped = 0
    for path, data, file_plan in _files_and_plans(project, monkeypatch):
        try:
            ungated = transform_file(path, data, file_plan, codemods.PIPELINE, gate=False)
        except Exception:  # noqa: BLE001 - input fix reports as skipped; the gates are not involved
            continue
        gated = transform_file(path, data, file_plan, codemods.PIPELINE, gate=True)
        assert gated.new == ungated.new, f"{path}: the gated pipeline wrote different code"
        assert gated.warnings == ungated.warnings, f"{path}: the gated pipeline reported differently"
        assert gated.rewrites == ungated.rewrites, path
        compared += 1
        skipped += sum(not codemods.needed(cls, file_plan, data.decode("utf-8", "replace")) for cls in codemods.PIPELINE)
    assert compared, "no file compared"
    if project.name == "example_backend":
        assert skipped, "no gate ever skipped a rewrite on the example backend: the gates are not exercised"


def test_a_wrong_gate_is_caught(monkeypatch) -> None:
    """The comparison above can fail: a gate that skips the await rewrite changes the example's output."""
    root = REPO / "fixtures" / "example_backend"
    monkeypatch.setitem(codemods.GATES, codemods.AwaitSessionMethods, lambda plan, code: False)
    differs = 0
    for path, data, file_plan in _files_and_plans(root, monkeypatch):
        if path.endswith("order_service.py"):
            gated = transform_file(path, data, file_plan, codemods.PIPELINE, gate=True)
            ungated = transform_file(path, data, file_plan, codemods.PIPELINE, gate=False)
            differs += gated.new != ungated.new
    assert differs == 1
