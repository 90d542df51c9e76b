"""JSON output: a stable contract (``version`` bumps on any incompatible change).

``{"version": 1, "tool": {...}, "findings": [...], "errors": [...], "counts": {...}}``.
Each finding has ``path``, ``line``, ``column``, ``end_line``, ``end_column``
(1-based, characters; end exclusive), ``code``, ``name``, ``category``,
``severity`` (``blocks-loop`` | ``debt``), ``message``, ``scope``, ``chain``
(qualified names, outermost first: the calls that put blocks-loop code on the loop; for debt that runs in
a worker thread, the calls through the bridge that hands it there, such as ``route → run_in_threadpool →
function``; otherwise empty), ``evidence`` and ``fingerprint``.
"""

from __future__ import annotations

import json
from typing import Optional

from .. import __version__
from ..model import FileError, Finding, ScanResult
from .counts import counts
from .plain import plain

JSON_VERSION = 1


def finding_dict(f: Finding) -> dict:
    return {
        "path": f.path,
        "line": f.span.line,
        "column": f.span.column,
        "end_line": f.span.end_line,
        "end_column": f.span.end_column,
        "code": f.code,
        "name": f.name,
        "category": f.category,
        "severity": f.severity,
        "message": plain(f.message),
        "scope": f.scope,
        "chain": list(f.chain),
        "evidence": f.evidence,
        "fingerprint": f.fingerprint,
    }


def error_dict(e: FileError) -> dict:
    return {"path": e.path, "kind": e.kind, "message": e.message, "line": e.line, "column": e.column}


def render(result: ScanResult, extra: Optional[dict] = None) -> str:
    doc = {
        "version": JSON_VERSION,
        "tool": {"name": "asyncmigrate", "version": __version__},
        "findings": [finding_dict(f) for f in result.findings],
        "errors": [error_dict(e) for e in result.errors],
        "counts": counts(result.findings),
        "files_scanned": len(result.files),
        "suppressed": len(result.suppressed),
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, indent=2, ensure_ascii=False)
