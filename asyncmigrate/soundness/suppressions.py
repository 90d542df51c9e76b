"""A line suppressed with ``# asyncmigrate: ignore[...] <reason>`` is not changed by ``fix``.

The suppression says a human decided about that line; a rewrite that changes it (``await`` added, the
session swapped) overrides the decision.  The function that holds it is the cause: ``fix`` leaves its
component on the sync session, so the line stays as written.
"""

from __future__ import annotations

import difflib
from typing import Mapping, Optional

from ..analysis.findings import Analysis
from ..analysis.index import MODULE_SCOPE
from .model import Violation


def _unchanged_lines(old: bytes, new: bytes) -> set[int]:
    """1-based lines of ``old`` that the rewrite keeps byte for byte (in an equal block)."""
    a = old.decode("utf-8", "replace").splitlines()
    b = new.decode("utf-8", "replace").splitlines()
    kept: set[int] = set()
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            kept.update(range(i1 + 1, i2 + 1))
    return kept


def _holder(analysis: Analysis, module: str, line: int) -> Optional[str]:
    """The innermost function of ``module`` whose body holds ``line``."""
    best: Optional[tuple[int, str]] = None
    for fid, fn in analysis.project.functions.items():
        s = fn.summary
        if fn.file.module != module or s.qualname == MODULE_SCOPE or not (s.span.line <= line <= s.span.end_line):
            continue
        size = s.span.end_line - s.span.line
        if best is None or size < best[0]:
            best = (size, fid)
    return best[1] if best else None


def suppressed_line_violations(before: Analysis, changes: Mapping[str, tuple[bytes, bytes]]) -> list[Violation]:
    """Suppressed lines of the original that the rewrite (``changes``: path -> (old, new)) changes."""
    out: list[Violation] = []
    for fs in before.project.files:
        if fs.path not in changes or not fs.suppressions:
            continue
        old, new = changes[fs.path]
        kept = _unchanged_lines(old, new)
        for sup in fs.suppressions:
            if sup.line in kept:
                continue
            fid = _holder(before, fs.module, sup.line)
            codes = ",".join(sup.codes)
            out.append(Violation("suppressed", fs.path, sup.line, fid or "", (fid,) if fid else (),
                                 f"line {sup.line} is suppressed (`# asyncmigrate: ignore[{codes}]`) and fix does not "
                                 "change it", ("suppressed", fs.path, sup.line)))
    return out
