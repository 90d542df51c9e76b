"""Post-migration mistakes with ``await`` and concurrency (ASM201, ASM202, ASM206).

Code that already uses ``AsyncSession`` can still be wrong in ways that raise
nothing, or only at runtime (SQLALCHEMY_ASYNC.md §1, §4):

* ASM201: a coroutine method (``commit``, ``execute``, ``get``...; ``dispose`` on
  an ``AsyncEngine``, ``execute`` on an ``AsyncConnection``) called without
  ``await``: the statement never runs;
* ASM202: ``await`` on a method that stays synchronous (``add``, ``expunge``...):
  ``TypeError``;
* ASM206: one session used by several tasks of ``asyncio.gather`` or a task
  group: ``InvalidRequestError``, or a race that passes until it does not.

Which receivers are async comes from session tracking (``_async_calls.py``).
These are bugs wherever they run, so their severity is ``always-blocks`` (the
error level): see ``rules/base.py``.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterator, Optional

from .. import facts
from ..analysis.orm import calls_within, within
from ..analysis.queries import FunctionFlow
from ..model import CallSite, Expr
from ._async_calls import async_coroutine_call, async_session
from ._session_calls import receiver_text
from .base import Bad, FunctionContext, Good, Hit, Rule

#: what a coroutine object has: reading these from a name that holds one is not a mistake
_COROUTINE_ATTRS = frozenset({"send", "throw", "close", "cr_await", "cr_code", "cr_frame", "cr_running", "cr_origin",
                              "cr_suspended", "__await__", "__name__", "__qualname__"})
#: ``AsyncSession`` methods that are not coroutines; ``begin``/``begin_nested`` return an awaitable transaction
_SYNC_ON_ASYNC_SESSION = facts.ASYNC_SESSION_SYNC_METHODS - {"begin", "begin_nested"}
#: ``asyncio.gather`` (runs its awaitables concurrently)
_GATHER = frozenset(q for q in facts.LOOP_SCHEDULERS if q.rsplit(".", 1)[-1] == "gather")
#: task groups: ``async with asyncio.TaskGroup() as tg`` / ``anyio.create_task_group()``
_TASK_GROUPS = frozenset({"asyncio.TaskGroup", "asyncio.taskgroups.TaskGroup", "anyio.create_task_group"})
#: task group methods: ``create_task(coro)`` (asyncio), ``start_soon(fn, *args)`` / ``start(fn, *args)`` (anyio)
_TASK_METHODS = frozenset({"create_task", "start_soon", "start"})


def _call_text(call: CallSite) -> str:
    return f"{receiver_text(call.func[1])}.{call.func[2]}()"


class UnawaitedAsyncCall(Rule):
    """A coroutine method of ``AsyncSession`` (or ``AsyncEngine``/``AsyncConnection``) called without ``await``.

    What it does:
        Finds calls of ``execute``, ``scalars``, ``get``, ``commit``, ``rollback``,
        ``flush``, ``refresh``, ``delete``, ``close``... on a receiver known to be an
        ``AsyncSession`` (``dispose`` on an ``AsyncEngine``; ``execute``, ``commit``...
        on an ``AsyncConnection``) whose coroutine is dropped or misused: a bare
        statement (``db.commit()``), a result method chained onto it
        (``db.execute(stmt).scalars()``), a name that holds it and is then read as a
        result (``user = db.get(User, 1); user.name``), or a coroutine ``return``-ing it
        from an ``async def``.  A coroutine handed to another call (``asyncio.gather``,
        ``create_task``, ``wait_for``...), kept in a name that is awaited later, or
        returned by a plain ``def`` (whose caller awaits it) is not reported, nor is a
        receiver known only by its name (``session``) inside a plain ``def``: such a
        function is often a ``run_sync`` callback, which gets a sync ``Session``.

    Why it matters:
        On ``AsyncSession`` these methods are coroutines.  Calling one without
        ``await`` does nothing: ``db.commit()`` gives ``RuntimeWarning: coroutine
        'AsyncSession.commit' was never awaited``, raises nothing, and **saves
        nothing**.  Chaining onto the coroutine raises ``AttributeError: 'coroutine'
        object has no attribute 'scalars'``.

    Example:
        db.add(order)
        db.commit()

    Use instead:
        db.add(order)
        await db.commit()

    Fix safety:
        Adding ``await`` is safe inside ``async def``.  In a plain ``def`` the function
        must become ``async def`` and its callers must await it.
    """

    code = "ASM201"
    name = "unawaited-async-call"
    family = "post_migration"
    category = "post-migration"
    message = "`{call}` is a coroutine on {what} and is not awaited: {why}"
    severity = "always-blocks"
    examples = (
        Bad('''
from sqlalchemy.ext.asyncio import AsyncSession


async def create(db: AsyncSession, order):
    db.add(order)
    db.commit()
'''),
        Bad('''
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession


async def names(db: AsyncSession):
    return await db.execute(select(User.name)).scalars().all()
'''),
        Good('''
from sqlalchemy.ext.asyncio import AsyncSession


async def create(db: AsyncSession, order):
    db.add(order)
    await db.commit()
'''),
        Good('''
import asyncio

from sqlalchemy.ext.asyncio import AsyncSession


async def save_with_timeout(db: AsyncSession):
    await asyncio.wait_for(db.commit(), timeout=5)


def commit_later(db: AsyncSession):
    return db.commit()
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            if call.awaited:
                continue
            target = async_coroutine_call(ctx, call)
            if target is None:
                continue
            why = self._why(ctx, call)
            if why is not None:
                yield Hit(call.span, {"call": _call_text(call), "what": target[0], "why": why}, target[1], call.snippet)

    def _why(self, ctx: FunctionContext, call: CallSite) -> Optional[str]:
        fn = ctx.fn.summary
        if call.chain:
            return f"`.{call.chain[0]}()` is called on the coroutine (AttributeError)"
        if call.use == "discard":
            return "the coroutine is created and dropped, so the call never runs"
        if call.use == "return" and fn.is_async:
            return "this coroutine returns it, so the caller's `await` gets a coroutine, not the result"
        for b in fn.bindings:
            if b.kind == "assign" and b.value == ("c", call.func) and b.value_span == call.span:
                used = self._used_as_result(ctx, b)
                if used is not None:
                    return f"`{b.name}` holds the coroutine and `{used}` uses it as the result (AttributeError)"
        return None

    @staticmethod
    def _used_as_result(ctx: FunctionContext, binding) -> Optional[str]:
        flow = FunctionFlow(ctx.project, ctx.fid, lambda e: False)
        name = binding.name
        for read_name, attr, line, _span in flow.reads():
            if read_name == name and attr not in _COROUTINE_ATTRS and flow.binding_at(name, line) is binding:
                return f"{name}.{attr}"
        for c in ctx.fn.summary.calls:
            f = c.func
            if f and f[0] == "a" and f[1] == ("n", name) and f[2] not in _COROUTINE_ATTRS \
                    and flow.binding_at(name, c.span.line) is binding:
                return f"{name}.{f[2]}()"
        return None


class AwaitedSyncSessionMethod(Rule):
    """``await`` on an ``AsyncSession`` method that is not a coroutine (``add``, ``expunge``...).

    What it does:
        Finds ``await db.add(x)``, ``await db.add_all(xs)``, ``await db.expunge(x)``,
        ``await db.expire(x)``, ``await db.in_transaction()``... where ``db`` is an
        ``AsyncSession``.  ``begin()`` and ``begin_nested()`` are not reported: the
        transaction they return can be awaited.

    Why it matters:
        These methods stay synchronous on ``AsyncSession`` (they do no I/O) and return
        ``None`` or a plain value, so the ``await`` raises ``TypeError: object NoneType
        can't be used in 'await' expression``, after the call itself has run.

    Example:
        await db.add(order)
        await db.commit()

    Use instead:
        db.add(order)
        await db.commit()

    Fix safety:
        Removing the ``await`` is safe: the method does the same thing without it.
    """

    code = "ASM202"
    name = "awaited-sync-session-method"
    family = "post_migration"
    category = "post-migration"
    message = "`{call}` is not a coroutine on AsyncSession; awaiting it raises TypeError"
    severity = "always-blocks"
    examples = (
        Bad('''
from sqlalchemy.ext.asyncio import AsyncSession


async def create(db: AsyncSession, order):
    await db.add(order)
    await db.commit()
'''),
        Good('''
from sqlalchemy.ext.asyncio import AsyncSession


async def create(db: AsyncSession, order):
    db.add(order)
    await db.commit()
'''),
        Good('''
from sqlalchemy.ext.asyncio import AsyncSession


async def in_savepoint(db: AsyncSession, order):
    savepoint = await db.begin_nested()
    db.add(order)
    await savepoint.commit()
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            func = call.func
            if not call.awaited or not func or func[0] != "a" or func[2] not in _SYNC_ON_ASYNC_SESSION:
                continue
            evidence = async_session(ctx, func[1], func[2])
            if evidence is not None:
                yield Hit(call.span, {"call": _call_text(call)}, evidence, call.snippet)


class SessionSharedAcrossTasks(Rule):
    """One ``AsyncSession`` used by several concurrent tasks (``asyncio.gather``, task groups).

    What it does:
        Finds an ``asyncio.gather(...)`` whose awaitables use the same session: two
        calls on it (``gather(db.execute(a), db.execute(b))``), two calls that are
        given it (``gather(load_users(db), load_orders(db))``), or one such call in a
        comprehension (``gather(*[load(db, i) for i in ids])``).  The same for tasks of
        one ``asyncio.TaskGroup`` / ``anyio`` task group.  Sessions are matched by the
        expression that names them (``db``, ``self.db``), so two different sessions, or
        a session made per task, are not reported.

    Why it matters:
        An ``AsyncSession`` is not safe for concurrent use.  Concurrent ``execute``
        calls on a session that still needs a connection raise ``InvalidRequestError:
        This session is provisioning a new connection; concurrent operations are not
        permitted``; tasks that flush raise ``Session is already flushing``, after which
        ``close()`` can hang.  With a warm connection, reads *seem* to work: it depends
        on timing.

    Example:
        users, orders = await asyncio.gather(count_users(db), count_orders(db))

    Use instead:
        users = await count_users(db)
        orders = await count_orders(db)
        # or one session per task:
        async def count(fn):
            async with AsyncSessionLocal() as session:
                return await fn(session)
        users, orders = await asyncio.gather(count(count_users), count(count_orders))

    Fix safety:
        Running the calls one after another is always safe, and slower only by the
        overlap that was never safe.  One session per task changes transaction scope.
    """

    code = "ASM206"
    name = "session-shared-across-tasks"
    family = "post_migration"
    category = "post-migration"
    message = "`{session}` is used by several concurrent tasks of `{call}`; an AsyncSession allows one operation at a time"
    severity = "always-blocks"
    examples = (
        Bad('''
import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession


async def counts(db: AsyncSession):
    return await asyncio.gather(
        db.scalar(select(func.count()).select_from(User)),
        db.scalar(select(func.count()).select_from(Order)),
    )
'''),
        Good('''
import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

SessionLocal = async_sessionmaker(expire_on_commit=False)


async def count(model) -> int:
    async with SessionLocal() as db:
        return await db.scalar(select(func.count()).select_from(model))


async def counts():
    return await asyncio.gather(count(User), count(Order))
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        calls = ctx.fn.summary.calls
        for call in calls:
            if ctx.qualified_name(call) in _GATHER:
                used = gathered_sessions(ctx, call, self._sessions_of)
                for key, n in used.items():
                    if n >= 2:
                        yield Hit(call.span, {"session": receiver_text(key), "call": "asyncio.gather()"}, "",
                                  call.snippet)
                        break
        yield from self._task_groups(ctx)

    # ------------------------------------------------------------------ sessions an awaitable uses
    def _sessions_of(self, ctx: FunctionContext, call: CallSite) -> set:
        func = call.func
        out: set = set()
        if func and func[0] == "a" and func[2] in facts.ASYNC_SESSION_COROUTINES \
                and async_session(ctx, func[1], func[2]) is not None:
            out.add(func[1])
        for arg in (*call.args, *(v for _, v in call.kwargs)):
            if arg is not None and arg[0] in ("n", "a"):
                v = ctx.project.value(arg, ctx.fid)
                if v is not None and v[0] == "asession":
                    out.add(arg)
        return out

    # ------------------------------------------------------------------ task groups
    def _task_groups(self, ctx: FunctionContext) -> Iterator[Hit]:
        fn = ctx.fn.summary
        groups = []
        for b in fn.bindings:
            if b.kind == "with" and b.value and b.value[0] == "c":
                v = ctx.project.value(b.value[1], ctx.fid)
                if v is not None and v[0] == "ext" and v[1] in _TASK_GROUPS:
                    groups.append(b.name)
        for group in dict.fromkeys(groups):
            seen: Counter = Counter()
            reported: set = set()
            for call in fn.calls:
                f = call.func
                if not f or f[0] != "a" or f[1] != ("n", group) or f[2] not in _TASK_METHODS or not call.args:
                    continue
                keys: set = set()
                if f[2] == "create_task":
                    inner = self._argument_call(ctx, call, call.args[0])
                    if inner is not None:
                        keys = self._sessions_of(ctx, inner)
                else:  # start_soon(fn, *args): the session is one of the args
                    for arg in call.args[1:]:
                        if arg is not None and arg[0] in ("n", "a"):
                            v = ctx.project.value(arg, ctx.fid)
                            if v is not None and v[0] == "asession":
                                keys.add(arg)
                for key in keys:
                    seen[key] += 1
                    if seen[key] == 2 and key not in reported:
                        reported.add(key)
                        yield Hit(call.span, {"session": receiver_text(key), "call": f"{group}.{f[2]}()"}, "",
                                  call.snippet)

    @staticmethod
    def _argument_call(ctx: FunctionContext, outer: CallSite, arg: Expr) -> Optional[CallSite]:
        if arg is None or arg[0] != "c":
            return None
        return next((c for c in calls_within(ctx.fn.summary.calls, outer.span)
                     if c is not outer and ("c", c.func) == arg), None)


def gathered_sessions(ctx: FunctionContext, gather: CallSite,
                      sessions_of: Callable[[FunctionContext, CallSite], set]) -> Counter:
    """How many of ``gather``'s concurrent awaitables use each session, by the expression that names it
    (``sessions_of(ctx, awaitable call)`` says which sessions one awaitable uses); one call in a comprehension
    (``gather(*[load(db, i) for i in ids])``) counts twice: one task per item."""
    inside = [c for c in calls_within(ctx.fn.summary.calls, gather.span) if c is not gather]
    claimed: set[int] = set()
    used: Counter = Counter()
    starred = False
    for arg in gather.args:
        if arg is None:
            starred = True  # ``*[...]``, ``*(... for ...)``: read below
            continue
        if arg[0] != "c":
            continue
        sub = next((c for i, c in enumerate(inside) if i not in claimed and ("c", c.func) == arg), None)
        if sub is None:
            continue
        claimed.add(inside.index(sub))
        # the awaitable's own calls (its arguments' calls included) belong to it
        for i, c in enumerate(inside):
            if within(c.span, sub.span):
                claimed.add(i)
        for key in sessions_of(ctx, sub):
            used[key] += 1
    if starred:
        comps = [b.scope for b in ctx.fn.summary.bindings
                 if b.kind == "comp" and b.scope is not None and within(b.scope, gather.span)]
        for i, c in enumerate(inside):
            if i in claimed or c.inner or not any(within(c.span, s) for s in comps):
                continue
            for key in sessions_of(ctx, c):
                used[key] += 2  # one call in a comprehension: one task per item
    return used
