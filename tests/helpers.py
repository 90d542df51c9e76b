"""Test helpers: analyse sources in memory, as one project."""

from __future__ import annotations

import textwrap
from typing import Iterable, Mapping, Sequence

from asyncmigrate.analysis.findings import Analysis, analyze
from asyncmigrate.analysis.index import summarize
from asyncmigrate.model import FileSummary, Finding
from asyncmigrate.rules.base import all_rules


def summaries(files: Mapping[str, str]) -> list[FileSummary]:
    out = []
    for path, src in files.items():
        module = path[:-3].replace("/", ".")
        is_pkg = module.endswith(".__init__")
        if is_pkg:
            module = module[: -len(".__init__")]
        s = summarize(path, textwrap.dedent(src).encode(), module, is_pkg)
        assert isinstance(s, FileSummary), s
        out.append(s)
    return out


def analyse(files: Mapping[str, str] | str, codes: Sequence[str] = ()) -> Analysis:
    if isinstance(files, str):
        files = {"app.py": files}
    rules = [cls() for code, cls in all_rules().items() if not codes or any(code.startswith(c) for c in codes)]
    return analyze(summaries(files), rules=rules)


def findings(files: Mapping[str, str] | str, codes: Sequence[str] = ()) -> list[Finding]:
    return analyse(files, codes).result.findings


def brief(fs: Iterable[Finding]) -> list[tuple]:
    """``(path, line, code, severity)`` for compact assertions."""
    return [(f.path, f.span.line, f.code, f.severity) for f in fs]
