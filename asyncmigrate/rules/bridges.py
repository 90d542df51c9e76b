"""Mistakes in thread-pool bridges (ASM208).

A bridge (``run_in_threadpool``, ``asyncio.to_thread``, ``loop.run_in_executor``, the project's own helpers
and decorators: ``analysis/bridges.py``) runs sync database code in a worker thread.  Awaiting several such
calls at once runs them in several threads at once:

* ASM208: one sync ``Session`` used by several thread-pool calls of one ``asyncio.gather``: two threads
  drive one session and its connection at the same time.
"""

from __future__ import annotations

from typing import Iterator, Optional

from ..analysis.orm import calls_within
from ..analysis.sessions import SESSION
from ..model import CallSite, Expr
from ._session_calls import receiver_text
from .base import Bad, FunctionContext, Good, Hit, Rule
from .post_migration_awaits import _GATHER, gathered_sessions

#: how far to follow attributes that hold a session (``self._sync_oper = UserOper(db)`` holds ``UserOper._db``)
_HOLD_DEPTH = 2


class SyncSessionSharedAcrossThreads(Rule):
    """One sync ``Session`` used by several concurrent thread-pool calls (``asyncio.gather`` of bridges).

    What it does:
        Finds an ``asyncio.gather(...)`` whose awaitables run sync code in worker threads
        (``run_in_threadpool``, ``asyncio.to_thread``, ``loop.run_in_executor``,
        ``anyio.to_thread.run_sync``, or a project helper or decorator that hands the
        function to one) and give the same sync session to more than one of them: as an
        argument (``gather(run_in_threadpool(a, db), run_in_threadpool(b, db))``), in a
        lambda (``lambda: db.query(...)``), or as the state of one instance whose bridged
        methods use ``self.db`` (``gather(oper.list(), oper.active())``).  One call in a
        comprehension (``gather(*[to_thread(load, db, i) for i in ids])``) counts once per
        item.

    Why it matters:
        A ``Session`` is "designed to be used in a non-concurrent fashion, which in terms
        of multithreading means only in one thread at a time" (SQLAlchemy docs,
        "Contextual/Thread-local Sessions").  Two threads that query through one session
        share its connection, its transaction and its identity map, and a DBAPI
        connection is not safe across threads either: results interleave, errors come
        and go with timing, or a commit in one thread flushes the other's half-done
        work.  The bridge takes the blocking off the loop; it does not make the session
        safe to share.

        It is safe when each thread-pool call has a session of its own: the function
        opens one (``with SessionLocal() as db:`` inside it, the bridge module's *one
        unit of work per call*), or the sessions come from a ``scoped_session`` registry
        used *inside* the thread (``ScopedSession()`` / ``ScopedSession.query(...)``
        called in the worker gives each thread its own session).  A ``scoped_session``
        session taken on the loop's thread and passed in is one session again: reported.
        Calls awaited one after another are safe too.

    Example:
        users, count = await asyncio.gather(
            run_in_threadpool(crud.list_users, db),
            run_in_threadpool(crud.count_users, db),
        )

    Use instead:
        def list_users():
            with SessionLocal() as db:
                return crud.list_users(db)

        def count_users():
            with SessionLocal() as db:
                return crud.count_users(db)

        users, count = await asyncio.gather(run_in_threadpool(list_users), run_in_threadpool(count_users))
        # or, with one session, one call after the other:
        users = await run_in_threadpool(crud.list_users, db)
        count = await run_in_threadpool(crud.count_users, db)

    Fix safety:
        Not fixed automatically.  A session per call changes transaction scope (the
        calls no longer see each other's uncommitted work); awaiting the calls one after
        another is always safe and only gives up the overlap that was never safe.
    """

    code = "ASM208"
    name = "sync-session-shared-across-threads"
    family = "bridges"
    category = "post-migration"
    message = "`{session}` is used by several concurrent thread-pool calls of `{call}`; a sync Session is not thread-safe"
    severity = "always-blocks"
    examples = (
        Bad('''
import asyncio

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool


def count_users(db: Session) -> int:
    return db.query(User).count()


def count_orders(db: Session) -> int:
    return db.query(Order).count()


async def counts(db: Session):
    return await asyncio.gather(run_in_threadpool(count_users, db), run_in_threadpool(count_orders, db))
''', also=("ASM102", "ASM110")),
        Good('''
import asyncio

from starlette.concurrency import run_in_threadpool

from app.database import SessionLocal


def count(model) -> int:
    with SessionLocal() as db:  # one session per thread-pool call
        return db.query(model).count()


async def counts():
    return await asyncio.gather(run_in_threadpool(count, User), run_in_threadpool(count, Order))
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        if not ctx.fn.summary.is_async or not ctx.project.bridges.handoffs and not ctx.project.bridges.bridged_by:
            return
        for call in ctx.fn.summary.calls:
            if ctx.qualified_name(call) not in _GATHER:
                continue
            used = gathered_sessions(ctx, call, _thread_sessions)
            for key, n in used.items():
                if n >= 2:
                    yield Hit(call.span, {"session": receiver_text(key), "call": "asyncio.gather()"}, "", call.snippet)
                    break


# ---------------------------------------------------------------------- which sessions a bridged call uses
def _is_sync_session(ctx: FunctionContext, expr: Expr) -> bool:
    if expr is None or expr[0] not in ("n", "a"):
        return False
    v = ctx.project.value(expr, ctx.fid)
    return v is not None and v[0] == SESSION and v[1] != "name-only"


def _held_session(ctx: FunctionContext, cid: str, depth: int = _HOLD_DEPTH) -> Optional[tuple[str, ...]]:
    """The attributes to a sync session that ``cid``'s instances hold, directly (``("_db",)``) or through an
    instance that holds one (``self._sync_oper = UserOper(db)``: ``("_sync_oper", "_db")``)."""
    project = ctx.project
    attrs: list[str] = []
    for c in project.mro(cid):
        for name, _src in project._class_attr_sources.get(c, ()):
            if name not in attrs:
                attrs.append(name)
    for attr in attrs:
        v = project.instance_attribute(cid, attr)
        if v is None:
            continue
        if v[0] == SESSION and v[1] != "name-only":
            return (attr,)
        if v[0] == "instance" and depth > 1 and v[1] != cid:
            inner = _held_session(ctx, v[1], depth - 1)
            if inner is not None:
                return (attr, *inner)
    return None


def _bound_instance(ctx: FunctionContext, func: Expr) -> Optional[Expr]:
    """For ``recv.method`` bound to an instance that holds a sync session: the session, as the attribute path
    from ``recv`` (``oper._sync_oper._db``); every method of ``recv`` shares it."""
    if func is None or func[0] != "a":
        return None
    v = ctx.project.value(func, ctx.fid)
    if v is None or v[0] not in ("method", "func"):
        return None
    base = ctx.project.value(func[1], ctx.fid)
    path = _held_session(ctx, base[1]) if base is not None and base[0] == "instance" else None
    if path is None:
        return None
    held = func[1]
    for attr in path:
        held = ("a", held, attr)
    return held


def _thread_sessions(ctx: FunctionContext, sub: CallSite) -> set:
    """Sessions an awaitable hands to a worker thread: nothing unless it is a bridge call."""
    bridges = ctx.project.bridges
    handoff = next((h for h in bridges.handoffs.get(ctx.fid, ()) if h.call is sub), None)
    callee = ctx.project.callee(sub, ctx.fid) if handoff is None else None
    if handoff is None and (callee is None or callee not in bridges.bridged_by):
        return set()
    out: set = set()
    inner = [c for c in calls_within(ctx.fn.summary.calls, sub.span) if c is not sub]
    for call in (sub, *(c for c in inner if not c.in_lambda)):
        for arg in (*call.args, *(v for _, v in call.kwargs)):
            if _is_sync_session(ctx, arg):
                out.add(arg)
            held = _bound_instance(ctx, arg)
            if held is not None:
                out.add(held)
    if handoff is None:
        held = _bound_instance(ctx, sub.func)  # ``oper.list()`` of a bridged method
        if held is not None:
            out.add(held)
    for c in inner:
        if c.in_lambda and c.func is not None and c.func[0] == "a" and _is_sync_session(ctx, c.func[1]):
            out.add(c.func[1])
    return out
