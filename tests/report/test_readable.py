"""Output people can read (issue 11, item 6): 80-column terminals, plain-text messages everywhere."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from asyncmigrate.model import BLOCKS_LOOP, Finding, ScanResult, Span
from asyncmigrate.report import github, json as json_report, sarif, text
from asyncmigrate.report.docs import rules_json, rules_table
from asyncmigrate.rules.base import all_rules

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fixtures" / "example_backend"


@pytest.fixture(scope="module")
def example() -> ScanResult:
    return analyse_paths([str(EXAMPLE / "app")], Config(root=str(EXAMPLE)), use_cache=False).result


def rendered(result: ScanResult, width: int, **kwargs) -> str:
    buf = StringIO()
    text.render(result, Console(file=buf, width=width, no_color=True, highlight=False), **kwargs)
    return buf.getvalue()


def test_scan_table_at_80_columns_cuts_nothing(example):
    out = rendered(example, 80, show_findings=False)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    first = example.findings[0].path  # every finding is under .../example_backend/app/ (a subdirectory or two)
    prefix = first[:first.index("example_backend/app/") + len("example_backend/app/")]
    assert f"Blocking calls per file under {prefix}" in out
    cells = {line.split("│")[1].strip() for line in out.splitlines() if line.count("│") > 2}
    assert {f.path[len(prefix):] for f in example.findings} <= cells  # every path whole, in one cell
    total = len(example.findings)
    assert f"{total} findings" in out
    assert any(line.split("│")[1:2] and line.split("│")[1].strip() == "total" and str(total) in line
               for line in out.splitlines())


def test_wide_consoles_keep_the_table_per_category(example):
    out = rendered(example, 200, show_findings=False)
    assert "session methods" in out.splitlines()[2]  # a category column in the header row
    assert "Per category" not in out


def test_rules_table_at_80_columns_breaks_no_code_or_name():
    buf = StringIO()
    Console(file=buf, width=80, no_color=True).print(rules_table(all_rules(), 80))
    out = buf.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80
    for code, cls in all_rules().items():
        assert any(code in line and cls.name in line for line in out.splitlines()), (code, cls.name)


FINDING = Finding(path="app/x.py", span=Span(3, 5, 3, 20), code="ASM110", category="query", severity=BLOCKS_LOOP,
                  message="``db.query()`` runs a sync query", scope="load", chain=("app.x.route", "app.x.load"),
                  name="legacy-query")


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_messages_are_plain_text_in_every_format(fmt):
    result = ScanResult(findings=[FINDING], files=["app/x.py"])
    if fmt == "text":
        out = rendered(result, 200)
    elif fmt == "sarif":  # the results' text (each rule's help.markdown is Markdown, where ``x`` is code)
        run = json.loads(sarif.render(result))["runs"][0]
        rules = [{k: v for k, v in r.items() if k != "help"} | {"help": r["help"]["text"]}
                 for r in run["tool"]["driver"]["rules"]]
        out = json.dumps([run["results"], rules], ensure_ascii=False)
    else:
        out = {"json": json_report, "sarif": sarif, "github": github}[fmt].render(result)
    assert "``" not in out
    assert "`db.query()` runs a sync query" in out


def test_check_text_report_is_plain_text():
    from asyncmigrate.baseline import _text_report

    assert "``" not in _text_report(ScanResult(findings=[FINDING]), [])


def test_rule_summaries_are_plain_text_in_rules_output():
    doc = json.loads(rules_json(all_rules()))
    assert not [r["code"] for r in doc if "``" in r["summary"] or "``" in r["explanation"]]
    buf = StringIO()
    Console(file=buf, width=200, no_color=True).print(rules_table(all_rules()))
    assert "``" not in buf.getvalue()


@pytest.mark.parametrize("columns, widest", [("80", 80), (None, 200), ("not-a-number", 200)])
def test_piped_output_takes_its_width_from_columns(columns, widest, monkeypatch):
    """Piped, the table is 200 columns wide so logs never wrap; ``COLUMNS`` (as a terminal would set it)
    narrows it, so ``COLUMNS=80 asyncmigrate scan app | less`` reads at 80 columns too."""
    from click.testing import CliRunner

    from asyncmigrate.cli import main

    env = {"COLUMNS": columns} if columns else {}
    if not columns:
        monkeypatch.delenv("COLUMNS", raising=False)
    out = CliRunner().invoke(main, ["scan", str(EXAMPLE / "app"), "--summary", "-q", "--no-cache"], env=env).output
    lines = out.splitlines()
    assert "…" not in out
    assert max(len(line) for line in lines) <= widest
    assert (max(len(line) for line in lines) > 80) == (widest > 80)
