"""Recall and precision of the session analysis on shapes that hid blocking calls or invented them (issue 12).

Each tree under ``fixtures/recall/<class>/`` reproduces one class of problem found by scanning backends the
project had never seen.  Its truth is counted by hand and written on the lines themselves: a trailing
``# truth: ASM120 blocks-loop`` says that line has exactly that finding (several markers on one line: several
findings); an optional third word gives the evidence the finding must rest on (``name-only`` where a name is
all there is).  Every other ASM1xx finding in the tree is a false alarm.

The tree is scanned as the CLI scans it (discovery, per-file pass, project pass; no cache), and the test
computes recall (truth found) and precision (findings that are true) over ``(path, line, code, severity)``.
Separately, no finding may rest on a name alone unless its marker says so: these classes are about provenance.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "recall"
CLASSES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
_MARKER = re.compile(r"#\s*truth:\s*(ASM\d{3})\s+(blocks-loop|debt)(?:\s+([a-z-]+))?")
_CHAIN = re.compile(r"#\s*chain:\s*([\w.]+(?:\s*>\s*[\w.]+)*)")


def chains(tree: Path) -> dict[tuple[str, int], tuple[str, ...]]:
    """(path, line) -> the call chain every finding on that line must carry (``# chain: a.f > b.g``)."""
    out = {}
    for path in sorted(tree.rglob("*.py")):
        rel = path.relative_to(tree).as_posix()
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            m = _CHAIN.search(line)
            if m:
                out[(rel, line_no)] = tuple(part.strip() for part in m.group(1).split(">"))
    return out


def truth(tree: Path) -> dict[tuple, str | None]:
    """(path, line, code, severity) -> expected evidence (None: any but name-only)."""
    out: dict[tuple, str | None] = {}
    for path in sorted(tree.rglob("*.py")):
        rel = path.relative_to(tree).as_posix()
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            for code, severity, evidence in _MARKER.findall(line):
                out[(rel, line_no, code, severity)] = evidence or None
    return out


def scan(tree: Path, with_chains: bool = False) -> dict[tuple, str]:
    run = analyse_paths([str(tree)], Config(), use_cache=False, jobs=1)
    assert run.result.errors == []
    out: dict[tuple, str] = {}
    for f in run.result.findings:
        if not f.code.startswith("ASM1"):
            continue
        rel = Path(os.path.relpath(os.path.abspath(f.path), tree)).as_posix()
        out[(rel, f.span.line, f.code, f.severity)] = f.chain if with_chains else f.evidence
    return out


def measure(name: str) -> tuple[float, float, list, list, list]:
    tree = ROOT / name
    expected, found = truth(tree), scan(tree)
    hits = expected.keys() & found.keys()
    recall = len(hits) / len(expected) if expected else 1.0
    precision = len(hits) / len(found) if found else 1.0
    missed = sorted(expected.keys() - found.keys())
    false = sorted(found.keys() - expected.keys())
    wrong_evidence = sorted((k, found[k]) for k in hits
                            if (expected[k] or "") != "name-only" and found[k] == "name-only"
                            or expected[k] == "name-only" and found[k] != "name-only")
    return recall, precision, missed, false, wrong_evidence


@pytest.mark.parametrize("name", CLASSES)
def test_recall_and_precision(name):
    recall, precision, missed, false, wrong_evidence = measure(name)
    assert (missed, false) == ([], [])
    assert (recall, precision) == (1.0, 1.0)
    assert wrong_evidence == []


@pytest.mark.parametrize("name", [n for n in CLASSES if chains(ROOT / n)])
def test_call_chains_name_full_modules(name):
    # ``# chain:`` markers: the chain a blocks-loop finding on that line reports, with full module names
    expected = chains(ROOT / name)
    found = scan(ROOT / name, with_chains=True)
    got = {(path, line): chain for (path, line, _code, _sev), chain in found.items() if (path, line) in expected}
    assert got == expected


def test_every_tree_has_truth():
    assert CLASSES, "no fixture trees"
    for name in CLASSES:
        assert truth(ROOT / name), f"{name}: no '# truth:' markers"


if __name__ == "__main__":  # prints the table: python -m tests.analysis.test_recall
    for name in CLASSES:
        r, p, missed, false, ev = measure(name)
        print(f"{name:28} recall {r:6.1%}  precision {p:6.1%}  missed {len(missed)}  false {len(false)}  "
              f"name-only {len(ev)}")
