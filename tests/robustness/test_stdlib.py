"""``asyncmigrate scan`` over the whole CPython standard library (part of CI).

No traceback, exit 0/1/3, and the files reported as not analysed are exactly the files this
interpreter cannot parse, each with its reason.  On CPython 3.11 those are the deliberately
broken test inputs:

* ``lib2to3/tests/data/{bom,crlf,different_encoding,false_encoding,py2_test_grammar}.py``:
  Python 2 syntax (lib2to3's own fixtures);
* ``test/tokenizedata/bad_coding.py`` (unknown encoding ``uft-8``), ``bad_coding2.py``
  (a BOM with a conflicting declaration), ``badsyntax_pep3120.py`` (latin-1 bytes, no
  declaration), ``badsyntax_3131.py`` (``€`` in an identifier);

(other versions move or add a few; the test compares with ``ast.parse`` of this interpreter,
not with a list).  The standard library's own ``site-packages`` is not part of it.
"""

from __future__ import annotations

import ast
import json
import os
import sysconfig
import warnings
from pathlib import Path

import pytest

from asyncmigrate.runner import SKIP_DIRS

from .helpers import cli

STDLIB = Path(sysconfig.get_paths()["stdlib"])
NOT_STDLIB = {"site-packages", "dist-packages"}


def stdlib_roots() -> list[Path]:
    """The standard library's top-level modules and packages (its site-packages left out)."""
    return sorted(p for p in STDLIB.iterdir()
                  if p.name not in NOT_STDLIB and (p.is_dir() and not p.is_symlink() or p.suffix == ".py"))


def stdlib_files() -> list[Path]:
    out = []
    for root in stdlib_roots():
        if root.is_file():
            out.append(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            out += [Path(dirpath, f) for f in filenames if f.endswith(".py")]
    return out


def unparsable(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, UnicodeDecodeError):
            return True
    return False


def uncompilable(path: Path) -> bool:
    """What Python itself rejects: ``compile()`` also refuses e.g. a late ``from __future__`` import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError, UnicodeDecodeError):
            return True
    return False


@pytest.fixture(scope="module")
def stdlib_scan(tmp_path_factory) -> tuple[int, dict]:
    work = tmp_path_factory.mktemp("stdlib")
    config = work / "pyproject.toml"
    # an installed Python may sit below a .gitignore that ignores it (pyenv's ignores /versions)
    config.write_text("[tool.asyncmigrate]\nrespect-gitignore = false\n")
    run = cli(["scan", "--format", "json", "-q", "--no-cache", "--config", str(config),
               *map(str, stdlib_roots())], work)
    return run.returncode, json.loads(run.stdout)


def test_no_crash_and_exit_code(stdlib_scan) -> None:
    code, doc = stdlib_scan
    assert code in (0, 1, 3)
    assert code == (3 if doc["errors"] else 1 if doc["findings"] else 0)


def test_every_file_is_analysed_or_reported(stdlib_scan) -> None:
    _, doc = stdlib_scan
    expected = {str(p) for p in stdlib_files()}
    reported = {e["path"] for e in doc["errors"]}
    assert doc["files_scanned"] + len(reported) == len(expected)
    assert reported <= expected


def test_errors_are_exactly_the_unparsable_files(stdlib_scan) -> None:
    _, doc = stdlib_scan
    errors = doc["errors"]
    assert len(errors) <= 30, [e["path"] for e in errors]
    for e in errors:
        assert e["kind"] in ("syntax", "decode"), e
        assert e["message"].startswith(("syntax error: ", "cannot decode: ", "cannot parse: ")), e
        assert len(e["message"]) > len("syntax error: "), e
    reported = {e["path"] for e in errors}
    # every file the parser rejects is reported, and nothing is reported that Python would accept
    unparsed = {str(p) for p in stdlib_files() if unparsable(p)}
    assert unparsed <= reported
    assert all(uncompilable(Path(p)) for p in reported - unparsed), sorted(reported - unparsed)


def test_findings_are_well_formed(stdlib_scan) -> None:
    _, doc = stdlib_scan
    for f in doc["findings"]:
        assert f["path"].startswith(str(STDLIB)), f
        assert f["line"] >= 1 and f["column"] >= 1 and (f["end_line"], f["end_column"]) >= (f["line"], f["column"])
        assert f["severity"] in ("blocks-loop", "debt") and f["code"].startswith("ASM") and f["fingerprint"]
    assert doc["counts"]["total"]["total"] == len(doc["findings"])
