"""Counts per file, per category and per severity: one computation for every reporter."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from ..model import BLOCKS_LOOP, DEBT, Finding
from ..rules.base import CATEGORIES


def _cell(c: Counter) -> dict:
    return {BLOCKS_LOOP: c[BLOCKS_LOOP], DEBT: c[DEBT], "total": c[BLOCKS_LOOP] + c[DEBT]}


def counts(findings: Iterable[Finding]) -> dict:
    by_file: dict[str, dict[str, Counter]] = {}
    by_category: dict[str, Counter] = {}
    total: Counter = Counter()
    name_only = 0
    for f in findings:
        name_only += f.evidence == "name-only"
        by_file.setdefault(f.path, {}).setdefault(f.category, Counter())[f.severity] += 1
        by_category.setdefault(f.category, Counter())[f.severity] += 1
        total[f.severity] += 1
    order = {c: i for i, c in enumerate(CATEGORIES)}
    files_out = {}
    for path in sorted(by_file):
        cats = by_file[path]
        file_total: Counter = Counter()
        for c in cats.values():
            file_total.update(c)
        files_out[path] = {
            "categories": {k: _cell(cats[k]) for k in sorted(cats, key=lambda k: order.get(k, 99))},
            **_cell(file_total),
        }
    return {
        "files": files_out,
        "categories": {k: _cell(by_category[k]) for k in sorted(by_category, key=lambda k: order.get(k, 99))},
        "total": _cell(total),
        # how many findings rest on a receiver's name alone (evidence ``name-only``): the share provenance misses
        "name_only": name_only,
    }


def statistics(findings: Iterable[Finding]) -> list[dict]:
    """``--statistics``: one row per rule code, most frequent first (ties by code), as Ruff prints them, with how
    many of the rule's findings rest on a receiver's name alone (evidence ``name-only``)."""
    rows: dict[str, dict] = {}
    for f in findings:
        row = rows.setdefault(f.code, {"code": f.code, "name": f.name, "count": 0, BLOCKS_LOOP: 0, DEBT: 0,
                                       "name_only": 0})
        row["count"] += 1
        row[f.severity] += 1
        row["name_only"] += f.evidence == "name-only"
    return sorted(rows.values(), key=lambda r: (-r["count"], r["code"]))


def statistics_text(findings: Iterable[Finding]) -> str:
    rows = statistics(findings)
    if not rows:
        return "no findings"
    width = max(len(str(r["count"])) for r in rows)
    name_width = max(len(r["name"]) for r in rows)
    return "\n".join(f"{r['count']:>{width}}  {r['code']}  {r['name']:<{name_width}}  "
                     f"{r[BLOCKS_LOOP]} blocks-loop, {r[DEBT]} debt, {r['name_only']} name-only" for r in rows)


def statistics_json(findings: Iterable[Finding]) -> str:
    import json

    return json.dumps([{"code": r["code"], "name": r["name"], "count": r["count"], "blocks_loop": r[BLOCKS_LOOP],
                        "debt": r[DEBT], "name_only": r["name_only"]} for r in statistics(findings)], indent=2)
