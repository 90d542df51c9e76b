"""``counts.name_only``: how many findings rest on a receiver's name alone (issue 12), in JSON and in the text summary."""

from __future__ import annotations

import io
import json

from rich.console import Console

from asyncmigrate.model import ScanResult
from asyncmigrate.report import json as json_report
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
