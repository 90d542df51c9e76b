"""The project pass: summaries -> findings.

Builds the :class:`~asyncmigrate.analysis.sessions.Project` (session
tracking, solved to a fixed point) and the
:class:`~asyncmigrate.analysis.callgraph.CallGraph` once, runs every selected
rule on every function, and turns each hit into a :class:`Finding` with its
severity (from the rule's policy and where the code runs), the call chain
that puts it on the loop, suppressions and a fingerprint for the baseline.
``fix`` and ``check`` reuse the same :class:`Analysis`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

from ..model import BLOCKS_LOOP, DEBT, FileError, FileSummary, Finding, ScanResult
from ..rules.base import FunctionContext, Hit, Rule
from .callgraph import CallGraph
from .bridges import bridged_only
from .handoff import off_loop, thread_runner
from .index import MODULE_SCOPE
from .sessions import Project, Settings

#: rule categories whose findings mean "this function uses a sync session" (it will become async)
_SESSION_USE = frozenset({"query", "session-method", "session-factory"})


def fingerprint(path: str, code: str, scope: str, snippet: str) -> str:
    """Stable across moves within a file and reformatting (the snippet is whitespace-normalised)."""
    h = hashlib.sha256(f"{path}\0{code}\0{scope}\0{snippet}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:20]


@dataclass
class Analysis:
    project: Project
    graph: CallGraph
    result: ScanResult
    #: fid -> findings inside it (``fix`` plans from these)
    by_function: dict[str, list[Finding]] = field(default_factory=dict)
    migrating: frozenset[str] = frozenset()


def _severity(policy: str, on_loop: bool, migrating: bool, override: Optional[str]):
    if override == "off":
        return None
    if policy == "loop-only" and not on_loop:
        return None
    if policy == "loop-or-migrating" and not (on_loop or migrating):
        return None
    if override in (BLOCKS_LOOP, DEBT):
        return override
    if policy == "debt":
        return DEBT
    if policy == "always-blocks":
        return BLOCKS_LOOP
    return BLOCKS_LOOP if on_loop else DEBT


def analyze(
    summaries: Sequence[FileSummary],
    errors: Sequence[FileError] = (),
    rules: Iterable[Rule] = (),
    settings: Optional[Settings] = None,
    severity_overrides: Mapping[str, str] = {},
) -> Analysis:
    project = Project(summaries, settings)
    project.solve()
    graph = CallGraph.build(project)
    rules = list(rules)
    result = ScanResult(errors=list(errors), files=[s.path for s in project.files])
    analysis = Analysis(project, graph, result)
    raw: list[tuple[Rule, str, Hit]] = []

    phase1 = [r for r in rules if r.phase == 1]
    phase2 = [r for r in rules if r.phase != 1]
    uses_session: set[str] = set()
    for fid, fn in project.functions.items():
        ctx = FunctionContext(project, graph, fid, fn, frozenset())
        for rule in phase1:
            for hit in _safe_check(rule, ctx, result):
                raw.append((rule, fid, hit))
                if rule.category in _SESSION_USE and fn.summary.qualname != MODULE_SCOPE:
                    uses_session.add(fid)
    # the migration makes these async: they, or what they (transitively) call, use a sync session
    migrating = frozenset(graph.transitive_callers(uses_session))
    analysis.migrating = migrating
    if phase2:
        for fid, fn in project.functions.items():
            ctx = FunctionContext(project, graph, fid, fn, migrating)
            for rule in phase2:
                for hit in _safe_check(rule, ctx, result):
                    raw.append((rule, fid, hit))
    file_rules = [r for r in rules if hasattr(r, "check_file")]
    module_fids = {id(f.file): fid for fid, f in project.functions.items() if f.summary.qualname == MODULE_SCOPE}
    for fs in project.files:
        module_fid = module_fids.get(id(fs))
        for rule in file_rules:
            for hit in rule.check_file(fs):  # type: ignore[attr-defined]
                raw.append((rule, module_fid or "", hit))

    for rule, fid, hit in raw:
        fn = project.functions.get(fid)
        if fn is None:
            continue
        # a lambda handed to ``run_sync`` / a thread runner runs off the loop, wherever it is written
        on_loop = graph.on_loop(fid) and not off_loop(project, fid, hit.span, rule.category)
        # a session parameter whose every use goes through a bridge does not block the loop where it is received
        param_bridge = bridged_only(project, graph, fid, hit.detail["param"]) \
            if on_loop and rule.category == "session-dependency" and "param" in hit.detail else None
        on_loop = on_loop and param_bridge is None
        sev = _severity(rule.severity, on_loop, fid in migrating, severity_overrides.get(rule.code))
        if sev is None:
            continue
        if sev == BLOCKS_LOOP:
            chain = graph.display_chain(fid)
        else:  # off the loop: in a worker thread, the chain names the bridge that puts it there
            runner = param_bridge or (thread_runner(project, fid, hit.span) if graph.on_loop(fid) else None)
            chain = graph.display_chain(fid) + (runner,) if runner else graph.thread_chain.get(fid, ())
        scope = fn.summary.qualname
        finding = Finding(
            path=fn.file.path,
            span=hit.span,
            code=rule.code,
            category=rule.category,
            severity=sev,
            message=rule.format(hit),
            scope=scope,
            chain=chain,
            evidence=hit.evidence,
            snippet=hit.snippet,
            fingerprint=fingerprint(fn.file.path, rule.code, scope, hit.snippet),
            name=rule.name,
        )
        if _suppressed(fn.file, finding):
            result.suppressed.append(finding)
            continue
        result.findings.append(finding)
        analysis.by_function.setdefault(fid, []).append(finding)
    result.findings.sort(key=Finding.sort_key)
    return analysis


def _safe_check(rule: Rule, ctx: FunctionContext, result: ScanResult):
    """A crash inside one rule becomes an internal error for that file, never a traceback for the run."""
    try:
        return list(rule.check(ctx))
    except Exception as exc:  # noqa: BLE001 - reported, not swallowed
        result.errors.append(
            FileError(ctx.fn.file.path, "internal", f"internal error in {rule.code} ({ctx.fn.summary.qualname}): "
                      f"{type(exc).__name__}: {exc}")
        )
        return []


def _suppressed(fs: FileSummary, finding: Finding) -> bool:
    if finding.code == "ASM001":
        return False
    for s in fs.suppressions:
        if s.line in (finding.span.line, finding.span.end_line) and (not s.codes or any(
                finding.code.startswith(c) for c in s.codes)):
            return True
    return False
