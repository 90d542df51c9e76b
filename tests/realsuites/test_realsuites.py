"""Opt-in: each project of ``manifest.toml`` passes its own tests after ``asyncmigrate fix --write`` (issue 9).

Set ``ASYNCMIGRATE_REALSUITES`` to the folder the projects are extracted in (``harness.py`` says how);
without it every test here is skipped.  One test per project: the harness runs the project's tests one
pytest process per test on a fresh database, on the original and on a copy migrated with no hand edits.
Every test that passed on the original must pass on the migrated copy, and ``fix`` must exit 0.  Run with
``-s`` for the table (tests, before, after, left for a human, blocks-loop before -> after, fix wall time).
A full run takes minutes per project.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import ENV_VAR, load_manifest, run_project, table

ROOT = os.environ.get(ENV_VAR)
COMMON, PROJECTS = load_manifest()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ROOT, reason=f"set {ENV_VAR} to the folder the REALSUITES.md projects are extracted in"),
]


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_own_suite_passes_after_fix(project) -> None:
    root = Path(ROOT or ".").resolve()
    if not (root / project.dirname / project.folder).is_dir():
        pytest.skip(f"{project.repo} is not extracted in {root}")
    report = run_project(root, project, COMMON)
    print("\n" + table(report))
    assert report.passed("before") > 0, "the original's own tests do not pass here: check the pins and env"
    assert report.fix_exit == 0, report.fix_stderr_tail
    failures = {o.test: o.tail for o in report.after if o.test in set(report.regressions())}
    assert not failures, "\n\n".join(f"{t}\n{tail}" for t, tail in failures.items())
