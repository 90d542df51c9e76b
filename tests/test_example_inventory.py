"""`scan` on the example backend matches the inventory counted by hand, exactly.

The inventory was counted by reading the code (fixtures/example_backend/EXPECTED_INVENTORY.md,
with the reasoning for every severity).  This test holds two hand-written records of it:
the per-file table below, and the per-line list in the markdown file.  Both must match.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from asyncmigrate.cli import main

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "fixtures" / "example_backend"

# file -> category -> (blocks-loop, debt); files absent here have no findings
EXPECTED = {
    "app/database.py": {"engine": (0, 2), "session-factory": (0, 1), "session-method": (0, 1)},
    "app/dependencies.py": {"query": (0, 1), "session-dependency": (0, 1)},
    "app/main.py": {"engine": (1, 0)},
    "app/routers/health.py": {"session-dependency": (1, 0), "session-method": (1, 0)},
    "app/routers/orders.py": {"query": (0, 2), "session-dependency": (5, 1)},
    "app/routers/products.py": {"query": (7, 0), "session-dependency": (6, 3), "session-method": (12, 2)},
    "app/routers/reports.py": {"session-dependency": (4, 1)},
    "app/routers/sync.py": {"query": (4, 0), "session-dependency": (4, 0), "session-method": (4, 0)},
    "app/routers/users.py": {"session-dependency": (8, 1), "session-method": (1, 0)},
    "app/services/data_sync.py": {"query": (4, 0), "session-dependency": (2, 0), "session-method": (11, 0), "sleep": (2, 0)},
    "app/services/inventory_service.py": {"query": (0, 3), "session-dependency": (2, 3), "session-method": (2, 2)},
    "app/services/order_service.py": {"query": (6, 0), "session-dependency": (5, 0), "session-method": (11, 0)},
    "app/services/report_service.py": {"blocking-io": (1, 0), "query": (7, 0), "session-dependency": (2, 0)},
    "app/services/user_service.py": {"query": (5, 0), "session-dependency": (1, 0), "session-method": (7, 2)},
    "app/tasks.py": {"query": (1, 1), "session-factory": (2, 1), "session-method": (1, 1)},
    "scripts/sync_all.py": {"blocking-io": (0, 1), "engine": (0, 1), "session-factory": (0, 1), "session-method": (0, 5)},
}


def _scan() -> list[dict]:
    result = CliRunner().invoke(main, ["scan", str(BACKEND / "app"), str(BACKEND / "scripts"), "--format", "json",
                                       "--no-cache", "-q"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    assert doc["errors"] == []
    prefix = str(BACKEND) + "/"
    for f in doc["findings"]:
        f["path"] = f["path"].split("example_backend/", 1)[-1] if "example_backend/" in f["path"] else \
            f["path"].replace(prefix, "")
    return doc["findings"]


def test_counts_per_file_category_and_severity():
    got: dict[str, dict[str, list[int]]] = {}
    for f in _scan():
        cell = got.setdefault(f["path"], {}).setdefault(f["category"], [0, 0])
        cell[0 if f["severity"] == "blocks-loop" else 1] += 1
    got_t = {path: {c: tuple(v) for c, v in cats.items()} for path, cats in got.items()}
    assert got_t == EXPECTED


def test_every_finding_line_matches_the_hand_inventory():
    expected = Counter()
    current = None
    for line in (BACKEND / "EXPECTED_INVENTORY.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"### (\S+\.py)", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"\|\s*(\d+)\s*\|\s*([a-z-]+)\s*\|\s*([a-z-]+)(?: \(import\))?\s*\|", line)
        if m and current:
            expected[(current, int(m.group(1)), m.group(2), m.group(3))] += 1
    got = Counter((f["path"], f["line"], f["category"], f["severity"]) for f in _scan())
    assert sum(expected.values()) == 167
    assert got == expected


def test_totals_match_the_hand_count():
    total = Counter(f["severity"] for f in _scan())
    assert total == {"blocks-loop": 130, "debt": 37}
