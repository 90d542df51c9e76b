"""Post-migration rules (ASM201-ASM206): true positives and the false positives each rule must not make.

Every case runs *all* rules (``findings``) and compares the ASM2xx findings as ``(line, code)`` pairs, so a
guard also proves that no other post-migration rule fires instead.  Line numbers count from the first line
of the case's own source (after ``MODELS``), which is given with its imports.
"""

from __future__ import annotations

import textwrap

import pytest

from asyncmigrate.analysis.findings import _severity
from asyncmigrate.model import BLOCKS_LOOP, DEBT
from tests.helpers import analyse, findings

#: legacy ``Column`` models: collections are known only from the ForeignKey direction
MODELS = '''
from sqlalchemy import Column, ForeignKey, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import declarative_base, joinedload, relationship, selectinload

Base = declarative_base()


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    name = Column(String)
    orders = relationship("Order", back_populates="user")
    profile = relationship("Profile", lazy="selectin")
    audit = relationship("Audit", lazy="raise")
    tags = relationship("Tag", lazy="dynamic")


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))
    user = relationship("User", back_populates="orders")
    items = relationship("Item", back_populates="order")
    notes = relationship("Note", lazy=False)


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
    order_id = Column(Integer, ForeignKey("orders.id"))
    order = relationship("Order", back_populates="items")


class Profile(Base):
    __tablename__ = "profiles"
    id = Column(Integer, primary_key=True)


class Note(Base):
    __tablename__ = "notes"
    id = Column(Integer, primary_key=True)
'''
_OFFSET = MODELS.count("\n")


def post(src: str, models: str = MODELS) -> list[tuple[int, str]]:
    """``(line in src, code)`` of every ASM2xx finding, with ``models`` in front of ``src``."""
    offset = models.count("\n")
    found = findings(models + textwrap.dedent(src))
    return [(f.span.line - offset, f.code) for f in found if f.code.startswith("ASM2")]


def messages(src: str, code: str) -> list[str]:
    return [f.message for f in findings(MODELS + textwrap.dedent(src)) if f.code == code]


# ============================================================================ ASM201
@pytest.mark.parametrize("src,expected", [
    pytest.param('''
        async def save(db: AsyncSession, user):
            db.add(user)
            db.commit()
        ''', [(4, "ASM201")], id="dropped-commit"),
    pytest.param('''
        async def names(db: AsyncSession):
            return await db.execute(select(User.name)).scalars().all()
        ''', [(3, "ASM201")], id="chained-onto-coroutine"),
    pytest.param('''
        async def name(db: AsyncSession):
            user = db.get(User, 1)
            return user.name
        ''', [(3, "ASM201")], id="coroutine-read-as-result"),
    pytest.param('''
        async def total(db: AsyncSession):
            result = db.execute(select(User))
            return result.scalars().all()
        ''', [(3, "ASM201")], id="coroutine-called-as-result"),
    pytest.param('''
        async def commit(db: AsyncSession):
            return db.commit()
        ''', [(3, "ASM201")], id="returned-from-async-def"),
    pytest.param('''
        class Repo:
            def __init__(self, db: AsyncSession):
                self.db = db

            async def remove(self, obj):
                self.db.delete(obj)
                await self.db.commit()
        ''', [(7, "ASM201")], id="self-attribute"),
    pytest.param('''
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")


        async def shutdown():
            engine.dispose()
        ''', [(8, "ASM201")], id="engine-dispose"),
    pytest.param('''
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")


        async def ping():
            async with engine.connect() as conn:
                conn.execute(select(1))
        ''', [(9, "ASM201")], id="connection-execute"),
    pytest.param('''
        def helper(db: AsyncSession):
            db.commit()
        ''', [(3, "ASM201")], id="sync-def-with-annotated-session"),
    pytest.param('''
        async def later(db: AsyncSession):
            return lambda: db.execute(select(User)).scalars()
        ''', [(3, "ASM201")], id="chained-inside-lambda"),
    pytest.param('''
        from sqlmodel.ext.asyncio.session import AsyncSession as SQLModelAsyncSession


        async def names(session: SQLModelAsyncSession):
            first = (await session.exec(select(User))).first()
            return session.exec(select(User.name)).all()
        ''', [(7, "ASM201")], id="sqlmodel-exec"),
])
def test_unawaited_true_positives(src, expected):
    assert post(src) == expected


@pytest.mark.parametrize("src", [
    pytest.param('''
        async def save(db: AsyncSession, user):
            db.add(user)
            db.add_all([user])
            db.expunge(user)
            await db.commit()
        ''', id="sync-methods-are-not-awaited"),
    pytest.param('''
        async def save(db: AsyncSession):
            await db.flush()
            user = await db.get(User, 1)
            return (await db.execute(select(User))).scalars().all()
        ''', id="awaited"),
    pytest.param('''
        import asyncio


        async def both(db: AsyncSession, other: AsyncSession):
            await asyncio.gather(db.commit(), other.commit())
            await asyncio.wait_for(db.flush(), timeout=5)
            task = asyncio.create_task(db.refresh(1))
            await task
        ''', id="handed-to-gather-wait_for-create_task"),
    pytest.param('''
        async def later(db: AsyncSession):
            pending = db.commit()
            await pending
        ''', id="kept-then-awaited"),
    pytest.param('''
        def commit_later(db: AsyncSession):
            return db.commit()
        ''', id="returned-from-sync-def"),
    pytest.param('''
        async def deferred(db: AsyncSession, tasks):
            tasks.add_task(lambda: db.commit())
        ''', id="returned-by-a-lambda"),
    pytest.param('''
        from sqlalchemy.ext.asyncio import AsyncSession


        def work(session):
            session.add(1)
            session.commit()


        async def run(db: AsyncSession):
            await db.run_sync(work)
        ''', id="run_sync-callback-name-only"),
    pytest.param('''
        from sqlalchemy.orm import Session


        async def legacy(db: Session):
            db.commit()
        ''', id="sync-session-is-ASM120-not-ASM201"),
    pytest.param('''
        async def lookup(db: AsyncSession, cache):
            cache.get(1)
            cache.delete(1)
        ''', id="other-receivers"),
])
def test_unawaited_guards(src):
    assert post(src) == []


def test_unawaited_messages_say_why():
    msgs = messages('''
        async def f(db: AsyncSession):
            db.commit()
            db.execute(select(User)).scalars()
        ''', "ASM201")
    assert msgs == [
        "`db.commit()` is a coroutine on AsyncSession and is not awaited: the coroutine is created and dropped, "
        "so the call never runs",
        "`db.execute()` is a coroutine on AsyncSession and is not awaited: `.scalars()` is called on the coroutine "
        "(AttributeError)",
    ]


# ============================================================================ ASM202
@pytest.mark.parametrize("src,expected", [
    pytest.param('''
        async def save(db: AsyncSession, user):
            await db.add(user)
            await db.add_all([user])
            await db.expunge(user)
            await db.expire(user)
            await db.commit()
        ''', [(3, "ASM202"), (4, "ASM202"), (5, "ASM202"), (6, "ASM202")], id="add-add_all-expunge-expire"),
    pytest.param('''
        async def busy(db: AsyncSession):
            return await db.in_transaction()
        ''', [(3, "ASM202")], id="in_transaction"),
])
def test_awaited_sync_method_true_positives(src, expected):
    assert post(src) == expected


@pytest.mark.parametrize("src", [
    pytest.param('''
        async def save(db: AsyncSession, user):
            db.add(user)
            tx = await db.begin()
            nested = await db.begin_nested()
            await nested.commit()
            await tx.commit()
        ''', id="begin-is-awaitable"),
    pytest.param('''
        async def save(cache, user):
            await cache.add(user)
        ''', id="other-async-object"),
])
def test_awaited_sync_method_guards(src):
    assert post(src) == []


# ============================================================================ ASM203
@pytest.mark.parametrize("src,expected", [
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1)
            return user.orders
        ''', [(4, "ASM203")], id="get"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = (await db.execute(select(User).where(User.id == 1))).scalars().first()
            print(user.name)
            return len(user.orders)
        ''', [(5, "ASM203")], id="execute-scalars-first"),
    pytest.param('''
        async def f(db: AsyncSession):
            order = (await db.execute(select(Order))).scalar_one()
            return order.user
        ''', [(4, "ASM203")], id="scalar_one-many-to-one"),
    pytest.param('''
        async def f(db: AsyncSession):
            order = await db.scalar(select(Order).limit(1))
            return order.items
        ''', [(4, "ASM203")], id="scalar"),
    pytest.param('''
        async def f(db: AsyncSession):
            for order in (await db.scalars(select(Order))).all():
                print(order.user.name, order.items)
        ''', [(4, "ASM203"), (4, "ASM203")], id="for-loop"),
    pytest.param('''
        async def f(db: AsyncSession):
            orders = (await db.scalars(select(Order))).all()
            return [o.items for o in orders]
        ''', [(4, "ASM203")], id="comprehension-over-name"),
    pytest.param('''
        async def f(db: AsyncSession):
            result = await db.execute(select(User))
            user = result.scalars().first()
            return user.orders
        ''', [(5, "ASM203")], id="result-through-a-name"),
    pytest.param('''
        async def f(db: AsyncSession):
            stmt = select(Order).options(selectinload(Order.user))
            stmt = stmt.where(Order.id > 1)
            orders = (await db.scalars(stmt)).all()
            return [(o.user, o.items) for o in orders]
        ''', [(6, "ASM203")], id="statement-name-loads-another-relationship"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1)
            user.orders.append(Order())
        ''', [(4, "ASM203")], id="append-loads-the-collection"),
    pytest.param('''
        async def f(db: AsyncSession):
            first = (await db.execute(select(User).options(selectinload(User.orders)))).scalar_one()
            db.expire(first)
            user = await db.get(User, 1)
            return user.orders
        ''', [(6, "ASM203")], id="identity-map-expired"),
    pytest.param('''
        async def f(db: AsyncSession):
            await db.execute(update(User).values(name="x"))
            user = await db.get(User, 1)
            return user.orders
        ''', [(5, "ASM203")], id="bulk-update-before-loads-nothing"),
])
def test_lazy_relationship_true_positives(src, expected):
    assert post(src) == expected


@pytest.mark.parametrize("src", [
    pytest.param('''
        async def f(db: AsyncSession):
            user = (await db.execute(select(User).options(selectinload(User.orders)))).scalar_one()
            return user.orders
        ''', id="selectinload-inline"),
    pytest.param('''
        async def f(db: AsyncSession):
            stmt = select(User)
            stmt = stmt.options(joinedload(User.orders))
            return (await db.execute(stmt)).unique().scalar_one().orders
        ''', id="joinedload-through-name"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1, options=[selectinload(User.orders)])
            return user.orders
        ''', id="get-options"),
    pytest.param('''
        async def f(db: AsyncSession, opts):
            user = await db.get(User, 1, options=opts)
            return user.orders
        ''', id="get-options-not-visible"),
    pytest.param('''
        LOADS = (selectinload(User.orders),)


        async def f(db: AsyncSession):
            user = (await db.execute(select(User).options(*LOADS))).scalar_one()
            return user.orders
        ''', id="options-not-visible"),
    pytest.param('''
        async def f(db: AsyncSession, stmt):
            user = (await db.execute(stmt)).scalar_one()
            return user.orders
        ''', id="statement-from-parameter"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1)
            order = await db.get(Order, 1)
            return user.profile, order.notes
        ''', id="eager-lazy-selectin-and-False"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1)
            return user.audit, user.tags
        ''', id="lazy-raise-and-dynamic-are-not-MissingGreenlet"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1)
            return user.name, user.id
        ''', id="columns"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1)
            await db.refresh(user, attribute_names=["orders"])
            return user.orders
        ''', id="refresh-with-attribute-names"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1)
            return await db.run_sync(lambda session: len(user.orders))
        ''', id="inside-run_sync"),
    pytest.param('''
        async def f(db: AsyncSession):
            first = (await db.execute(select(User).options(selectinload(User.orders)))).scalar_one()
            user = await db.get(User, 1)
            return user.orders
        ''', id="identity-map"),
    pytest.param('''
        async def f(db: AsyncSession):
            user = await db.get(User, 1)
            user = (await db.execute(select(User).options(selectinload(User.orders)))).scalar_one()
            return user.orders
        ''', id="rebound-to-a-loaded-object"),
    pytest.param('''
        async def f(db: AsyncSession, user: User):
            order = Order(items=[])
            return user.orders, order.items
        ''', id="not-from-a-query"),
    pytest.param('''
        async def f(db: AsyncSession):
            row = (await db.execute(select(User, Order).join(User.orders))).first()
            return row.orders
        ''', id="rows-are-not-entities"),
    pytest.param('''
        async def f(db: AsyncSession):
            count = await db.scalar(select(User.id))
            return count.orders
        ''', id="column-select"),
])
def test_lazy_relationship_guards(src):
    assert post(src) == []


def test_lazy_relationship_with_mapped_annotations_and_message():
    models = '''
from sqlalchemy import ForeignKey
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "parents"
    id: Mapped[int] = mapped_column(primary_key=True)
    children: Mapped[list["Child"]] = relationship(back_populates="parent")
'''
    src = '''
        async def f(db: AsyncSession):
            parent = await db.get(Parent, 1)
            return [c.id for c in parent.children]
        '''
    assert post(src, models) == [(4, "ASM203")]
    (finding,) = [f for f in findings(models + textwrap.dedent(src)) if f.code == "ASM203"]
    assert finding.message == ("`parent.children` lazy-loads `Parent.children`, which `db.get()` did not load: "
                               "MissingGreenlet under AsyncSession")
    assert (finding.span.column, finding.span.end_column) == (27, 42)
    assert finding.severity == BLOCKS_LOOP and finding.evidence == "annotation"


# ============================================================================ ASM204
@pytest.mark.parametrize("src,expected", [
    pytest.param('''
        async def f(db: AsyncSession):
            stmt = select(User).options(joinedload(User.orders))
            return (await db.execute(stmt)).scalars().all()
        ''', [(4, "ASM204")], id="execute-scalars-all"),
    pytest.param('''
        async def f(db: AsyncSession):
            return (await db.scalars(select(User).options(joinedload(User.orders)))).all()
        ''', [(3, "ASM204")], id="scalars-all"),
    pytest.param('''
        async def f(db: AsyncSession):
            return (await db.execute(select(User).options(joinedload(User.orders)).limit(1))).scalar_one()
        ''', [(3, "ASM204")], id="scalar_one"),
    pytest.param('''
        async def f(db: AsyncSession):
            result = await db.execute(select(User).options(joinedload(User.orders)))
            return result.scalars().all()
        ''', [(3, "ASM204")], id="result-through-a-name"),
    pytest.param('''
        async def f(db: AsyncSession):
            for user in await db.scalars(select(User).options(joinedload(User.orders))):
                print(user.name)
        ''', [(3, "ASM204")], id="iterated"),
    pytest.param('''
        async def f(db: AsyncSession):
            stmt = select(Order).options(joinedload(Order.user).joinedload(User.orders))
            return (await db.execute(stmt)).scalars().all()
        ''', [(4, "ASM204")], id="collection-at-the-end-of-a-joined-chain"),
])
def test_joined_collection_true_positives(src, expected):
    assert post(src) == expected


@pytest.mark.parametrize("src", [
    pytest.param('''
        async def f(db: AsyncSession):
            return (await db.execute(select(User).options(joinedload(User.orders)))).unique().scalars().all()
        ''', id="unique-on-result"),
    pytest.param('''
        async def f(db: AsyncSession):
            return (await db.execute(select(User).options(joinedload(User.orders)))).scalars().unique().all()
        ''', id="unique-on-scalars"),
    pytest.param('''
        async def f(db: AsyncSession):
            return (await db.execute(select(User).options(joinedload(User.orders)))).scalars().first()
        ''', id="first-does-not-raise"),
    pytest.param('''
        async def f(db: AsyncSession):
            return (await db.scalars(select(User).options(selectinload(User.orders)))).all()
        ''', id="selectinload"),
    pytest.param('''
        async def f(db: AsyncSession):
            return (await db.scalars(select(Order).options(joinedload(Order.user)))).all()
        ''', id="many-to-one"),
    pytest.param('''
        async def f(db: AsyncSession):
            stmt = select(User).options(selectinload(User.orders).joinedload(Order.items))
            return (await db.scalars(stmt)).all()
        ''', id="joined-inside-a-selectin-query"),
    pytest.param('''
        async def f(db: AsyncSession):
            return await db.execute(select(User).options(joinedload(User.orders)))
        ''', id="result-returned-not-followed"),
    pytest.param('''
        async def f(db: AsyncSession):
            result = await db.execute(select(User).options(joinedload(User.orders)))
            return helper(result)
        ''', id="result-passed-on-not-followed"),
    pytest.param('''
        async def f(db: AsyncSession):
            return await db.scalar(select(User).options(joinedload(User.orders)))
        ''', id="scalar-does-not-raise"),
])
def test_joined_collection_guards(src):
    assert post(src) == []


def test_joined_collection_needs_evidence_of_a_collection():
    models = '''
from sqlalchemy import Column, Integer, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import declarative_base, joinedload, relationship

Base = declarative_base()


class A(Base):
    __tablename__ = "a"
    id = Column(Integer, primary_key=True)
    bs = relationship("B")
    cs = relationship("C", uselist=True)
'''
    src = '''
        async def f(db: AsyncSession):
            first = (await db.scalars(select(A).options(joinedload(A.bs)))).all()
            return first, (await db.scalars(select(A).options(joinedload(A.cs)))).all()
        '''
    assert post(src, models) == [(4, "ASM204")]


# ============================================================================ ASM205
@pytest.mark.parametrize("src,expected", [
    pytest.param('''
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")
        A = async_sessionmaker(engine)
        B = async_sessionmaker(engine, expire_on_commit=True)
        ''', [(5, "ASM205"), (6, "ASM205")], id="missing-and-explicit-true"),
    pytest.param('''
        from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
        from sqlalchemy.orm import sessionmaker

        engine = create_async_engine("sqlite+aiosqlite://")
        Factory = sessionmaker(engine, class_=AsyncSession)


        async def script():
            async with AsyncSession(engine) as session:
                pass
        ''', [(6, "ASM205"), (10, "ASM205")], id="sessionmaker-class_-and-direct-construction"),
])
def test_expire_on_commit_true_positives(src, expected):
    # the sync ``sessionmaker(...)`` is also ASM141; only ASM2xx are compared
    assert post(src) == expected


@pytest.mark.parametrize("src", [
    pytest.param('''
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")
        A = async_sessionmaker(engine, expire_on_commit=False)
        ''', id="false"),
    pytest.param('''
        from sqlalchemy.ext.asyncio import async_sessionmaker

        A = async_sessionmaker(expire_on_commit=settings.expire)
        B = async_sessionmaker(**options)
        ''', id="not-visible"),
    pytest.param('''
        from sqlalchemy.ext.asyncio import async_sessionmaker

        A = async_sessionmaker()
        A.configure(expire_on_commit=False)
        ''', id="configured-later"),
    pytest.param('''
        from sqlalchemy.ext.asyncio import async_scoped_session, async_sessionmaker
        import asyncio

        A = async_sessionmaker(expire_on_commit=False)
        Scoped = async_scoped_session(A, scopefunc=asyncio.current_task)
        ''', id="scoped-registry-takes-a-factory"),
])
def test_expire_on_commit_guards(src):
    assert post(src) == []


def test_expire_on_commit_is_debt():
    (f,) = findings('''
from sqlalchemy.ext.asyncio import async_sessionmaker

A = async_sessionmaker()
''')
    assert (f.code, f.severity) == ("ASM205", DEBT)


# ============================================================================ ASM206
@pytest.mark.parametrize("src,expected", [
    pytest.param('''
        import asyncio


        async def f(db: AsyncSession):
            await asyncio.gather(db.execute(select(User)), db.execute(select(Order)))
        ''', [(6, "ASM206")], id="two-calls-on-the-session"),
    pytest.param('''
        import asyncio


        async def count(db, model): ...


        async def f(db: AsyncSession):
            return await asyncio.gather(count(db, User), count(db, Order))
        ''', [(9, "ASM206")], id="two-calls-given-the-session"),
    pytest.param('''
        import asyncio


        async def load(db, i): ...


        async def f(db: AsyncSession, ids):
            return await asyncio.gather(*[load(db, i) for i in ids])
        ''', [(9, "ASM206")], id="comprehension"),
    pytest.param('''
        import asyncio


        class Service:
            def __init__(self, db: AsyncSession):
                self.db = db

            async def both(self):
                return await asyncio.gather(self.db.get(User, 1), self.db.get(Order, 1))
        ''', [(10, "ASM206")], id="self-attribute"),
    pytest.param('''
        import asyncio


        async def load(db): ...


        async def f(db: AsyncSession):
            async with asyncio.TaskGroup() as tg:
                tg.create_task(load(db))
                tg.create_task(db.execute(select(User)))
        ''', [(11, "ASM206")], id="asyncio-task-group"),
    pytest.param('''
        import anyio


        async def load(db): ...


        async def f(db: AsyncSession):
            async with anyio.create_task_group() as tg:
                tg.start_soon(load, db)
                tg.start_soon(load, db)
        ''', [(11, "ASM206")], id="anyio-task-group"),
])
def test_shared_session_true_positives(src, expected):
    assert post(src) == expected


@pytest.mark.parametrize("src", [
    pytest.param('''
        import asyncio


        async def load(db): ...


        async def f(db: AsyncSession, other: AsyncSession):
            await asyncio.gather(load(db), load(other))
        ''', id="separate-sessions"),
    pytest.param('''
        import asyncio

        from sqlalchemy.ext.asyncio import async_sessionmaker

        SessionLocal = async_sessionmaker(expire_on_commit=False)


        async def count(model):
            async with SessionLocal() as db:
                return await db.scalar(select(model))


        async def f():
            await asyncio.gather(count(User), count(Order))
        ''', id="one-session-per-task"),
    pytest.param('''
        import asyncio


        async def f(db: AsyncSession, client):
            await asyncio.gather(db.execute(select(User)), client.get("/x"))
        ''', id="one-task-uses-the-session"),
    pytest.param('''
        import asyncio


        async def f(db: AsyncSession):
            users = await db.execute(select(User))
            orders = await db.execute(select(Order))
            await asyncio.gather(asyncio.sleep(1), asyncio.sleep(2))
        ''', id="sequential-awaits"),
    pytest.param('''
        import asyncio


        async def load(db): ...


        async def f(db: AsyncSession, other: AsyncSession):
            async with asyncio.TaskGroup() as tg:
                tg.create_task(load(db))
                tg.create_task(load(other))
        ''', id="task-group-separate-sessions"),
])
def test_shared_session_guards(src):
    assert post(src) == []


# ============================================================================ severity
def test_always_blocks_policy():
    assert _severity("always-blocks", on_loop=False, migrating=False, override=None) == BLOCKS_LOOP
    assert _severity("always-blocks", on_loop=True, migrating=False, override=None) == BLOCKS_LOOP
    assert _severity("always-blocks", on_loop=False, migrating=False, override="debt") == DEBT
    assert _severity("always-blocks", on_loop=False, migrating=False, override="off") is None


def test_bugs_off_the_loop_are_still_errors():
    """A sync helper nobody calls from async code still loses the commit it drops."""
    a = analyse(MODELS + textwrap.dedent('''
        def helper(db: AsyncSession):
            db.commit()
        '''), codes=("ASM201",))
    (f,) = a.result.findings
    assert f.severity == BLOCKS_LOOP and f.chain == ()
