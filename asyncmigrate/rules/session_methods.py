"""Session methods on a sync session (ASM120-ASM122).

ASM120: methods that do I/O and become coroutines on ``AsyncSession``
(``commit``, ``rollback``, ``flush``, ``refresh``, ``merge``, ``delete``,
``close``...).  ASM121: ``add``/``add_all``/``expunge``, which do no I/O and
stay sync on ``AsyncSession`` (counted as migration surface, always debt).
ASM122: the 2.0-style ``execute``/``scalar``/``scalars``/``get`` on a *sync*
session, which block exactly like ``query``.  The method lists come from
``facts.py`` (verified with ``inspect.iscoroutinefunction``).
"""

from __future__ import annotations

from typing import Iterator

from .. import facts
from .base import Bad, FunctionContext, Good, Hit, Rule
from ._session_calls import receiver_text, sync_session_calls

_IO_METHODS = facts.SYNC_BLOCKING_SESSION_METHODS - facts.SYNC_20_STYLE_METHODS


class BlockingSessionMethod(Rule):
    """A sync session method that does I/O: ``commit``, ``rollback``, ``flush``, ``refresh``...

    What it does:
        Finds ``commit``, ``rollback``, ``flush``, ``refresh``, ``merge``, ``delete``,
        ``close`` and the bulk methods on a sync session.

    Why it matters:
        Each one talks to the database synchronously.  On ``AsyncSession`` they are
        coroutines: calling one without ``await`` silently does nothing
        (``RuntimeWarning: coroutine 'AsyncSession.commit' was never awaited``).

    Example:
        db.commit()

    Use instead:
        await db.commit()

    Also ``remove()`` on a ``scoped_session`` registry (``Session.remove()`` at the end of a request or
    task), which closes the registry's current session: ``await`` it on ``async_scoped_session``.

    Fix safety:
        ``fix`` awaits exactly the methods that are coroutines on ``AsyncSession``.
    """

    code = "ASM120"
    name = "blocking-session-method"
    family = "session_methods"
    category = "session-method"
    message = "`{receiver}.{method}()` blocks on a sync Session"
    examples = (
        Bad('''
from sqlalchemy.orm import Session


async def rename(db: Session, user, name: str):
    user.name = name
    db.commit()
''', fixed='''
from sqlalchemy.orm import Session


async def rename(db: AsyncSession, user, name: str):
    user.name = name
    await db.commit()
''', also=("ASM102",)),
        Good('''
from sqlalchemy.ext.asyncio import AsyncSession


async def rename(db: AsyncSession, user, name: str):
    user.name = name
    await db.commit()
'''),
        Good('''
async def close_all(files):
    for f in files:
        f.close()
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call, method, evidence in sync_session_calls(ctx, _IO_METHODS):
            yield Hit(call.span, {"receiver": receiver_text(call.func[1]), "method": method}, evidence, call.snippet)
        # ``Session.remove()`` on a ``scoped_session`` registry closes its current session (a coroutine on
        # ``async_scoped_session``); a registry is a factory value, and ``sessionmaker`` has no ``remove``
        for call in ctx.fn.summary.calls:
            func = call.func
            if func and func[0] == "a" and func[2] in facts.SCOPED_REGISTRY_IO_METHODS and not call.awaited:
                v = ctx.receiver_of(call)
                if v is not None and v[0] == "factory":
                    yield Hit(call.span, {"receiver": receiver_text(func[1]), "method": func[2]}, "factory",
                              call.snippet)


class SessionAddOnSyncSession(Rule):
    """``add``/``add_all``/``expunge`` on a sync session: no I/O, but part of the migration.

    What it does:
        Counts the session methods that stay synchronous on ``AsyncSession``.

    Why it matters:
        ``add`` only stages an object: the call itself does no I/O (the ``commit`` or
        ``flush`` that follows does).  Its severity still says where it runs, like
        every finding, so per-file counts match a hand inventory.  It matters because
        the migration must **not** await it: ``await db.add(x)`` raises ``TypeError:
        object NoneType can't be used in 'await' expression``.

    Example:
        db.add(order)

    Use instead:
        db.add(order)   # unchanged on AsyncSession; the following commit is awaited

    Fix safety:
        Nothing to rewrite; listed so counts match a hand inventory.
    """

    code = "ASM121"
    name = "session-add"
    family = "session_methods"
    category = "session-method"
    message = "`{receiver}.{method}()` on a sync Session (no I/O itself; stays sync on AsyncSession)"
    examples = (
        Bad('''
from sqlalchemy.orm import Session


def create(db: Session, obj):
    db.add(obj)
''', also=("ASM102",)),
        Good('''
from sqlalchemy.ext.asyncio import AsyncSession


async def create(db: AsyncSession, obj):
    db.add(obj)
    await db.commit()
'''),
        Good('''
def collect(seen: set, db):
    db.add(1)
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call, method, evidence in sync_session_calls(ctx, facts.SYNC_NON_IO_SESSION_METHODS):
            yield Hit(call.span, {"receiver": receiver_text(call.func[1]), "method": method}, evidence, call.snippet)


class SyncExecute(Rule):
    """2.0-style ``execute``/``scalar``/``scalars``/``get`` on a *sync* session.

    What it does:
        Finds 2.0-style statement execution on a sync ``Session`` (and SQLModel's
        ``exec``).

    Why it matters:
        Code already written with ``select()`` still blocks when the session is
        sync.  On ``AsyncSession`` these are coroutines and need ``await`` and
        parentheses before chaining: ``(await db.execute(stmt)).scalars().all()``.

    Example:
        users = db.scalars(select(User)).all()

    Use instead:
        users = (await db.scalars(select(User))).all()

    Fix safety:
        ``fix`` adds the ``await`` and the parentheses; the statement is unchanged.
    """

    code = "ASM122"
    name = "sync-execute"
    family = "session_methods"
    category = "session-method"
    message = "`{receiver}.{method}()` executes on a sync Session"
    examples = (
        Bad('''
from sqlalchemy import select
from sqlalchemy.orm import Session


async def names(db: Session):
    return db.scalars(select(User.name)).all()
''', fixed='''
from sqlalchemy import select
from sqlalchemy.orm import Session


async def names(db: AsyncSession):
    return (await db.scalars(select(User.name))).all()
''', also=("ASM102",)),
        Good('''
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession


async def names(db: AsyncSession):
    return (await db.scalars(select(User.name))).all()
'''),
        Good('''
def lookup(cache: dict, key):
    return cache.get(key)
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call, method, evidence in sync_session_calls(ctx, facts.SYNC_20_STYLE_METHODS):
            yield Hit(call.span, {"receiver": receiver_text(call.func[1]), "method": method}, evidence, call.snippet)
