"""Hostile files get a per-file error, never a hang, a crash or an unbounded allocation, in ``scan`` and in ``fix``.

The run goes on for the other files (``good.py``'s finding is still reported).  Memory is bounded by the
per-file budgets (``max-file-size``, ``runner.MAX_FILE_TOKENS``): the commands run under an address-space
limit of 3 GiB, which parsing the million-function file alone would exceed (it takes ~3 GiB of RSS).
Times and peaks are measured by ``bench/hostile.py``, not asserted here.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.hostile import HOSTILE, build

LIMIT = 3 << 30

EXPECTED = {
    "deep": ("hostile.py", "syntax", "too many nested parentheses"),
    "single-line": ("hostile.py", "too-large", "over max-file-size"),
    "functions": ("hostile.py", "too-large", "punctuation tokens, over the per-file budget"),
    "farm": ("hostile.py", "read", "symlink to a file outside the scanned directory"),
}


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asyncmigrate", *args, "--no-cache"], cwd=cwd,
                          capture_output=True, text=True, timeout=900, preexec_fn=_limited)


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    return {name: build(base / name, name) for name in HOSTILE}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_scan_reports_the_file_and_goes_on(trees, name: str) -> None:
    proc = _run(["scan", ".", "--format", "json", "-j", "1"], trees[name])
    assert proc.returncode == 3, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    path, kind, words = EXPECTED[name]
    assert [(e["path"], e["kind"]) for e in report["errors"]] == [(path, kind)]
    assert words in report["errors"][0]["message"]
    assert ("good.py", "ASM130") in {(f["path"], f["code"]) for f in report["findings"]}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_fix_reports_the_file_and_goes_on(trees, name: str) -> None:
    proc = _run(["fix", ".", "--diff"], trees[name])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 3, proc.stderr[-2000:]
    path, _, words = EXPECTED[name]
    assert f"{path}: " in proc.stderr and words in proc.stderr
    assert "+    await asyncio.sleep(1)" in proc.stdout and "+    await db.commit()" in proc.stdout  # good.py is fixed
