"""The pipeline every command stands on: discover -> summarise (cached, parallel) -> analyse.

``scan`` and ``check`` need only findings, so an unchanged tree's result is
served from the cache without the project pass; ``fix`` and ``plan`` need the
whole :class:`~asyncmigrate.analysis.findings.Analysis` (project index, call
graph), which :func:`analyse_paths` returns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from .config import Config
from .model import ScanResult
from .rules.base import Rule, all_rules, selected
from .runner import Discovery, Progress, Summaries, discover, summarise

if TYPE_CHECKING:  # the project pass is imported when it runs: a cached result needs none of it
    from .analysis.findings import Analysis
    from .analysis.sessions import Settings


def _package_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.rglob("*.py")):
        try:
            h.update(p.read_bytes())
        except OSError:  # pragma: no cover
            pass
    return h.hexdigest()[:16]


PACKAGE_HASH = _package_hash()


def settings_from(config: Config) -> "Settings":
    from .analysis.sessions import Settings

    return Settings(
        session_dependencies=frozenset(config.session_dependencies),
        session_factories=frozenset(config.session_factories),
        session_names=frozenset(config.session_names),
        name_heuristics=config.name_heuristics,
    )


def rules_for(config: Config, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> list[Rule]:
    return selected(all_rules(), tuple(select) or tuple(config.select), tuple(ignore) + tuple(config.ignore))


def severity_overrides(config: Config) -> dict[str, str]:
    out: dict[str, str] = {}
    codes = all_rules()
    for prefix, sev in config.severity.items():
        if sev == "auto":
            continue
        for code in codes:
            if code.startswith(prefix):
                out[code] = sev
    return out


@dataclass
class Run:
    result: ScanResult
    analysis: Optional["Analysis"]
    summaries: Summaries
    discovery: Discovery


def analyse_paths(
    paths: Sequence[str],
    config: Config,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    use_cache: bool = True,
    jobs: Optional[int] = None,
    progress: bool = False,
    need_analysis: bool = False,
    overrides: Optional[dict[str, bytes]] = None,
    discovery: Optional[Discovery] = None,
) -> Run:
    discovery = discovery if discovery is not None else discover(paths, config)
    bar = Progress(progress)
    try:
        # ``overrides`` is the other side of ``check --diff-against``: it shares the content-keyed cache
        # (most files are the same at the ref) and leaves the work tree's entries in place
        sums = summarise(discovery, config, use_cache=use_cache, jobs=jobs, progress=bar, overrides=overrides,
                         keep_others=overrides is not None)
    finally:
        bar.close()
    rules = rules_for(config, select, ignore)
    overrides_sev = severity_overrides(config)
    # what ``settings_from`` reads; sorted, never ``repr`` of a frozenset (its order changes with PYTHONHASHSEED)
    settings_key = (sorted(set(config.session_dependencies)), sorted(set(config.session_factories)),
                    sorted(set(config.session_names)), config.name_heuristics)
    key = hashlib.sha256(repr((sums.tree_key, PACKAGE_HASH, sorted(r.code for r in rules), sorted(overrides_sev.items()),
                               settings_key)).encode()).hexdigest()
    if not need_analysis and sums.cache is not None:
        cached = sums.cache.load_result(key)
        if isinstance(cached, ScanResult):
            return Run(cached, None, sums, discovery)
    from .analysis.findings import analyze

    analysis = analyze(sums.summaries, sums.errors, rules, settings_from(config), overrides_sev)
    if sums.cache is not None:
        sums.cache.store_result(key, analysis.result)
    return Run(analysis.result, analysis, sums, discovery)


def analyse_named(paths: Sequence[str], config: Config, select: Sequence[str] = (), ignore: Sequence[str] = (),
                  **options) -> Run:
    """``scan``/``check`` on the paths named: a file's findings must not depend on which other files are named
    (pre-commit names only the changed ones), so when a file is named the project it belongs to is analysed
    from its root (``runner.project_root``, as ``fix`` does; cached like any run) and the result is restricted
    to the named paths.  Directories alone are analysed as given: they are the project the user names."""
    import os

    from .runner import project_root

    if all(os.path.isdir(p) for p in paths):
        return analyse_paths(paths, config, select, ignore, **options)
    root = project_root(paths)
    named = discover(paths, config)
    # the named files as well: one the configuration excludes is still analysed when named, as before
    run = analyse_paths([str(root), *paths], config, select, ignore, **options)
    scope = {s.path for s in named.sources} | {os.path.abspath(s.path) for s in named.sources}

    def inside(path: str) -> bool:
        return path in scope or os.path.abspath(path) in scope

    res = run.result
    restricted = ScanResult(findings=[f for f in res.findings if inside(f.path)],
                            errors=[e for e in res.errors if inside(e.path)] + list(named.errors),
                            files=[p for p in res.files if inside(p)],
                            suppressed=[f for f in res.suppressed if inside(f.path)])
    return Run(restricted, run.analysis, run.summaries, named)
