"""Post-migration loading mistakes: attribute reads that need I/O (ASM203, ASM205).

Under ``AsyncSession`` an attribute that needs I/O to be read raises
``MissingGreenlet`` instead of loading (SQLALCHEMY_ASYNC.md §4):

* ASM203: a lazy relationship read on an object from an awaited query that did
  not load it;
* ASM205: an async session factory left at ``expire_on_commit=True``, so every
  attribute read after ``await db.commit()`` needs a reload.

Mapped classes and relationships come from ``analysis/orm.py``, statements and
query results from ``analysis/queries.py``.  ASM203 reads only what one
function shows and stays quiet whenever a part is not visible: it prefers a
missed finding to a wrong one.
"""

from __future__ import annotations

from typing import Iterator

from .. import facts
from ..analysis.orm import orm_index, within
from ..model import CallSite
from ._async_calls import async_session, class_name, flow_of, statement_for
from ._session_calls import receiver_text
from .base import Bad, FunctionContext, Good, Hit, Rule

#: session classes and factories whose sessions are async (scoped registries take a factory: no kwargs)
_ASYNC_FACTORIES = frozenset(q for q in facts.ASYNC_SESSIONMAKERS if "scoped" not in q)
_ASYNC_SESSION_CLASSES = frozenset(q for q in facts.ASYNC_SESSION_TYPES if "scoped" not in q)
_SYNC_FACTORIES = frozenset(q for q in facts.SYNC_SESSIONMAKERS if "scoped" not in q)
_EXPIRE = "expire_on_commit"
#: session coroutines that load entities into the identity map
_LOADING_METHODS = frozenset({"get", "get_one", "scalar", "scalars", "execute"})
#: session methods after which an object loaded earlier no longer has its relationships in memory
_FORGETTING = frozenset({"expire", "expire_all", "expunge", "expunge_all", "rollback", "close", "reset", "invalidate"})



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
        flow = flow_of(ctx)
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
            st = statement_for(ctx, loaded.call)
            cid = st.entity
            if st.opaque or cid is None or attr in st.loaded:
                continue
            rel = orm.relationship(cid, attr)
            if rel is None or not rel.lazy_select or self._in_identity_map(ctx, loaded.call, cid, attr):
                continue
            reported.add((id(b), attr))
            session = loaded.call.func[1]
            yield Hit(span, {"read": f"{name}.{attr}", "relationship": f"{class_name(rel.cls)}.{attr}",
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
            st = statement_for(ctx, c)
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
