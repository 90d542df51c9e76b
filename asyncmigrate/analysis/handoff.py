"""Code handed to ``run_sync`` and to thread runners: it runs in a sync context, off the event loop (issue 12, class 5).

``await conn.run_sync(fn)`` / ``await db.run_sync(fn)`` (``AsyncConnection`` / ``AsyncSession``) call ``fn``
with the *sync* facade of the async connection or session, inside a greenlet whose I/O goes through the async
driver (SQLALCHEMY_ASYNC.md, "run_sync escape hatch"); ``anyio.to_thread.run_sync(fn)``,
``run_in_threadpool(fn)``, ``asyncio.to_thread(fn)`` and ``BackgroundTasks.add_task(fn)`` run a sync ``fn`` in a
worker thread.  Either way ``fn`` does
not block the loop, whether it is a lambda, a local ``def`` or any callable:

* a function passed by reference is never *called* by the code that passes it, so the call graph never puts it
  on the loop (``CallGraph``);
* a lambda's calls are recorded in the enclosing function (``CallSite.in_lambda``): :func:`off_loop` names
  the ones inside such an argument, and ``findings.analyze`` judges them off the loop (for ``run_sync``: its
  database work only; ``time.sleep`` or a file read there still runs on the loop's thread);
* ``metadata.create_all(conn)`` in code handed to an async connection's ``run_sync`` is the migrated form
  itself (ASM143 reads :func:`facade_spans` and :func:`facade_functions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import CallSite, Span

if TYPE_CHECKING:
    from .sessions import Project

_RUN_SYNC = "run_sync"


def _inside(inner: Span, outer: Span) -> bool:
    return inner != outer and (outer.line, outer.column) <= (inner.line, inner.column) \
        and (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column)


def _kind(project: "Project", call: CallSite, fid: str) -> str | None:
    """``"facade"`` for ``x.run_sync(...)`` of an async connection or session, ``"thread"`` for a thread runner
    (the standard ones, ``BackgroundTasks.add_task`` and the project's own: ``analysis/bridges.py``)."""
    func = call.func
    if any(h.call is call for h in project.bridges.handoffs.get(fid, ())):
        return "thread"
    if func is not None and func[0] == "a" and func[2] == _RUN_SYNC:
        return "facade"
    return None


def _handoffs(project: "Project", fid: str) -> list[tuple[str, CallSite]]:
    memo = project.__dict__.setdefault("_handoff_memo", {})
    hit = memo.get(fid)
    if hit is None:
        hit = []
        for call in project.functions[fid].summary.calls:
            if call.args:
                kind = _kind(project, call, fid)
                if kind is not None:
                    hit.append((kind, call))
        memo[fid] = hit
    return hit


def _lambda_calls(project: "Project", fid: str, kinds: tuple[str, ...]) -> frozenset[Span]:
    memo = project.__dict__.setdefault("_lambda_memo", {})
    key = (fid, kinds)
    hit = memo.get(key)
    if hit is None:
        handoffs = [call.span for kind, call in _handoffs(project, fid) if kind in kinds]
        hit = frozenset(c.span for c in project.functions[fid].summary.calls
                        if c.in_lambda and any(_inside(c.span, outer) for outer in handoffs)) if handoffs else frozenset()
        memo[key] = hit
    return hit


#: what code handed to an async connection's or session's ``run_sync`` does without blocking: its database
#: I/O goes through the async driver.  The greenlet runs on the loop's thread, so ``time.sleep``, files or HTTP
#: there still block the loop.
_FACADE_CATEGORIES = frozenset({"session-dependency", "session-factory", "query", "session-method", "engine"})


def off_loop(project: "Project", fid: str, span: Span, category: str) -> bool:
    """The call at ``span`` in ``fid`` is made by a lambda that runs off the loop: one handed to a thread runner,
    or, for database work (``category``), to ``run_sync``."""
    if span in _lambda_calls(project, fid, ("thread",)):
        return True
    return category in _FACADE_CATEGORIES and span in _lambda_calls(project, fid, ("facade",))


def thread_runner(project: "Project", fid: str, span: Span) -> str | None:
    """The runner of the thread hand-off in ``fid`` whose lambda makes the call at ``span`` (None: not one)."""
    if span not in _lambda_calls(project, fid, ("thread",)):
        return None
    handoff = project.bridges.at(fid, span)
    return handoff.runner if handoff is not None else None


def facade_spans(project: "Project", fid: str) -> frozenset[Span]:
    """Spans of the calls in ``fid`` made by lambdas handed to an async connection's or session's ``run_sync``."""
    return _lambda_calls(project, fid, ("facade",))


def facade_functions(project: "Project") -> frozenset[str]:
    """Project functions passed by reference to an async connection's or session's ``run_sync``."""
    memo = project.__dict__.get("_facade_functions")
    if memo is None:
        out = set()
        for fid in project.functions:
            for kind, call in _handoffs(project, fid):
                if kind != "facade":
                    continue
                v = project.value(call.args[0], fid) if call.args[0] is not None else None
                if v is not None and v[0] == "func":
                    out.add(v[1])
        memo = project.__dict__["_facade_functions"] = frozenset(out)
    return memo
