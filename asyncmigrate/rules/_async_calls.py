"""Shared matching for calls on *async* receivers, and per-function memos (post-migration rules, ASM2xx).

Which receivers are ``AsyncSession`` comes from session tracking
(``Project.receiver`` gives ``("asession", evidence)``).  ``AsyncEngine`` is a
``create_async_engine(...)`` result; an ``AsyncConnection`` is what
``async with engine.connect()/begin() as conn`` (or ``await engine.connect()``)
binds, or a parameter annotated with it.

A receiver known only by its *name* (``db`` in a file that awaits ``db.commit()``)
is trusted for methods only a session has; for names common on other objects
(``get``, ``delete``, ``add``, ``execute``...) the same function must also call
such a session-only method on it.
"""

from __future__ import annotations

from typing import Optional

from .. import facts
from ..analysis.queries import FunctionFlow, Statement, statement_of
from ..model import CallSite, Expr
from .base import FunctionContext

#: ``AsyncConnection`` classes, for parameters annotated with one
ASYNC_CONNECTION_TYPES = frozenset({"sqlalchemy.ext.asyncio.AsyncConnection",
                                    "sqlalchemy.ext.asyncio.engine.AsyncConnection"})
#: ``AsyncEngine`` methods that hand out an ``AsyncConnection`` (``async with`` or ``await``)
_CONNECT = frozenset({"connect", "begin"})


def _session_only_receivers(ctx: FunctionContext) -> set:
    key = "_async_confirmed"
    cache = ctx.__dict__.get(key)
    if cache is None:
        cache = {c.func[1] for c in ctx.fn.summary.calls
                 if c.func and c.func[0] == "a" and c.func[2] in facts.SESSION_ONLY_METHODS}
        ctx.__dict__[key] = cache
    return cache


def async_session(ctx: FunctionContext, expr: Expr, method: Optional[str] = None) -> Optional[str]:
    """The evidence that ``expr`` is an ``AsyncSession`` (for a call of ``method`` on it), or None."""
    if expr is None:
        return None
    memo = ctx.__dict__.setdefault("_async_memo", {})
    if expr not in memo:
        v = ctx.project.receiver(expr, ctx.fid)
        memo[expr] = v[1] if v is not None and v[0] == "asession" else None
    evidence = memo[expr]
    if evidence == "name-only" and (method is None or method in facts.AMBIGUOUS_METHOD_NAMES):
        if expr not in _session_only_receivers(ctx):
            return None
    return evidence


def is_async_engine(ctx: FunctionContext, expr: Expr) -> bool:
    return expr is not None and ctx.project.value(expr, ctx.fid) == ("aengine",)


def is_async_connection(ctx: FunctionContext, expr: Expr) -> bool:
    """A local name bound to an ``AsyncConnection`` (or a parameter annotated with one)."""
    if expr is None or expr[0] != "n":
        return False
    name = expr[1]
    fn = ctx.fn.summary
    for b in fn.bindings:
        if b.name != name:
            continue
        value = b.value
        if b.kind == "assign" and value and value[0] == "aw":
            value = value[1]
        elif b.kind != "with":
            continue
        if value and value[0] == "c" and value[1] and value[1][0] == "a" and value[1][2] in _CONNECT \
                and is_async_engine(ctx, value[1][1]):
            return True
    for p in fn.params:
        if p.name == name and p.annotation is not None:
            v = ctx.project.value(p.annotation, ctx.fid)
            if v is not None and v[0] == "ext" and v[1] in ASYNC_CONNECTION_TYPES:
                return True
    return False


def async_coroutine_call(ctx: FunctionContext, call: CallSite) -> Optional[tuple[str, str]]:
    """``(what, evidence)`` when ``call`` is a coroutine method of an async session, engine or connection."""
    func = call.func
    if not func or func[0] != "a":
        return None
    method, recv = func[2], func[1]
    if method in facts.AWAITED_SESSION_METHODS:  # SQLAlchemy's coroutines and SQLModel's ``exec``
        evidence = async_session(ctx, recv, method)
        # a name alone does not say a *sync* def holds an AsyncSession: ``def work(session): session.commit()``
        # handed to ``await db.run_sync(work)`` gets a sync Session
        if evidence is not None and (evidence != "name-only" or ctx.fn.summary.is_async):
            return "AsyncSession", evidence
    if method in facts.ASYNC_ENGINE_COROUTINES and is_async_engine(ctx, recv):
        return "AsyncEngine", "factory"
    if method in facts.ASYNC_CONNECTION_COROUTINES and is_async_connection(ctx, recv):
        return "AsyncConnection", "factory"
    return None


def flow_of(ctx: FunctionContext) -> FunctionFlow:
    """The function's query results, following receivers this module accepts as AsyncSession (memoised)."""
    flow = ctx.__dict__.get("_flow")
    if flow is None:
        flow = ctx.__dict__["_flow"] = FunctionFlow(ctx.project, ctx.fid, lambda e: async_session(ctx, e) is not None)
    return flow


def statement_for(ctx: FunctionContext, call: CallSite) -> Statement:
    """What a session call runs (memoised per call site)."""
    memo = ctx.__dict__.setdefault("_statements", {})
    key = id(call)
    if key not in memo:
        memo[key] = statement_of(ctx.project, ctx.fid, call)
    return memo[key]


def class_name(cid: str) -> str:
    """``module:Class`` -> ``Class``."""
    return cid.rsplit(":", 1)[-1]
