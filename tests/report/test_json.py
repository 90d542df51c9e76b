"""The JSON report is a contract: its keys, their types, and counts that agree with the findings."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from asyncmigrate import __version__
from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from asyncmigrate.model import BLOCKS_LOOP, DEBT, FileError, ScanResult
from asyncmigrate.report.json import JSON_VERSION, render
from asyncmigrate.rules.base import CATEGORIES, all_rules

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fixtures" / "example_backend"

FINDING_KEYS = {
    "path": str, "line": int, "column": int, "end_line": int, "end_column": int, "code": str, "name": str,
    "category": str, "severity": str, "message": str, "scope": str, "chain": list, "evidence": str,
    "fingerprint": str,
}
ERROR_KEYS = {"path": str, "kind": str, "message": str, "line": int, "column": int}
CELL_KEYS = {BLOCKS_LOOP, DEBT, "total"}


@pytest.fixture(scope="module")
def example() -> tuple[ScanResult, dict]:
    mp = pytest.MonkeyPatch()
    mp.chdir(EXAMPLE)
    try:
        res = analyse_paths(["."], Config(root=str(EXAMPLE)), use_cache=False).result
    finally:
        mp.undo()
    return res, json.loads(render(res))


def test_top_level_keys(example):
    res, doc = example
    assert set(doc) == {"version", "tool", "findings", "errors", "counts", "files_scanned", "suppressed"}
    assert doc["version"] == JSON_VERSION == 1
    assert doc["tool"] == {"name": "asyncmigrate", "version": __version__}
    assert doc["files_scanned"] == len(res.files)
    assert doc["suppressed"] == len(res.suppressed)


def test_finding_keys_and_types(example):
    res, doc = example
    assert len(doc["findings"]) == len(res.findings) > 20
    rules = all_rules()
    for f, d in zip(res.findings, doc["findings"]):
        assert set(d) == set(FINDING_KEYS)
        for key, typ in FINDING_KEYS.items():
            assert isinstance(d[key], typ), (key, d[key])
        assert d["severity"] in (BLOCKS_LOOP, DEBT)
        assert d["code"] in rules and d["name"] == rules[d["code"]].name
        assert d["category"] == rules[d["code"]].category in CATEGORIES
        assert all(isinstance(c, str) for c in d["chain"])
        assert re.fullmatch(r"[0-9a-f]{20}", d["fingerprint"])
        assert d["line"] >= 1 and d["column"] >= 1
        assert (d["end_line"], d["end_column"]) >= (d["line"], d["column"])
        assert (d["path"], d["line"], d["column"], d["code"], d["fingerprint"]) == (
            f.path, f.span.line, f.span.column, f.code, f.fingerprint)
        if d["severity"] == DEBT:
            # empty, or the way into a worker thread: caller → runner → function (analysis/bridges.py)
            assert d["chain"] == [] or len(d["chain"]) >= 3
    threaded = [d["chain"] for d in doc["findings"] if d["severity"] == DEBT and d["chain"]]
    assert threaded and all("BackgroundTasks.add_task" in c for c in threaded)


def test_counts_agree_with_findings(example):
    _, doc = example
    found = doc["findings"]
    counts = doc["counts"]
    assert set(counts) == {"files", "categories", "total", "name_only"}
    assert counts["name_only"] == sum(f["evidence"] == "name-only" for f in found)
    total = counts["total"]
    assert set(total) == CELL_KEYS
    assert total["total"] == len(found) == total[BLOCKS_LOOP] + total[DEBT]
    assert total[BLOCKS_LOOP] == sum(f["severity"] == BLOCKS_LOOP for f in found)

    per_file = Counter((f["path"], f["severity"]) for f in found)
    assert set(counts["files"]) == {f["path"] for f in found}
    for path, row in counts["files"].items():
        assert row[BLOCKS_LOOP] == per_file[(path, BLOCKS_LOOP)]
        assert row[DEBT] == per_file[(path, DEBT)]
        assert row["total"] == row[BLOCKS_LOOP] + row[DEBT]
        assert sum(c["total"] for c in row["categories"].values()) == row["total"]
        for cell in row["categories"].values():
            assert set(cell) == CELL_KEYS and cell["total"] == cell[BLOCKS_LOOP] + cell[DEBT]

    per_cat = Counter((f["category"], f["severity"]) for f in found)
    assert set(counts["categories"]) == {f["category"] for f in found}
    for cat, cell in counts["categories"].items():
        assert cell[BLOCKS_LOOP] == per_cat[(cat, BLOCKS_LOOP)] and cell[DEBT] == per_cat[(cat, DEBT)]
    assert sum(c["total"] for c in counts["categories"].values()) == total["total"]
    # categories are listed in the registry's order
    order = [c for c in CATEGORIES if c in counts["categories"]]
    assert list(counts["categories"]) == order


def test_errors_and_extra_keys():
    res = ScanResult(errors=[FileError("app/bad.py", "syntax", "syntax error: invalid syntax", 2, 5)])
    doc = json.loads(render(res, {"new": [], "baseline": {"new": 0}}))
    assert doc["findings"] == []
    assert doc["errors"] == [{"path": "app/bad.py", "kind": "syntax", "message": "syntax error: invalid syntax",
                              "line": 2, "column": 5}]
    for e in doc["errors"]:
        assert set(e) == set(ERROR_KEYS) and all(isinstance(e[k], t) for k, t in ERROR_KEYS.items())
    assert doc["counts"]["total"] == {BLOCKS_LOOP: 0, DEBT: 0, "total": 0}
    assert doc["new"] == [] and doc["baseline"] == {"new": 0}


def test_output_is_utf8_not_escaped(tmp_path, monkeypatch):
    (tmp_path / "ünï.py").write_text("import time\n\nasync def f():\n    time.sleep(1)\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    res = analyse_paths(["."], Config(root=str(tmp_path)), use_cache=False).result
    text = render(res)
    assert '"path": "ünï.py"' in text
    assert json.loads(text)["findings"][0]["code"] == "ASM130"
