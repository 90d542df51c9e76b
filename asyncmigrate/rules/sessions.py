"""Session sources (ASM101-ASM104): where sync sessions enter the code.

Every sync ``Session`` that code uses comes from a dependency
(``Depends(get_db)``), an annotated parameter, a factory call
(``SessionLocal()``) or ``next(get_db())``.  These are the places the
migration changes first: each becomes ``AsyncSession`` /
``Depends(get_async_db)`` / ``async with AsyncSessionLocal()``.
"""

from __future__ import annotations

from typing import Iterator

from .. import facts
from ..analysis.sessions import is_session
from ._session_calls import receiver_text
from .base import Bad, FunctionContext, Good, Hit, Rule

_DB = '''
from fastapi import Depends, FastAPI
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine("sqlite:///app.db")
SessionLocal = sessionmaker(bind=engine)


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


app = FastAPI()
'''


class SyncSessionDependency(Rule):
    """A route or dependency parameter receives a sync ``Session`` from ``Depends(...)``.

    What it does:
        Finds parameters whose value comes from a dependency that yields a sync
        SQLAlchemy ``Session`` (``db: Session = Depends(get_db)``, or an
        ``Annotated[Session, Depends(get_db)]`` alias such as ``SessionDep``).

    Why it matters:
        FastAPI runs the sync ``get_db`` in a worker thread, but an ``async def``
        route then uses that session on the event loop: every query blocks every
        other request.  In a ``def`` route the same parameter is migration debt.

    Example:
        async def read_user(user_id: int, db: Session = Depends(get_db)): ...

    Use instead:
        async def read_user(user_id: int, db: AsyncSession = Depends(get_async_db)): ...

    Fix safety:
        ``fix`` swaps the dependency and the annotation only together with the
        body's queries and awaits, so the route never holds an ``AsyncSession``
        it uses synchronously.
    """

    code = "ASM101"
    name = "sync-session-dependency"
    family = "sessions"
    category = "session-dependency"
    message = "`{param}` receives a sync Session from `Depends({dependency})`"
    examples = (
        Bad(_DB + '''

@app.get("/users/{user_id}")
async def read_user(user_id: int, db: Session = Depends(get_db)):
    return {"id": user_id}
''', also=("ASM103", "ASM120", "ASM140", "ASM141")),
        Good('''
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from app.database import get_async_db

app = FastAPI()


@app.get("/users/{user_id}")
async def read_user(user_id: int, db: AsyncSession = Depends(get_async_db)):
    return {"id": user_id}
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for p in ctx.fn.summary.params:
            if p.span is None:
                continue
            v = ctx.project.param_value(ctx.fid, p)
            if is_session(v) and v[1] == "dependency":
                dep = p.depends[2] if p.depends else None
                yield Hit(p.span, {"param": p.name, "dependency": receiver_text(dep) if dep else receiver_text(p.annotation)},
                          "dependency", f"{p.name}:{receiver_text(p.annotation)}={receiver_text(dep)}")


class SyncSessionAnnotation(Rule):
    """A parameter is annotated as a sync ``Session``.

    What it does:
        Finds function parameters annotated ``Session`` (SQLAlchemy or SQLModel)
        that do not come from ``Depends(...)``: service functions and methods that
        are handed a session by their callers.

    Why it matters:
        These functions do the actual queries.  Reached from ``async def`` code they
        block the loop; each must take an ``AsyncSession`` and become ``async def``.

    Example:
        def list_orders(db: Session, user_id: int): ...

    Use instead:
        async def list_orders(db: AsyncSession, user_id: int): ...

    Fix safety:
        Safe together with the body's rewrite and the callers' ``await``.
    """

    code = "ASM102"
    name = "sync-session-annotation"
    family = "sessions"
    category = "session-dependency"
    message = "`{param}` is annotated as a sync `Session`"
    examples = (
        Bad('''
from sqlalchemy.orm import Session


def count_users(db: Session) -> int:
    return 0
'''),
        Good('''
from sqlalchemy.ext.asyncio import AsyncSession


async def count_users(db: AsyncSession) -> int:
    return 0
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for p in ctx.fn.summary.params:
            if p.span is None:
                continue
            v = ctx.project.param_value(ctx.fid, p)
            if is_session(v) and v[1] == "annotation":
                yield Hit(p.span, {"param": p.name}, "annotation", f"{p.name}:{receiver_text(p.annotation)}")


class SyncSessionFactoryCall(Rule):
    """Code builds a sync session itself: ``SessionLocal()`` or ``Session(engine)``.

    What it does:
        Finds calls of a sync session factory (a ``sessionmaker`` result, a
        ``scoped_session`` or the ``Session`` class), in plain statements and in
        ``with SessionLocal() as db:``.

    Why it matters:
        Background tasks and scripts that build their own sessions are where long
        data-sync jobs run; inside ``async def`` they hold the event loop for the
        whole job.

    Example:
        async def run_sync_job(job_id: int):
            db = SessionLocal()

    Use instead:
        async def run_sync_job(job_id: int):
            async with AsyncSessionLocal() as db: ...

    Fix safety:
        ``fix`` rewrites the construction and the session's uses in the same
        function; a session handed to code that must stay sync is reported.
    """

    code = "ASM103"
    name = "sync-session-construction"
    family = "sessions"
    category = "session-factory"
    message = "`{call}` builds a sync Session"
    examples = (
        Bad('''
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker(bind=create_engine("sqlite://"))


async def nightly_job():
    with SessionLocal() as db:
        pass
''', also=("ASM140", "ASM141")),
        Good('''
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

AsyncSessionLocal = async_sessionmaker(create_async_engine("sqlite+aiosqlite://"), expire_on_commit=False)


async def nightly_job():
    async with AsyncSessionLocal() as db:
        pass
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            target = ctx.resolve(call)
            if target is None:
                continue
            # ``scoped_session(...)`` builds a registry (a factory), not a session: that is ASM141
            if target[0] == "factory" or (target[0] == "ext" and target[1] in facts.SYNC_SESSION_TYPES
                                          and target[1] not in facts.SYNC_SESSIONMAKERS):
                yield Hit(call.span, {"call": receiver_text(call.func) + "()"}, "factory", call.snippet)


class NextOfSessionDependency(Rule):
    """``next(get_db())``: a dependency generator driven by hand.

    What it does:
        Finds ``next(...)`` over a generator that yields a sync session.

    Why it matters:
        The session is never closed (the generator's ``finally`` does not run) and
        it is a sync session used wherever the caller runs, often on the loop.

    Example:
        db = next(get_db())

    Use instead:
        async with AsyncSessionLocal() as db: ...

    Fix safety:
        Rewritten to ``async with`` only where the session's whole use is in the
        function; otherwise reported.
    """

    code = "ASM104"
    name = "next-of-session-dependency"
    family = "sessions"
    category = "session-factory"
    message = "`next({call})` drives a sync session dependency by hand"
    examples = (
        Bad(_DB + '''

async def report():
    db = next(get_db())
    return db
''', also=("ASM103", "ASM120", "ASM140", "ASM141")),
        Good('''
def numbers():
    yield 1


def first():
    return next(numbers())
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            if call.func != ("n", "next") or not call.args:
                continue
            arg = call.args[0]
            if not arg or arg[0] != "c":
                continue
            v = ctx.project.value(("next", arg), ctx.fid)
            if is_session(v):
                yield Hit(call.span, {"call": receiver_text(arg)}, "provider", call.snippet)
