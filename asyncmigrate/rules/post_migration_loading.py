"""Post-migration loading mistakes (ASM203, ASM204, ASM205).

Under ``AsyncSession`` an attribute that needs I/O to be read raises instead of
loading (SQLALCHEMY_ASYNC.md §4):

* ASM203: a lazy relationship read on an object from an awaited query that did
  not load it (``MissingGreenlet``);
* ASM204: ``joinedload`` of a collection, with the result read without
  ``.unique()`` (``InvalidRequestError``);
* ASM205: an async session factory left at ``expire_on_commit=True``, so every
  attribute read after ``await db.commit()`` raises ``MissingGreenlet``.

Mapped classes, relationships and statements come from ``analysis/orm.py``.
ASM203 and ASM204 read only what one function shows and stay quiet whenever a
part is not visible: they prefer a missed finding to a wrong one.
"""

from __future__ import annotations

from typing import Iterator, Optional

from .. import facts
from ..analysis.orm import FunctionFlow, Statement, orm_index, statement_of, within
from ..model import Binding, CallSite
from ._async_calls import async_session
from ._session_calls import receiver_text
from .base import Bad, FunctionContext, Good, Hit, Rule

#: ``Result`` / ``ScalarResult`` methods that raise on a joined-collection result without ``unique()``
#: (checked on SQLAlchemy 2.1.9: ``first()`` and ``scalar()`` do not raise)
_RAISING_READS = frozenset({"all", "fetchall", "fetchmany", "fetchone", "one", "one_or_none", "scalar_one",
                            "scalar_one_or_none", "partitions", "__iter__"})
_SAFE_READS = frozenset({"first", "scalar"})
_RESULT_VIEWS = frozenset({"scalars", "mappings", "tuples", "columns"})
#: session methods whose awaited value is a result ``unique()`` applies to
_RESULT_METHODS = {"execute": "result", "scalars": "entities"}
#: session classes and factories whose sessions are async (scoped registries take a factory: no kwargs)
_ASYNC_FACTORIES = frozenset(q for q in facts.ASYNC_SESSIONMAKERS if "scoped" not in q)
_ASYNC_SESSION_CLASSES = frozenset(q for q in facts.ASYNC_SESSION_TYPES if "scoped" not in q)
_SYNC_FACTORIES = frozenset(q for q in facts.SYNC_SESSIONMAKERS if "scoped" not in q)
_EXPIRE = "expire_on_commit"
#: session coroutines that load entities into the identity map
_LOADING_METHODS = frozenset({"get", "get_one", "scalar", "scalars", "execute"})
#: session methods after which an object loaded earlier no longer has its relationships in memory
_FORGETTING = frozenset({"expire", "expire_all", "expunge", "expunge_all", "rollback", "close", "reset", "invalidate"})


def _flow(ctx: FunctionContext) -> FunctionFlow:
    flow = ctx.__dict__.get("_flow")
    if flow is None:
        flow = ctx.__dict__["_flow"] = FunctionFlow(ctx.project, ctx.fid, lambda e: async_session(ctx, e) is not None)
    return flow


def _statement(ctx: FunctionContext, call: CallSite) -> Statement:
    memo = ctx.__dict__.setdefault("_statements", {})
    key = id(call)
    if key not in memo:
        memo[key] = statement_of(ctx.project, ctx.fid, call)
    return memo[key]


def _class_name(cid: str) -> str:
    return cid.rsplit(":", 1)[-1]


class LazyRelationshipAfterAsyncQuery(Rule):
    """A lazy relationship read on an object loaded by an async query that did not load it.

    What it does:
        Follows, inside one function, objects that come out of an awaited session call
        (``await db.get(User, id)``, ``(await db.execute(select(User)...)).scalars().first()``,
        ``await db.scalar(...)``, or a ``for`` loop / comprehension over
        ``(await db.scalars(...)).all()``), and finds reads of one of their
        relationships (``user.addresses``) when the relationship loads lazily (no
        ``lazy="selectin"``/``"joined"``/``"subquery"``/``"immediate"`` on the
        ``relationship()``) and the query does not name it in a loader option
        (``selectinload``, ``joinedload``, ``subqueryload``..., or
        ``options=[...]`` on ``get``).

        It is conservative and prefers a missed finding to a wrong one: it stays quiet
        when the statement is built out of sight (a helper, a module constant,
        ``.options(*LOADS)``), when the selected entity is not one mapped class of the
        project, when the object goes through another function, when ``refresh`` is
        given attribute names for it, when the read runs inside ``run_sync``, and when an
        earlier query in the function, on the same session, loaded that relationship for
        that class (the identity map then returns the loaded object) with no ``expire``,
        ``expunge`` or ``rollback`` in between.  It does not follow branches: the
        assignment closest above the read counts.

    Why it matters:
        A lazy load is I/O, and ``AsyncSession`` cannot do I/O behind an attribute
        access: ``MissingGreenlet: greenlet_spawn has not been called; can't call
        await_only() here`` (on SQLAlchemy 2.1 wrapped in a ``StatementError``, so
        ``except MissingGreenlet`` misses it).  In a route it becomes an HTTP 500.

    Example:
        user = await db.get(User, user_id)
        emails = [a.email for a in user.addresses]

    Use instead:
        user = await db.get(User, user_id, options=[selectinload(User.addresses)])
        emails = [a.email for a in user.addresses]

    Fix safety:
        Adding ``selectinload(...)`` to the query is safe and costs one query.
        ``fix`` instead sets ``lazy="selectin"`` on relationships that converted code
        reads, which loads them with every query of the parent.
    """

    code = "ASM203"
    name = "lazy-relationship-after-async-query"
    family = "post_migration"
    category = "post-migration"
    message = "`{read}` lazy-loads `{relationship}`, which `{call}` did not load: MissingGreenlet under AsyncSession"
    severity = "always-blocks"
    examples = (
        Bad('''
from sqlalchemy import ForeignKey
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    addresses: Mapped[list["Address"]] = relationship(back_populates="user")


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped["User"] = relationship(back_populates="addresses")


async def emails(db: AsyncSession, user_id: int) -> list[str]:
    user = await db.get(User, user_id)
    return [a.email for a in user.addresses]
'''),
        Good('''
from sqlalchemy import ForeignKey
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    addresses: Mapped[list["Address"]] = relationship(back_populates="user")


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped["User"] = relationship(back_populates="addresses")


async def emails(db: AsyncSession, user_id: int) -> list[str]:
    user = await db.get(User, user_id, options=[selectinload(User.addresses)])
    return [a.email for a in user.addresses]
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        fn = ctx.fn.summary
        if not fn.bindings or not fn.attribute_reads:
            return
        orm = orm_index(ctx.project)
        if not orm.relationships:
            return
        flow = _flow(ctx)
        refreshed = self._refreshed(fn.calls)
        in_run_sync = [c.span for c in fn.calls if c.func and c.func[0] == "a" and c.func[2] == "run_sync"]
        reported: set[tuple[int, str]] = set()
        for name, attr, line, span in flow.reads():
            if name in refreshed or any(within(span, s) for s in in_run_sync):
                continue
            b = flow.binding_at(name, line)
            if b is None or (id(b), attr) in reported:
                continue
            loaded = flow.bound(b)
            if loaded is None or loaded.kind != "entity":
                continue
            st = _statement(ctx, loaded.call)
            cid = st.entity
            if st.opaque or cid is None or attr in st.loaded:
                continue
            rel = orm.relationship(cid, attr)
            if rel is None or not rel.lazy_select or self._in_identity_map(ctx, loaded.call, cid, attr):
                continue
            reported.add((id(b), attr))
            session = loaded.call.func[1]
            yield Hit(span, {"read": f"{name}.{attr}", "relationship": f"{_class_name(rel.cls)}.{attr}",
                             "call": f"{receiver_text(session)}.{loaded.call.func[2]}()"},
                      async_session(ctx, session) or "", f"{name}.{attr}")

    @staticmethod
    def _in_identity_map(ctx: FunctionContext, call: CallSite, cid: str, attr: str) -> bool:
        """An earlier query on the same session loaded ``cid.attr`` (or may have): the identity map hands
        the already-loaded object back, unless the session expired or dropped objects in between."""
        session = call.func[1]
        earlier = [c for c in ctx.fn.summary.calls if c.awaited and c.func and c.func[0] == "a"
                   and c.func[1] == session and c.func[2] in _LOADING_METHODS
                   and (c.span.line, c.span.column) < (call.span.line, call.span.column)]
        for c in earlier:
            st = _statement(ctx, c)
            if not (st.opaque or (cid in st.entities and attr in st.loaded)):
                continue
            forgotten = any(f.func and f.func[0] == "a" and f.func[1] == session and f.func[2] in _FORGETTING
                            and (c.span.line, c.span.column) < (f.span.line, f.span.column)
                            < (call.span.line, call.span.column) for f in ctx.fn.summary.calls)
            if not forgotten:
                return True
        return False

    @staticmethod
    def _refreshed(calls) -> set[str]:
        """Names given to ``refresh(obj, attribute_names)``: those attributes are loaded."""
        out = set()
        for c in calls:
            f = c.func
            if f and f[0] == "a" and f[2] == "refresh" and c.args and c.args[0] and c.args[0][0] == "n" \
                    and (len(c.args) > 1 or any(k == "attribute_names" for k, _ in c.kwargs)):
                out.add(c.args[0][1])
        return out


class JoinedCollectionWithoutUnique(Rule):
    """``joinedload`` of a collection, with the result read without ``.unique()``.

    What it does:
        Finds awaited ``execute``/``scalars`` calls on an ``AsyncSession`` whose statement
        (inline, or assigned to a local name in the same function) has
        ``joinedload(Parent.children)`` of a relationship known to be a collection, and
        whose result is then read with ``all()``, ``one()``, ``scalar_one()``,
        ``fetchall()``... or iterated, without ``.unique()`` first.

        A relationship counts as a collection only on evidence: ``uselist=True``, a
        ``Mapped[list[...]]``-style annotation, ``secondary=``, a ``ForeignKey`` on the
        other table pointing back, or a ``back_populates`` partner that is many-to-one.
        ``first()`` and ``scalar()`` do not raise and are not reported; a result that is
        returned or passed on is not followed.

    Why it matters:
        A joined eager load repeats the parent row once per child, so SQLAlchemy refuses
        to return entities from it un-deduplicated: ``InvalidRequestError: The unique()
        method must be invoked on this Result, as it contains results that include
        joined eager loads against collections``.  The legacy ``Query`` de-duplicated
        silently, so code migrated from it breaks here.

    Example:
        stmt = select(User).options(joinedload(User.addresses))
        users = (await db.execute(stmt)).scalars().all()

    Use instead:
        stmt = select(User).options(joinedload(User.addresses))
        users = (await db.execute(stmt)).unique().scalars().all()
        # or: selectinload(User.addresses), which needs no unique()

    Fix safety:
        Adding ``.unique()`` is safe: it de-duplicates entities by identity, which is
        what the legacy ``Query`` did.
    """

    code = "ASM204"
    name = "joined-collection-without-unique"
    family = "post_migration"
    category = "post-migration"
    message = ("`{relationship}` is a collection loaded with joinedload, and `{call}` is read with {read} "
               "without `.unique()`: InvalidRequestError")
    severity = "always-blocks"
    examples = (
        Bad('''
from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    addresses: Mapped[list["Address"]] = relationship(back_populates="user")


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped["User"] = relationship(back_populates="addresses")


async def users_with_addresses(db: AsyncSession) -> list[User]:
    stmt = select(User).options(joinedload(User.addresses))
    return (await db.execute(stmt)).scalars().all()
'''),
        Good('''
from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    addresses: Mapped[list["Address"]] = relationship(back_populates="user")


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped["User"] = relationship(back_populates="addresses")


async def users_with_addresses(db: AsyncSession) -> list[User]:
    stmt = select(User).options(joinedload(User.addresses))
    return (await db.execute(stmt)).unique().scalars().all()


async def addresses_with_user(db: AsyncSession) -> list[Address]:
    return (await db.scalars(select(Address).options(joinedload(Address.user)))).all()
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        fn = ctx.fn.summary
        orm = None
        for call in fn.calls:
            func = call.func
            if not call.awaited or not func or func[0] != "a" or func[2] not in _RESULT_METHODS:
                continue
            if async_session(ctx, func[1], func[2]) is None:
                continue
            if orm is None:
                orm = orm_index(ctx.project)
                if not orm.relationships:
                    return
            st = _statement(ctx, call)
            collections = []
            for owner, rel_name in st.joined:
                cid = owner or st.entity
                rel = orm.relationship(cid, rel_name) if cid else None
                if rel is not None and rel.collection is True:
                    collections.append(rel)
            if not collections:
                continue
            read = self._unsafe_read(ctx, call)
            if read is None:
                continue
            rel = collections[0]
            yield Hit(call.span, {"relationship": f"{_class_name(rel.cls)}.{rel.name}",
                                  "call": f"{receiver_text(func[1])}.{func[2]}()",
                                  "read": "iteration" if read == "__iter__" else f"`.{read}()`"},
                      async_session(ctx, func[1], func[2]) or "", call.snippet)

    # ------------------------------------------------------------------ how the result is read
    def _unsafe_read(self, ctx: FunctionContext, call: CallSite) -> Optional[str]:
        """The first read of ``call``'s awaited result that raises without ``unique()``; None if none is seen."""
        for methods in self._reads(ctx, call):
            read = self._first_unsafe(methods)
            if read is not None:
                return read
        return None

    @staticmethod
    def _first_unsafe(methods: tuple[str, ...]) -> Optional[str]:
        for m in methods:
            if m == "unique" or m in _SAFE_READS:
                return None
            if m in _RESULT_VIEWS:
                continue
            return m if m in _RAISING_READS else None
        return None

    def _reads(self, ctx: FunctionContext, call: CallSite) -> Iterator[tuple[str, ...]]:
        fn = ctx.fn.summary
        awaited = ("aw", ("c", call.func))
        # (await db.execute(stmt)).scalars().all(): the method called on the awaited value, then its chain
        chained = [c for c in fn.calls if c.func and c.func[0] == "a" and c.func[1] == awaited
                   and within(call.span, c.span)]
        if chained:
            c = min(chained, key=lambda c: (c.span.end_line - c.span.line, c.span.end_column - c.span.column))
            yield (c.func[2],) + c.chain
            return
        for b in fn.bindings:
            if b.value != awaited or not within(call.span, b.value_span):
                continue
            if b.kind in ("for", "comp"):
                yield ("__iter__",)  # for user in await db.scalars(stmt)
            elif b.kind == "assign":
                yield from self._name_reads(ctx, b)
            return

    @staticmethod
    def _name_reads(ctx: FunctionContext, b: Binding) -> Iterator[tuple[str, ...]]:
        """``result = await db.execute(stmt)``, then ``result.scalars().all()`` / ``for row in result``."""
        fn = ctx.fn.summary
        flow = _flow(ctx)
        ref = ("n", b.name)
        if ref in fn.returns or any(ref in c.args or ref in (v for _, v in c.kwargs) for c in fn.calls):
            return  # handed to someone else: not followed
        for c in fn.calls:
            if c.func and c.func[0] == "a" and c.func[1] == ref and flow.binding_at(b.name, c.span.line) is b:
                yield (c.func[2],) + c.chain
        for other in fn.bindings:
            if other.kind in ("for", "comp") and other.value == ref and flow.binding_at(b.name, other.value_span.line) is b:
                yield ("__iter__",)


class AsyncSessionExpiresOnCommit(Rule):
    """An async session factory without ``expire_on_commit=False``.

    What it does:
        Finds ``async_sessionmaker(...)``, ``sessionmaker(..., class_=AsyncSession)`` and
        direct ``AsyncSession(...)`` construction that do not pass
        ``expire_on_commit=False``.  A value that is not a literal, ``**kwargs``, or a
        ``.configure(expire_on_commit=False)`` in the same file silence it.

    Why it matters:
        The default, ``expire_on_commit=True``, expires every loaded object on
        ``await db.commit()``.  Reading any attribute afterwards (``user.name``, or a
        ``response_model`` serialising the returned object) must reload it, which is
        I/O behind an attribute access: ``MissingGreenlet`` under ``AsyncSession``.

    Example:
        AsyncSessionLocal = async_sessionmaker(async_engine, autoflush=False)

    Use instead:
        AsyncSessionLocal = async_sessionmaker(async_engine, expire_on_commit=False, autoflush=False)

    Fix safety:
        Safe unless code relies on reading database-side values (defaults, triggers)
        after a commit: that code needs ``await db.refresh(obj)``.
    """

    code = "ASM205"
    name = "async-session-expire-on-commit"
    family = "post_migration"
    category = "post-migration"
    message = ("`{call}` keeps expire_on_commit=True: attributes read after `await commit()` raise MissingGreenlet; "
               "pass expire_on_commit=False")
    severity = "debt"
    examples = (
        Bad('''
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite:///app.db")
AsyncSessionLocal = async_sessionmaker(engine, autoflush=False)
'''),
        Good('''
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite:///app.db")
AsyncSessionLocal = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            qn = ctx.qualified_name(call)
            if qn is None:
                continue
            if qn in _ASYNC_FACTORIES or qn in _ASYNC_SESSION_CLASSES:
                what = qn.rsplit(".", 1)[-1]
            elif qn in _SYNC_FACTORIES and self._async_class(ctx, call):
                what = qn.rsplit(".", 1)[-1]
            else:
                continue
            constants = dict(call.kw_constants)
            if constants.get(_EXPIRE, True) is False:
                continue
            if call.star_kwargs or (_EXPIRE not in constants and any(k == _EXPIRE for k, _ in call.kwargs)):
                continue  # not visible
            if self._configured(ctx):
                continue
            yield Hit(call.span, {"call": f"{what}()"}, "", call.snippet)

    @staticmethod
    def _async_class(ctx: FunctionContext, call: CallSite) -> bool:
        cls = dict(call.kwargs).get("class_")
        v = ctx.project.value(cls, ctx.fid) if cls is not None else None
        return bool(v and v[0] == "ext" and v[1] in _ASYNC_SESSION_CLASSES)

    @staticmethod
    def _configured(ctx: FunctionContext) -> bool:
        """``Factory.configure(expire_on_commit=False)`` somewhere in the file."""
        fs = ctx.fn.file
        for fn in (fs.module_scope, *fs.functions):
            for c in fn.calls:
                if c.func and c.func[0] == "a" and c.func[2] == "configure" \
                        and dict(c.kw_constants).get(_EXPIRE, True) is False:
                    return True
        return False
