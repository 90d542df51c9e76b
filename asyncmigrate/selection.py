"""Which rules a run applies, and where: configuration and command line resolved as Ruff does.

Scope: ``select``/``ignore`` from ``[tool.asyncmigrate]``, ``--select``/``--ignore``/
``--extend-select``/``--extend-ignore`` on the command line, and ``per-file-ignores``.

Why Ruff's precedence: people move between the two tools, and the old rule here
(a configured ``ignore = ["ASM1"]`` silently beat ``--select ASM110``, giving no
findings and no warning) surprised them.  The layers are the configuration,
then the command line.  A layer that has a ``select`` starts the rule set
afresh (so ``--select`` replaces the configured ``select`` *and* ``ignore``, and
a note says so); within a layer the most specific matching prefix decides
(``--select ASM110 --ignore ASM1`` keeps ASM110), an ``ignore`` winning a tie.
``--extend-select``/``--extend-ignore`` adjust the set without resetting it.

``per-file-ignores`` is applied to the findings after the analysis: a finding
whose file matches a pattern (gitignore-style, relative to the configuration's
directory) and whose code matches one of its prefixes moves to ``suppressed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Iterable, Optional, Sequence

import pathspec

from .config import Config
from .model import Finding, ScanResult


@dataclass(frozen=True)
class Layer:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    extend_ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Selection:
    codes: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())


def _longest(code: str, prefixes: Iterable[str]) -> int:
    return max((len(p) for p in prefixes if code.startswith(p)), default=-1)


def apply_layers(codes: Sequence[str], layers: Sequence[Layer]) -> tuple[str, ...]:
    chosen = set(codes)
    for layer in layers:
        if layer.select:
            chosen = set()
        on = layer.select + layer.extend_select
        off = layer.ignore + layer.extend_ignore
        for code in codes:
            yes, no = _longest(code, on), _longest(code, off)
            if yes < 0 and no < 0:
                continue
            if no >= yes:
                chosen.discard(code)
            else:
                chosen.add(code)
    return tuple(c for c in codes if c in chosen)


def resolve(config: Config, select: Sequence[str] = (), ignore: Sequence[str] = (),
            extend_select: Sequence[str] = (), extend_ignore: Sequence[str] = ()) -> Selection:
    """The rule codes a run applies, with notes on what the command line overrode."""
    from .rules.base import all_rules

    codes = list(all_rules())
    layers = [Layer(tuple(c.upper() for c in config.select), tuple(c.upper() for c in config.ignore)),
              Layer(tuple(select), tuple(ignore), tuple(extend_select), tuple(extend_ignore))]
    notes: list[str] = []
    if select and (config.select or config.ignore):
        where = config.source or "the configuration"
        dropped = ", ".join(f"{k} = {v!r}" for k, v in (("select", config.select), ("ignore", config.ignore)) if v)
        notes.append(f"note: --select replaces {dropped} from {where} (as in Ruff); "
                     "use --extend-select to add rules to the configured ones")
    return Selection(apply_layers(codes, layers), tuple(notes))


def as_arguments(config: Config, selection: Selection) -> tuple[Config, tuple[str, ...], tuple[str, ...]]:
    """``(config, select, ignore)`` for :func:`asyncmigrate.api.analyse_paths` that run exactly these codes.

    Codes are all the same length, so a full code used as a prefix matches only itself.
    """
    return replace(config, select=[], ignore=[]), selection.codes, ()


# ---------------------------------------------------------------- per-file-ignores
class PerFileIgnores:
    """``per-file-ignores`` patterns, matched against paths relative to the configuration's directory."""

    def __init__(self, config: Config):
        self.root = os.path.abspath(config.root)
        self.entries = [(pathspec.GitIgnoreSpec.from_lines([pattern]), tuple(codes))
                        for pattern, codes in config.per_file_ignores.items()]

    def __bool__(self) -> bool:
        return bool(self.entries)

    def ignores(self, path: str, code: str, absolute: Optional[str] = None) -> bool:
        """Whether ``code`` is ignored in ``path`` (as reported; ``absolute`` when it is relative to elsewhere)."""
        if not self.entries:
            return False
        rel = os.path.relpath(absolute or os.path.abspath(path), self.root).replace(os.sep, "/")
        if rel.startswith("../"):
            return False
        return any(any(code.startswith(c) for c in codes) and spec.match_file(rel) for spec, codes in self.entries)


def apply_per_file_ignores(result: ScanResult, config: Config) -> ScanResult:
    pfi = PerFileIgnores(config)
    if not pfi:
        return result
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for f in result.findings:
        (dropped if pfi.ignores(f.path, f.code) else kept).append(f)
    if not dropped:
        return result
    return ScanResult(findings=kept, errors=result.errors, files=result.files,
                      suppressed=sorted([*result.suppressed, *dropped], key=Finding.sort_key))
