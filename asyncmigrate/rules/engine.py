"""Sync engine and session factory (ASM140-ASM144).

The sync engine and ``sessionmaker`` are Phase 1 of the migration: the async
engine (``create_async_engine`` with an async driver) and
``async_sessionmaker(..., expire_on_commit=False)`` are added beside them and
the sync pair stays until nothing uses it.  ``metadata.create_all`` and
engine I/O (``connect``, ``begin``, ``dispose``) block where they run on the
loop (startup handlers, lifespans).
"""

from __future__ import annotations

from typing import Iterator

from .. import facts
from ..analysis.handoff import facade_functions, facade_spans
from .base import Bad, FunctionContext, Good, Hit, Rule

_ENGINE_IO = frozenset({"connect", "begin", "execute", "raw_connection"})


class SyncEngine(Rule):
    """``create_engine(...)``: a sync engine, where an async one is needed.

    What it does:
        Finds sync engine construction (``sqlalchemy.create_engine``, ``sqlmodel.create_engine``).

    Why it matters:
        Every session bound to it is sync.  ``create_async_engine`` needs an async
        driver: ``sqlite+aiosqlite``, ``postgresql+asyncpg``, ``mysql+aiomysql``.

    Example:
        engine = create_engine(DATABASE_URL, pool_size=30, max_overflow=20)

    Use instead:
        async_engine = create_async_engine(async_url(DATABASE_URL), pool_size=30, max_overflow=20)

    Fix safety:
        ``fix`` adds the async engine beside the sync one, keeping pool settings and
        dropping arguments the async engine rejects (``encoding``, ``future=False``).
    """

    code = "ASM140"
    name = "sync-engine"
    family = "engine"
    category = "engine"
    message = "`{call}` creates a sync engine"
    severity = "debt"
    examples = (
        Bad('''
from sqlalchemy import create_engine

engine = create_engine("sqlite:///app.db")
'''),
        Good('''
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine("sqlite+aiosqlite:///app.db")
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            if ctx.qualified_name(call) in facts.SYNC_ENGINE_FACTORIES:
                yield Hit(call.span, {"call": "create_engine()"}, "", call.snippet)


class SyncSessionmaker(Rule):
    """``sessionmaker(...)`` / ``scoped_session(...)``: a factory of sync sessions.

    What it does:
        Finds sync session factory construction.

    Why it matters:
        Sessions it makes are sync.  ``async_sessionmaker`` must also set
        ``expire_on_commit=False``: with the default, reading an attribute after
        ``await db.commit()`` raises ``MissingGreenlet``.

    Example:
        SessionLocal = sessionmaker(bind=engine, autocommit=False, autoflush=False)

    Use instead:
        AsyncSessionLocal = async_sessionmaker(async_engine, expire_on_commit=False, autoflush=False)

    Fix safety:
        Added beside the sync factory, which stays for the transition.
    """

    code = "ASM141"
    name = "sync-sessionmaker"
    family = "engine"
    category = "engine"
    message = "`{call}` makes sync sessions"
    severity = "debt"
    examples = (
        Bad('''
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker(autocommit=False, autoflush=False)
'''),
        Good('''
from sqlalchemy.ext.asyncio import async_sessionmaker

AsyncSessionLocal = async_sessionmaker(expire_on_commit=False)
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            qn = ctx.qualified_name(call)
            if qn in facts.SYNC_SESSIONMAKERS and not ctx.project.makes_async_sessions(ctx.project.made_class(call),
                                                                                       ctx.fid):
                yield Hit(call.span, {"call": qn.rsplit(".", 1)[-1] + "()"}, "", call.snippet)


class MetadataCreateAll(Rule):
    """``Base.metadata.create_all(bind=engine)``: DDL through the sync engine.

    What it does:
        Finds ``metadata.create_all`` / ``drop_all``.

    Why it matters:
        In an ``async def`` startup handler or lifespan it blocks the loop while the
        tables are created; with only an async engine it needs ``run_sync``.

    Example:
        Base.metadata.create_all(bind=engine)

    Use instead:
        async with async_engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    Fix safety:
        Rewritten where it runs on the loop; module-level calls stay (the sync
        engine still exists) and are reported.  Code handed to an async
        connection's ``run_sync`` (a lambda, a local ``def``, any function) is
        the migrated form already: it is not reported.
    """

    code = "ASM143"
    name = "sync-create-all"
    family = "engine"
    category = "engine"
    message = "`{call}` runs DDL through the sync engine"
    examples = (
        Bad('''
from sqlalchemy.orm import declarative_base

Base = declarative_base()


async def startup(engine):
    Base.metadata.create_all(bind=engine)
'''),
        Good('''
async def startup(async_engine, Base):
    async with async_engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
'''),
        Good('''
async def startup(async_engine, Base):
    async with async_engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: Base.metadata.create_all(sync_conn, checkfirst=True))
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        if ctx.fid in facade_functions(ctx.project):
            return  # ``await conn.run_sync(fn)``: fn's DDL goes through the async connection already
        facade = facade_spans(ctx.project, ctx.fid)
        for call in ctx.fn.summary.calls:
            func = call.func
            if (
                func and func[0] == "a" and func[2] in ("create_all", "drop_all") and not call.awaited
                and func[1] and func[1][0] == "a" and func[1][2] == "metadata" and call.span not in facade
            ):
                yield Hit(call.span, {"call": f"metadata.{func[2]}()"}, "", call.snippet)


class SyncEngineIO(Rule):
    """``engine.connect()`` / ``engine.begin()`` / ``engine.execute()`` / ``inspect(engine)`` on a sync engine, on the loop.

    What it does:
        Finds I/O on a sync engine inside code that runs on the event loop, including
        ``sqlalchemy.inspect(engine)``, whose Inspector connects to reflect the schema.

    Why it matters:
        Connecting, reflecting, running DDL or disposing the pool blocks the loop.

    Example:
        with engine.connect() as conn: conn.execute(text("SELECT 1"))

    Use instead:
        async with async_engine.connect() as conn: await conn.execute(text("SELECT 1"))

    Fix safety:
        Reported.  (``engine.dispose()`` at shutdown is not flagged: it only closes
        pooled connections, and the sync engine is disposed beside the async one
        while it exists.)
    """

    code = "ASM144"
    name = "sync-engine-io"
    family = "engine"
    category = "engine"
    message = "`{call}` does sync engine I/O on the event loop"
    severity = "loop-only"
    examples = (
        Bad('''
from sqlalchemy import create_engine

engine = create_engine("sqlite://")


async def health():
    with engine.connect() as conn:
        return conn
''', also=("ASM140",)),
        Bad('''
from sqlalchemy import create_engine, inspect

engine = create_engine("sqlite://")


async def tables():
    return inspect(engine).get_table_names()
''', also=("ASM140",)),
        Good('''
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")


async def health():
    async with engine.connect() as conn:
        return conn
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            func = call.func
            if func and func[0] in ("n", "a") and call.args and not call.awaited and self._inspects_engine(ctx, call):
                yield Hit(call.span, {"call": call.snippet or "inspect(engine)"}, "", call.snippet)
                continue
            if not func or func[0] != "a" or func[2] not in _ENGINE_IO or call.awaited:
                continue
            v = ctx.project.value(func[1], ctx.fid)
            if v is not None and v[0] == "engine":
                yield Hit(call.span, {"call": call.snippet or f"engine.{func[2]}()"}, "", call.snippet)

    @staticmethod
    def _inspects_engine(ctx: FunctionContext, call) -> bool:
        """``inspect(engine)`` (``sqlalchemy.inspect``) on a sync engine: the Inspector connects to reflect."""
        target = ctx.project.value(call.func, ctx.fid)
        if target is None or target[0] != "ext" or target[1] not in facts.INSPECT_FUNCTIONS:
            return False
        v = ctx.project.value(call.args[0], ctx.fid)
        return v is not None and v[0] == "engine"
