"""Bad input gets a clear per-file message and the run goes on.

Each case is a real tree in ``tmp_path``: ``good.py`` (one ASM130 finding) beside the bad
input.  ``asyncmigrate scan`` runs in a subprocess, in text and in JSON: no traceback, the
bad file reported with its reason (kind and message), every other finding still reported,
and the exit code: 3 when a file was skipped, else 1 (the findings).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

from .helpers import GOOD, scan, write

GOOD_FINDING = ("good.py", 5, 5, "ASM130")


@dataclass
class Expect:
    #: (displayed path, kind, a fragment of the message, line or None)
    errors: list[tuple[str, str, str, Optional[int]]] = field(default_factory=list)
    #: (displayed path, line, column, code) besides good.py's
    findings: list[tuple[str, int, int, str]] = field(default_factory=list)
    exit: int = 1
    paths: tuple = (".",)
    prelude: Optional[str] = None
    #: how many findings in all (None: not checked)
    total: Optional[int] = None


Builder = Callable[[Path], Expect]
CASES: dict[str, Builder] = {}


def case(fn: Builder) -> Builder:
    CASES[fn.__name__] = fn
    return fn


@case
def syntax_error(d: Path) -> Expect:
    write(d / "bad.py", b"def f(:\n    pass\n")
    return Expect(errors=[("bad.py", "syntax", "syntax error: invalid syntax", 1)], exit=3)


@case
def latin1_with_coding_cookie(d: Path) -> Expect:
    # decodes fine; the column is counted in characters (the UTF-8 re-encoding has one byte more)
    src = '# -*- coding: latin-1 -*-\nimport time\n\n\nasync def café():\n    x = "é"; time.sleep(1)\n'
    write(d / "latin1.py", src.encode("latin-1"))
    return Expect(findings=[("latin1.py", 6, 14, "ASM130")])


@case
def latin1_without_coding_cookie(d: Path) -> Expect:
    write(d / "nocookie.py", 'import time\nname = "café"\n'.encode("latin-1"))
    return Expect(errors=[("nocookie.py", "decode", "byte 0xe9 at line 2, column 12 is not valid UTF-8", None)],
                  exit=3)


@case
def latin1_without_coding_cookie_first_line(d: Path) -> Expect:
    # the byte is where tokenize looks for a coding declaration: its own message says only
    # "invalid or missing encoding declaration"
    write(d / "nocookie.py", 'name = "café"\n'.encode("latin-1"))
    return Expect(errors=[("nocookie.py", "decode", "byte 0xe9 at line 1, column 12 is not valid UTF-8", None)],
                  exit=3)


@case
def utf8_bom(d: Path) -> Expect:
    write(d / "bom.py", b"\xef\xbb\xbf" + GOOD)
    return Expect(findings=[("bom.py", 5, 5, "ASM130")])


@case
def crlf_line_endings(d: Path) -> Expect:
    write(d / "crlf.py", GOOD.replace(b"\n", b"\r\n"))
    write(d / "cr.py", GOOD.replace(b"\n", b"\r"))
    return Expect(findings=[("crlf.py", 5, 5, "ASM130"), ("cr.py", 5, 5, "ASM130")])


@case
def mixed_tabs_and_spaces(d: Path) -> Expect:
    write(d / "tabs.py", b"def f(x):\n\tif x:\n        return 1\n\treturn 2\n")
    return Expect(errors=[("tabs.py", "syntax", "inconsistent use of tabs and spaces in indentation", 3)], exit=3)


def _big(d: Path) -> int:
    """A generated file of 5 MiB with one finding at its end; returns the finding's line."""
    chunk = "def handler_{0}(db):\n    value = compute(db, {0})\n    return value + {0}\n\n\n"
    parts, size, i = ["import time\n\n\n"], 0, 0
    while size < 5 * 1024 * 1024:
        parts.append(chunk.format(i))
        size += len(parts[-1])
        i += 1
    text = "".join(parts)
    line = text.count("\n") + 2
    text += "async def last():\n    time.sleep(1)\n"
    write(d / "big.py", text.encode())
    return line


@case
def five_megabyte_file(d: Path) -> Expect:
    line = _big(d)
    return Expect(findings=[("big.py", line, 5, "ASM130")])


@case
def five_megabyte_file_over_max_file_size(d: Path) -> Expect:
    _big(d)
    (d / "pyproject.toml").write_text("[tool.asyncmigrate]\nmax-file-size = 1000000\n")
    return Expect(errors=[("big.py", "too-large", "over max-file-size (1000000)", None)], exit=3)


@case
def symlink_loop_directory(d: Path) -> Expect:
    (d / "pkg").mkdir()
    write(d / "pkg" / "__init__.py", b"")
    write(d / "pkg" / "mod.py", GOOD)
    os.symlink("..", d / "pkg" / "loop")  # pkg/loop -> the project: walked once, never followed
    os.symlink(".", d / "self")
    return Expect(findings=[("pkg/mod.py", 5, 5, "ASM130")], total=2)


@case
def symlink_loop_files(d: Path) -> Expect:
    os.symlink("b.py", d / "a.py")
    os.symlink("a.py", d / "b.py")
    msg = "cannot read: Too many levels of symbolic links"
    return Expect(errors=[("a.py", "read", msg, None), ("b.py", "read", msg, None)], exit=3)


@case
def symlink_loop_given_as_argument(d: Path) -> Expect:
    os.symlink("loop.py", d / "loop.py")
    return Expect(errors=[("loop.py", "read", "Too many levels of symbolic links", None)], exit=3,
                  paths=("good.py", "loop.py"))


@case
def broken_symlink(d: Path) -> Expect:
    os.symlink("missing.py", d / "broken.py")
    return Expect(errors=[("broken.py", "read", "cannot read: No such file or directory", None)], exit=3)


@case
def missing_argument(d: Path) -> Expect:
    return Expect(errors=[("missing.py", "read", "cannot read: No such file or directory", None)], exit=3,
                  paths=("missing.py", "good.py"))


@case
def unreadable_file(d: Path) -> Expect:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode (broken_symlink covers an unreadable file)")
    write(d / "secret.py", GOOD)
    os.chmod(d / "secret.py", 0)
    return Expect(errors=[("secret.py", "read", "cannot read: Permission denied", None)], exit=3)


@case
def directory_named_like_a_module(d: Path) -> Expect:
    (d / "x.py").mkdir()
    write(d / "x.py" / "inner.py", GOOD)
    return Expect(findings=[("x.py/inner.py", 5, 5, "ASM130")])


@case
def paths_that_are_not_utf8(d: Path) -> Expect:
    base = os.fsencode(d)
    write(base + b"/caf\xe9.py", GOOD)
    write(base + b"/bad\xff.py", b"def f(:\n")
    os.mkdir(base + b"/pkg\xfe")
    write(base + b"/pkg\xfe/__init__.py", b"")
    write(base + b"/pkg\xfe/mod.py", GOOD)
    return Expect(errors=[("bad\ufffd.py", "syntax", "syntax error", 1)],
                  findings=[("caf\ufffd.py", 5, 5, "ASM130"), ("pkg\ufffd/mod.py", 5, 5, "ASM130")], exit=3)


CRASHING_RULE = """
from asyncmigrate.rules.base import all_rules
_rule = all_rules()["ASM130"]
_check = _rule.check
def _crashing_check(self, ctx):
    if ctx.fn.file.path.endswith("boom.py") and ctx.fn.summary.qualname == "handler":
        raise RuntimeError("injected failure")
    return _check(self, ctx)
_rule.check = _crashing_check
"""


@case
def crash_inside_a_rule(d: Path) -> Expect:
    write(d / "boom.py", GOOD)
    return Expect(errors=[("boom.py", "internal", "internal error in ASM130 (handler): RuntimeError: injected failure",
                           None)], exit=3, prelude=CRASHING_RULE)


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(tmp_path: Path, name: str, fmt: str) -> None:
    d = tmp_path / "project"
    d.mkdir()
    write(d / "good.py", GOOD)
    expect = CASES[name](d)
    run = scan(list(expect.paths), d, fmt, prelude=expect.prelude)
    findings = [GOOD_FINDING, *expect.findings]
    assert run.returncode == expect.exit, (run.stdout[-3000:], run.stderr[-3000:])
    if fmt == "json":
        doc = run.json()
        got = [(e["path"], e["kind"], e["message"], e["line"]) for e in doc["errors"]]
        assert len(got) == len(expect.errors), got
        for path, kind, fragment, line in expect.errors:
            match = [g for g in got if g[0] == path and g[1] == kind and fragment in g[2]]
            assert match, (path, kind, fragment, got)
            if line is not None:
                assert match[0][3] == line, match
        reported = {(f["path"], f["line"], f["column"], f["code"]) for f in doc["findings"]}
        for f in findings:
            assert f in reported, (f, reported)
        if expect.total is not None:
            assert len(doc["findings"]) == expect.total, doc["findings"]
    else:
        out = run.stdout
        skipped = [ln for ln in out.splitlines() if ln.startswith("skipped ")]
        assert len(skipped) == len(expect.errors), skipped
        for path, kind, fragment, line in expect.errors:
            loc = f":{line}" if line else ""
            assert any(ln.startswith(f"skipped {path}{loc}: ") and fragment in ln for ln in skipped), (path, skipped)
        for path, line, column, code in findings:
            assert f"{path}:{line}:{column}: {code}" in out, (path, out[-3000:])


def test_errors_survive_the_cache(tmp_path: Path) -> None:
    """A bad file's error comes back from the cache as it was first reported, and the run still exits 3."""
    d = tmp_path / "project"
    d.mkdir()
    write(d / "good.py", GOOD)
    syntax_error(d)
    latin1_without_coding_cookie(d)
    broken_symlink(d)
    cold = scan(["."], d, "json", cache=True)
    warm = scan(["."], d, "json", cache=True)
    assert (cold.returncode, warm.returncode) == (3, 3)
    assert cold.json()["errors"] == warm.json()["errors"]
    assert len(cold.json()["errors"]) == 3
    assert cold.json()["findings"] == warm.json()["findings"]
    # the project pass runs again when the source changes (and the error is gone)
    write(d / "bad.py", b"def f():\n    pass\n")
    again = scan(["."], d, "json", cache=True)
    assert {e["path"] for e in again.json()["errors"]} == {"nocookie.py", "broken.py"}


def test_rule_crash_keeps_the_other_rules_and_files(tmp_path: Path) -> None:
    """The crashing rule is reported once per function it crashed in; other rules still run on that file."""
    d = tmp_path / "project"
    d.mkdir()
    write(d / "good.py", GOOD)
    write(d / "boom.py", GOOD + b"\n\nimport requests\n\n\nasync def fetch():\n    requests.get('http://x')\n")
    run = scan(["."], d, "json", prelude=CRASHING_RULE)
    assert run.returncode == 3
    doc = run.json()
    assert [e["kind"] for e in doc["errors"]] == ["internal"] * len(doc["errors"]) and doc["errors"]
    assert all("injected failure" in e["message"] and e["path"] == "boom.py" for e in doc["errors"])
    codes = {(f["path"], f["code"]) for f in doc["findings"]}
    assert ("good.py", "ASM130") in codes
    assert any(path == "boom.py" and code.startswith("ASM3") for path, code in codes), codes


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_symlink_loop_as_first_argument(tmp_path: Path, fmt: str) -> None:
    d = tmp_path / "project"
    d.mkdir()
    write(d / "good.py", GOOD)
    os.symlink("loop.py", d / "loop.py")
    run = scan(["loop.py", "good.py"], d, fmt)
    assert run.returncode == 3


def test_misplaced_future_import_is_reported_like_python_does(tmp_path: Path) -> None:
    """``ast.parse`` accepts a late ``from __future__`` import; ``compile()`` does not: neither may we."""
    from asyncmigrate.analysis.index import summarize
    from asyncmigrate.model import FileError, FileSummary

    late = summarize("late.py", b'"doc"\nimport os\nfrom __future__ import annotations\n', "late")
    assert isinstance(late, FileError) and late.line == 3 and "__future__" in late.message
    fine = summarize("ok.py", b'"doc"\nfrom __future__ import annotations\nfrom __future__ import division\nimport os\n',
                     "ok")
    assert isinstance(fine, FileSummary)
