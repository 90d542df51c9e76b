"""SARIF 2.1.0 output, for GitHub code scanning and other SARIF viewers.

One run.  ``tool.driver.rules`` is generated from the rule registry (no second
copy of any rule text): ``id`` is the code, ``name`` the kebab name,
``shortDescription`` the summary, ``fullDescription`` the "What it does"
section, ``help`` the whole explanation (``help.markdown`` is the page
``asyncmigrate explain`` shows).  Each result carries its rule's index, a level
(``blocks-loop`` -> ``error``, ``debt`` -> ``warning``), a region whose columns
are 1-based code points (``columnKind: unicodeCodePoints``; end exclusive, as in
:class:`~asyncmigrate.model.Span`), the baseline fingerprint under
``partialFingerprints["asyncmigrate/v1"]``, the call chain that puts it on the
event loop as ``codeFlows`` (one thread flow, a step per function) and, in
``properties``, the fields SARIF has no slot for (severity, category, scope,
evidence, and the chain again as a plain list).

Relative paths are written relative to ``%SRCROOT%`` (the directory the scan
ran from); absolute ones become ``file://`` URIs.  Files that could not be
analysed are ``invocations[0].toolExecutionNotifications`` and make
``executionSuccessful`` false.
"""

from __future__ import annotations

import json
import re
import textwrap
from functools import lru_cache
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..model import BLOCKS_LOOP, FileError, Finding, ScanResult
from ..rules.base import Rule, all_rules
from .docs import SECTIONS, rule_markdown, sections
from .plain import plain

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "asyncmigrate/v1"

#: rule severity policy -> ``defaultConfiguration.level``; a result's own level wins
_POLICY_LEVEL = {"debt": "warning"}


def level(severity: str) -> str:
    return "error" if severity == BLOCKS_LOOP else "warning"


def artifact_location(path: str) -> dict[str, str]:
    """A SARIF ``artifactLocation``: relative paths against ``%SRCROOT%``, absolute ones as file URIs."""
    posix = path.replace("\\", "/")
    if PurePosixPath(posix).is_absolute():
        return {"uri": "file://" + quote(posix, safe="/")}
    if PureWindowsPath(path).is_absolute():  # pragma: no cover - Windows drive paths
        return {"uri": "file:///" + quote(posix, safe="/:")}
    posix = re.sub(r"^(\./)+", "", posix)
    return {"uri": quote(posix, safe="/"), "uriBaseId": SRCROOT}


def region(line: int, column: int = 0, end_line: int = 0, end_column: int = 0) -> dict[str, int] | None:
    """Only the members that are known (SARIF forbids 0): a missing column means the whole line."""
    if line < 1:
        return None
    out = {"startLine": line}
    if column >= 1:
        out["startColumn"] = column
    if end_line >= line:
        out["endLine"] = end_line
        if column >= 1 and end_column >= 1 and (end_line > line or end_column >= column):
            out["endColumn"] = end_column
    return out


def _location(path: str, reg: dict[str, int] | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": artifact_location(path)}
    if reg:
        physical["region"] = reg
    return {"physicalLocation": physical}


def _text(s: str) -> str:
    # rule docstrings use reST-style double backticks; plain-text viewers show them as-is
    return plain(s)


def help_text(cls: type[Rule]) -> str:
    """The explanation as plain text, one indented block per section."""
    parts = sections(cls)
    out = [parts.get("summary") or cls.summary()]
    for head in SECTIONS:
        if parts.get(head):
            out.append(f"{head}:\n" + textwrap.indent(parts[head], "    "))
    return _text("\n\n".join(out))


def rule_descriptor(cls: type[Rule]) -> dict[str, Any]:
    parts = sections(cls)
    summary = _text(cls.summary())
    full = _text(parts.get("What it does") or summary)
    return {
        "id": cls.code,
        "name": cls.name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": full},
        "help": {"text": help_text(cls), "markdown": rule_markdown(cls)},
        "defaultConfiguration": {"level": _POLICY_LEVEL.get(cls.severity, "error")},
        "properties": {
            "category": cls.category,
            "family": cls.family,
            "severityPolicy": cls.severity,
            "tags": sorted({cls.category, cls.family}),  # SARIF requires unique tags
        },
    }


@lru_cache(maxsize=1)
def _information_uri() -> str | None:
    """The project's home page from the installed metadata, if it declares one."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata
    except ImportError:  # pragma: no cover
        return None
    try:
        md = metadata("asyncmigrate")
    except PackageNotFoundError:
        return None
    for entry in md.get_all("Project-URL") or ():
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "documentation", "repository", "source") and url.strip():
            return url.strip()
    home = md.get("Home-page")
    return home.strip() if home and home.strip().lower() != "unknown" else None


def driver() -> dict[str, Any]:
    out: dict[str, Any] = {"name": "asyncmigrate", "version": __version__, "semanticVersion": __version__}
    uri = _information_uri()
    if uri:
        out["informationUri"] = uri
    out["rules"] = [rule_descriptor(cls) for cls in all_rules().values()]
    return out


def chain_text(f: Finding) -> str:
    return " → ".join(f.chain) if len(f.chain) > 1 else ""


def result_dict(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    text = plain(f.message)
    via = chain_text(f)
    if via:
        text += f" ({f.via} {via})"
    out: dict[str, Any] = {"ruleId": f.code}
    if f.code in index:
        out["ruleIndex"] = index[f.code]
    out.update({
        "level": level(f.severity),
        "message": {"text": text},
        "locations": [_location(f.path, region(f.span.line, f.span.column, f.span.end_line, f.span.end_column))],
    })
    if f.fingerprint:
        out["partialFingerprints"] = {FINGERPRINT_KEY: f.fingerprint}
    if len(f.chain) > 1:
        out["codeFlows"] = [code_flow(f)]
    out["properties"] = {
        "severity": f.severity,
        "category": f.category,
        "scope": f.scope,
        "evidence": f.evidence,
        "chain": list(f.chain),
    }
    return out


def code_flow(f: Finding) -> dict[str, Any]:
    """The call chain as SARIF's standard ``codeFlows`` (what GitHub code scanning shows as the path).

    One step per function, outermost first, each a logical location (its qualified name); the last step is
    the finding itself, with its physical location.  The chain does not carry the call sites' positions.
    """
    steps: list[dict[str, Any]] = []
    last = len(f.chain) - 1
    for i, name in enumerate(f.chain):
        location: dict[str, Any] = {"logicalLocations": [{"fullyQualifiedName": name, "kind": "function"}]}
        if i == last:
            location = {**_location(f.path, region(f.span.line, f.span.column, f.span.end_line, f.span.end_column)),
                        **location, "message": {"text": plain(f.message)}}
        else:
            first = "runs on the event loop and " if i == 0 and f.severity == BLOCKS_LOOP else ""
            location["message"] = {"text": f"{first}calls {f.chain[i + 1]}"}
        steps.append({"location": location, "nestingLevel": i, "executionOrder": i + 1})
    return {"message": {"text": f"{f.via} {chain_text(f)}"}, "threadFlows": [{"locations": steps}]}


def notification(e: FileError) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": f"{e.path}: skipped ({e.kind}): {e.message}"},
        "locations": [_location(e.path, region(e.line, e.column))],
        "properties": {"kind": e.kind},
    }


def sarif_log(result: ScanResult, properties: dict | None = None) -> dict[str, Any]:
    drv = driver()
    index = {r["id"]: i for i, r in enumerate(drv["rules"])}
    run: dict[str, Any] = {
        "tool": {"driver": drv},
        "invocations": [{
            "executionSuccessful": not result.errors,
            "toolExecutionNotifications": [notification(e) for e in result.errors],
        }],
        "columnKind": "unicodeCodePoints",
        "results": [result_dict(f, index) for f in result.findings],
    }
    if properties:
        run["properties"] = properties
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render(result: ScanResult, properties: dict | None = None) -> str:
    """The SARIF log as JSON; ``properties`` (e.g. ``check``'s baseline summary) go on the run."""
    return json.dumps(sarif_log(result, properties), indent=2, ensure_ascii=False)
