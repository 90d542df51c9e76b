"""Opt-in: ``asyncmigrate scan`` over each real backend of shared/CORPUS.md.

Set ``ASYNCMIGRATE_CORPUS`` to the folder that holds the repositories (one directory each,
exported at the commits CORPUS.md pins, outside the project); without it every test here is
skipped.  Each repository is scanned as a user would (its own ``.gitignore`` files apply):
no traceback, exit 0/1/3, every file that is not analysed is reported with a reason, and a
file reported as unparsable really does not parse on this interpreter.
"""

from __future__ import annotations

import ast
import os
import warnings
from pathlib import Path

import pytest

from .helpers import cli

CORPUS = os.environ.get("ASYNCMIGRATE_CORPUS")
REPOS = sorted(p for p in Path(CORPUS).iterdir() if p.is_dir() and not p.name.startswith(".")) \
    if CORPUS and Path(CORPUS).is_dir() else []

pytestmark = pytest.mark.skipif(
    not REPOS, reason="set ASYNCMIGRATE_CORPUS to a folder of the shared/CORPUS.md repositories to run these")

KINDS = {"syntax", "decode", "read", "internal", "too-large"}


def _parses(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, UnicodeDecodeError):
            return False
    return True


@pytest.mark.parametrize("repo", REPOS or [None], ids=[p.name for p in REPOS] or ["no-corpus"])
def test_scan_repository(repo: Path, tmp_path: Path) -> None:
    run = cli(["scan", "--format", "json", "-q", "--no-cache", str(repo)], tmp_path, timeout=1800)
    assert run.returncode in (0, 1, 3), run.stderr[-3000:]
    doc = run.json()
    assert run.returncode == (3 if doc["errors"] else 1 if doc["findings"] else 0)
    assert doc["files_scanned"] > 0
    for e in doc["errors"]:
        assert e["kind"] in KINDS and e["message"], e
        assert e["kind"] != "internal", e  # a crash of ours, even if reported per file
        if e["kind"] in ("syntax", "decode"):
            assert not _parses(Path(e["path"])), e
    assert doc["counts"]["total"]["total"] == len(doc["findings"])
