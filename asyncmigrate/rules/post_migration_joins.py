"""Post-migration: ``joinedload`` of a collection read without ``.unique()`` (ASM204).

A joined eager load repeats the parent row once per child.  The legacy
``Query`` de-duplicated entities silently; a 2.0 ``Result`` refuses to, and
raises ``InvalidRequestError`` unless ``.unique()`` comes first
(SQLALCHEMY_ASYNC.md §2).  Statements come from ``analysis/queries.py``,
collections from ``analysis/orm.py``; the rule reads only what one function
shows.
"""

from __future__ import annotations

from typing import Iterator, Optional

from ..analysis.orm import orm_index, within
from ..model import Binding, CallSite
from ._async_calls import async_session, class_name, flow_of, statement_for
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
            st = statement_for(ctx, call)
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
            yield Hit(call.span, {"relationship": f"{class_name(rel.cls)}.{rel.name}",
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
        flow = flow_of(ctx)
        ref = ("n", b.name)
        if ref in fn.returns or any(ref in c.args or ref in (v for _, v in c.kwargs) for c in fn.calls):
            return  # handed to someone else: not followed
        for c in fn.calls:
            if c.func and c.func[0] == "a" and c.func[1] == ref and flow.binding_at(b.name, c.span.line) is b:
                yield (c.func[2],) + c.chain
        for other in fn.bindings:
            if other.kind in ("for", "comp") and other.value == ref and flow.binding_at(b.name, other.value_span.line) is b:
                yield ("__iter__",)
