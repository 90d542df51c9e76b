"""GitHub Actions workflow commands: one per finding and per skipped file, escaped as the runner expects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from asyncmigrate.model import BLOCKS_LOOP, DEBT, FileError, Finding, ScanResult, Span
from asyncmigrate.report import github

ROUTES = '''\
from fastapi import FastAPI, Depends
from sqlalchemy.orm import Session

app = FastAPI()


@app.get("/a")
async def a(db: Session = Depends(get_db)):
    return db.query(User).all()


@app.get("/b")
def b(db: Session = Depends(get_db)):
    return db.query(User).all()
'''

_COMMAND = re.compile(r"^::(?P<kind>[a-z]+)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


def unescape(s: str) -> str:
    # the runner's order (actions/runner ActionCommand.Unescape): %0D, %0A, %3A, %2C, then %25
    for code, ch in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        s = s.replace(code, ch)
    return s


def parse(line: str) -> tuple[str, dict[str, str], str]:
    """Split a workflow command the way the runner does: properties at ',' then '=', message after '::'."""
    m = _COMMAND.match(line)
    assert m, line
    props = {}
    for item in filter(None, (m["props"] or "").split(",")):
        key, _, value = item.partition("=")
        props[key] = unescape(value)
    return m["kind"], props, unescape(m["message"])


def _finding(severity=BLOCKS_LOOP, path="app/main.py", message="`db.query()` runs", chain=()) -> Finding:
    return Finding(path=path, span=Span(9, 12, 9, 26), code="ASM110", category="query", severity=severity,
                   message=message, scope="f", chain=chain, snippet="db.query(User)", fingerprint="f" * 20,
                   name="legacy-query")


def test_blocks_loop_is_error_and_debt_is_warning():
    out = github.render(ScanResult(findings=[_finding(BLOCKS_LOOP), _finding(DEBT)], files=["app/main.py"]))
    lines = out.splitlines()
    assert lines[0] == ("::error file=app/main.py,line=9,col=12,endLine=9,endColumn=26,"
                        "title=ASM110 legacy-query::`db.query()` runs")
    assert lines[1].startswith("::warning file=app/main.py,line=9,col=12,endLine=9,endColumn=26,")
    assert lines[2].startswith("::notice title=asyncmigrate::2 findings in 1 of 1 files")
    assert len(lines) == 3


def test_escaping_of_data_and_properties():
    """``%``, CR and LF are escaped everywhere; ``:`` and ``,`` only in property values."""
    weird_path = "dir,with:colon/100%\nfile.py"
    message = "50% of a, b: c\r\nnext line"
    line = github.finding_command(_finding(path=weird_path, message=message))
    assert "\n" not in line and "\r" not in line
    assert "file=dir%2Cwith%3Acolon/100%25%0Afile.py," in line
    assert line.endswith("::50%25 of a, b: c%0D%0Anext line")
    kind, props, text = parse(line)
    assert kind == "error"
    assert props == {"file": weird_path, "line": "9", "col": "12", "endLine": "9", "endColumn": "26",
                     "title": "ASM110 legacy-query"}
    assert text == message


def test_escape_functions_match_the_toolkit():
    assert github.escape_data("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad:e,f"
    assert github.escape_property("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad%3Ae%2Cf"
    # '%' first, so an escape sequence already in the text is not read back as a character
    assert github.escape_data("%0A") == "%250A"
    assert unescape(github.escape_data("%0A")) == "%0A"


def test_chain_goes_into_the_message():
    line = github.finding_command(_finding(chain=("app.main.users", "app.main.load")))
    assert parse(line)[2] == "`db.query()` runs (on the loop via app.main.users → app.main.load)"


def test_one_error_per_skipped_file_and_a_final_notice():
    res = ScanResult(errors=[FileError("app/bad.py", "syntax", "syntax error: invalid syntax", 3, 7),
                             FileError("app/gone.py", "read", "cannot read: No such file")], files=[])
    lines = github.render(res).splitlines()
    assert len(lines) == 3
    kind, props, text = parse(lines[0])
    assert (kind, props["file"], props["line"], props["col"]) == ("error", "app/bad.py", "3", "7")
    assert props["title"] == "asyncmigrate: file not analysed (syntax)"
    assert "syntax error: invalid syntax" in text
    kind, props, _ = parse(lines[1])
    assert kind == "error" and props["file"] == "app/gone.py" and "line" not in props and "col" not in props
    kind, props, text = parse(lines[2])
    assert kind == "notice" and props == {"title": "asyncmigrate"}
    assert text.endswith("; 2 files skipped")


def test_summary_can_be_replaced():
    lines = github.render(ScanResult(), "1 new finding against baseline").splitlines()
    assert lines == ["::notice title=asyncmigrate::1 new finding against baseline"]


def test_real_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "main.py").write_text(ROUTES, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    res = analyse_paths(["."], Config(root=str(tmp_path)), use_cache=False).result
    lines = github.render(res).splitlines()
    assert len(lines) == len(res.findings) + 1
    for f, line in zip(res.findings, lines):
        kind, props, text = parse(line)
        assert kind == ("error" if f.severity == BLOCKS_LOOP else "warning")
        assert props["file"] == "main.py"
        assert (int(props["line"]), int(props["col"]), int(props["endLine"]), int(props["endColumn"])) == (
            f.span.line, f.span.column, f.span.end_line, f.span.end_column)
        assert props["title"] == f"{f.code} {f.name}"
        assert text.startswith(f.message)
    kinds = [parse(line)[0] for line in lines[:-1]]
    assert "error" in kinds and "warning" in kinds
    assert lines[-1].startswith("::notice ")
