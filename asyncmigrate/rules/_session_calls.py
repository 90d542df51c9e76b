"""Shared matching for calls on session receivers (used by the query and session-method rules)."""

from __future__ import annotations

from typing import Iterator, Optional

from .. import facts
from ..analysis.index import expr_text
from ..analysis.sessions import SESSION
from ..model import CallSite
from .base import FunctionContext


def receiver_text(expr) -> str:
    """Message text for an encoded expression (``?`` where it has no source-like form)."""
    return expr_text(expr) or "?"


def _confirmed_name_only(ctx: FunctionContext) -> set:
    """Name-only receivers that also call a method only a session has (``query``, ``commit``...)."""
    key = "_confirmed"
    cache = ctx.__dict__.setdefault(key, None)
    if cache is not None:
        return cache
    out = set()
    for call in ctx.fn.summary.calls:
        func = call.func
        if func and func[0] == "a" and func[2] in facts.SESSION_ONLY_METHODS and not call.awaited:
            out.add(func[1])
    ctx.__dict__[key] = out
    return out


def sync_session_calls(ctx: FunctionContext, methods: frozenset[str]) -> Iterator[tuple[CallSite, str, str]]:
    """``(call, method, evidence)`` for calls of ``methods`` on a sync session in this function."""
    for call in ctx.fn.summary.calls:
        func = call.func
        if not func or func[0] != "a" or func[2] not in methods or call.awaited:
            continue
        method = func[2]
        v = ctx.receiver_of(call)
        if v is None:
            continue
        if v[0] == "factory":  # scoped_session registries proxy the session's methods
            evidence: Optional[str] = "factory"
        elif v[0] == SESSION:
            evidence = v[1]
        else:
            continue
        if evidence == "name-only" and method in facts.AMBIGUOUS_METHOD_NAMES:
            if func[1] not in _confirmed_name_only(ctx):
                continue
        yield call, method, evidence
