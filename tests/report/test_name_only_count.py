"""``counts.name_only``: how many findings rest on a receiver's name alone (issue 12), in JSON and in the text summary."""

from __future__ import annotations

import io
import json

from rich.console import Console

from asyncmigrate.model import ScanResult
from asyncmigrate.report import json as json_report
from asyncmigrate.report.counts import statistics_json, statistics_text
from asyncmigrate.report import text as text_report
from tests.helpers import findings

MODELS = {"app/models.py": "from sqlalchemy.orm import DeclarativeBase, Session\n"}
BY_NAME = """
async def handler(db):
    db.query(User).all()
    db.commit()
"""
BY_ANNOTATION = """
from sqlalchemy.orm import Session


async def handler(db: Session):
    db.query(User).all()
"""


def scan(src: str) -> ScanResult:
    fs = findings({**MODELS, "app/routes.py": src})
    return ScanResult(findings=fs, files=["app/models.py", "app/routes.py"])


def test_json_counts_findings_that_rest_on_names():
    by_name, by_annotation = scan(BY_NAME), scan(BY_ANNOTATION)
    doc = json.loads(json_report.render(by_name))
    assert doc["version"] == 1
    assert doc["counts"]["name_only"] == sum(f["evidence"] == "name-only" for f in doc["findings"]) > 0
    doc = json.loads(json_report.render(by_annotation))
    assert doc["findings"] and doc["counts"]["name_only"] == 0


def test_text_summary_says_how_many_rest_on_names():
    out = io.StringIO()
    result = scan(BY_NAME)
    text_report.render(result, Console(file=out, width=200, no_color=True))
    n = sum(f.evidence == "name-only" for f in result.findings)
    assert f"{n} rest on a name only" in out.getvalue()
    out = io.StringIO()
    text_report.render(scan(BY_ANNOTATION), Console(file=out, width=200, no_color=True))
    assert "name only" not in out.getvalue().splitlines()[-1]


def test_statistics_say_how_many_rest_on_names_per_rule():
    fs = scan(BY_NAME).findings + scan(BY_ANNOTATION).findings
    rows = {r["code"]: r for r in json.loads(statistics_json(fs))}
    for code, row in rows.items():
        mine = [f for f in fs if f.code == code]
        assert row["name_only"] == sum(f.evidence == "name-only" for f in mine)
    assert rows["ASM110"]["name_only"] == 1 and rows["ASM110"]["count"] == 2  # one by name, one by annotation
    lines = {line.split()[1]: line for line in statistics_text(fs).splitlines()}
    assert lines["ASM110"].endswith("1 name-only") and lines["ASM102"].endswith("0 name-only")
