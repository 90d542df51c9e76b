"""The ORM layer (``analysis/orm.py``, ``analysis/queries.py``) and the per-file facts it stands on."""

from __future__ import annotations

import pickle
import textwrap

import pytest

from asyncmigrate.analysis.index import summarize
from asyncmigrate.analysis.orm import DEFAULT_LAZY, UNKNOWN_LAZY, orm_index, relationship_index
from asyncmigrate.analysis.queries import FunctionFlow, statement_of
from asyncmigrate.analysis.sessions import Project
from asyncmigrate.model import Binding, Span
from tests.helpers import summaries


def _summary(src: str):
    return summarize("m.py", textwrap.dedent(src).encode(), "m")


def _project(files) -> Project:
    if isinstance(files, str):
        files = {"app.py": files}
    p = Project(summaries(files))
    p.solve()
    return p


# ============================================================================ per-file facts
def test_keyword_literals_star_kwargs_and_statement_use():
    s = _summary('''
        def f(db, opts):
            db.commit()
            make(a=1, b="x", c=None, d=False, e=-1, f=name, **opts)
            x = db.get(1)
            return db.flush()
        ''')
    (fn,) = s.functions
    commit, make, get, flush = fn.calls
    assert make.kw_constants == (("a", 1), ("b", "x"), ("c", None), ("d", False))
    assert make.star_kwargs and not commit.star_kwargs
    assert (commit.use, make.use, get.use, flush.use) == ("discard", "discard", None, "return")


def test_use_sees_through_await():
    s = _summary('''
        async def f(db):
            await db.commit()
            return await db.get(1)
        ''')
    assert [c.use for c in s.functions[0].calls] == ["discard", "return"]


def test_bindings_kinds_values_and_spans():
    s = _summary('''
        async def f(db, rows):
            user = await db.get(User, 1)
            a, b = pair()
            async with factory() as session:
                pass
            for row in rows:
                pass
            names = [r.name for r in rows]
            if (n := len(rows)) > 1:
                pass
        ''')
    fn = s.functions[0]
    got = [(b.name, b.kind, b.value, b.value_span.line, b.scope.line if b.scope else None) for b in fn.bindings]
    assert got == [
        ("user", "assign", ("aw", ("c", ("a", ("n", "db"), "get"))), 3, None),
        ("a", "assign", None, 4, None),
        ("b", "assign", None, 4, None),
        ("session", "with", ("c", ("n", "factory")), 5, None),
        ("row", "for", ("n", "rows"), 7, 7),
        ("names", "assign", None, 9, None),  # a comprehension has no Expr
        ("r", "comp", ("n", "rows"), 9, 9),
        ("n", "assign", ("c", ("n", "len")), 10, None),
    ]
    assert fn.bindings[0].value_span == Span(3, 12, 3, 33)
    for_binding = fn.bindings[4]
    assert for_binding.scope.end_line == 8  # the body is in scope


def test_bindings_are_recorded_inside_functions_only():
    s = _summary('''
        engine = make()


        class Model:
            name = Column(String)
        ''')
    assert s.module_scope.bindings == ()


def test_attribute_read_spans_match_reads():
    s = _summary('''
        def f(user):
            return user.orders, user.name
        ''')
    fn = s.functions[0]
    assert fn.attribute_reads == (("user", "orders", 3), ("user", "name", 3))
    assert fn.attribute_read_spans == (Span(3, 12, 3, 23), Span(3, 25, 3, 34))


def test_class_attribute_calls_point_at_the_call_sites():
    s = _summary('''
        class User(Base):
            __tablename__ = "users"
            id = Column(Integer, primary_key=True)
            orders: Mapped[list["Order"]] = relationship(back_populates="user", lazy="selectin")
        ''')
    (cls,) = s.classes
    spans = dict(cls.attribute_calls)
    assert set(spans) == {"id", "orders"}
    by_span = {c.span: c for c in s.module_scope.calls}
    assert by_span[spans["orders"]].kw_constants == (("back_populates", "user"), ("lazy", "selectin"))
    assert by_span[spans["id"]].kw_constants == (("primary_key", True),)


def test_summaries_still_pickle():
    s = _summary('''
        async def f(db):
            user = await db.get(User, 1)
            return user.orders
        ''')
    assert pickle.loads(pickle.dumps(s)) == s


# ============================================================================ relationships
LEGACY = '''
from sqlalchemy import Column, ForeignKey, Integer, Table
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()
tags = Table("tags_users", Base.metadata)


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    orders = relationship("Order", back_populates="user")
    tags = relationship("Tag", secondary=tags)
    profile = relationship("Profile", uselist=False, lazy="joined")
    manager = relationship("User", lazy=dynamic_choice)
    friends = relationship("User")


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))
    user = relationship("User", back_populates="orders")
    lines = relationship("Line")


class Line(Base):
    __tablename__ = "lines"
    id = Column(Integer, primary_key=True)


class Tag(Base):
    __tablename__ = "tags"
    id = Column(Integer, primary_key=True)


class Profile(Base):
    __tablename__ = "profiles"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey(User.id))
'''


def test_relationships_lazy_collection_and_target():
    orm = orm_index(_project(LEGACY))
    rel = {(cid.split(":")[1], name): r for cid, rels in orm.relationships.items() for name, r in rels.items()}
    assert {k: (v.lazy, v.collection) for k, v in rel.items()} == {
        ("User", "orders"): (DEFAULT_LAZY, True),  # orders has the foreign key to users
        ("User", "tags"): (DEFAULT_LAZY, True),  # secondary=
        ("User", "profile"): ("joined", False),  # uselist=False
        ("User", "manager"): (UNKNOWN_LAZY, None),  # lazy= not a literal; self-referential
        ("User", "friends"): (DEFAULT_LAZY, None),
        ("Order", "user"): (DEFAULT_LAZY, False),  # many-to-one
        ("Order", "lines"): (DEFAULT_LAZY, None),  # lines has no foreign key: unknown
    }
    assert rel[("User", "orders")].target == "app:Order"
    assert rel[("User", "orders")].lazy_select and not rel[("User", "profile")].lazy_select
    assert rel[("User", "profile")].eager and not rel[("User", "manager")].eager
    assert orm.foreign_tables["app:Profile"] == {"users"}  # ForeignKey(User.id): the class's table


def test_relationships_from_annotations_back_populates_and_bases():
    src = '''
from typing import Optional

from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlmodel import Relationship, SQLModel


class Base(DeclarativeBase):
    pass


class Owned:
    owner = relationship("Parent")


class Parent(Base):
    __tablename__ = "parents"
    children: Mapped[list["Child"]] = relationship(back_populates="parent")
    favourite: Mapped[Optional["Child"]] = relationship()
    pets = relationship("Pet", back_populates="parent")


class Child(Owned, Base):
    __tablename__ = "children"
    parent: Mapped["Parent"] = relationship(back_populates="children")


class Pet(Base):
    __tablename__ = "pets"
    parent: Mapped["Parent"] = relationship(back_populates="pets")


class Hero(SQLModel, table=True):
    team: Optional["Team"] = Relationship(back_populates="heroes")
    powers: list["Power"] = Relationship(sa_relationship_kwargs={"lazy": "selectin"})
'''
    orm = orm_index(_project(src))
    assert orm.relationship("app:Parent", "children").collection is True
    assert orm.relationship("app:Parent", "favourite").collection is False
    assert orm.relationship("app:Parent", "pets").collection is True  # the partner is many-to-one
    assert orm.relationship("app:Child", "parent").collection is False
    assert orm.relationship("app:Child", "owner").cls == "app:Owned"  # through the bases
    assert orm.relationship("app:Child", "name") is None
    assert orm.relationship("app:Hero", "team").collection is False
    powers = orm.relationship("app:Hero", "powers")
    assert powers.collection is True and powers.lazy is UNKNOWN_LAZY


def test_relationship_index_is_what_the_eager_loading_plan_used():
    index, mapped = relationship_index(_project(LEGACY))
    assert index == {name: [("app.py", cls)] for name, cls in (
        ("orders", "User"), ("tags", "User"), ("profile", "User"), ("manager", "User"), ("friends", "User"),
        ("user", "Order"), ("lines", "Order"))}
    assert mapped == {"app:User", "app:Order", "app:Line", "app:Tag", "app:Profile"}


def test_planner_delegates_to_the_shared_index():
    from asyncmigrate.analysis.findings import analyze
    from asyncmigrate.config import Config
    from asyncmigrate.migration import Planner

    analysis = analyze(summaries({"app.py": LEGACY}))
    planner = Planner(analysis, None, Config())
    assert planner.relationship_index() == relationship_index(analysis.project)[0]
    assert planner._mapped == relationship_index(analysis.project)[1]


# ============================================================================ statements
STATEMENTS = LEGACY + '''
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload, selectinload, Load

LOADS = (selectinload(User.orders),)


async def f(db, stmt_param):
    a = (await db.execute(select(User).options(selectinload(User.orders), joinedload(User.tags)))).scalar_one()
    stmt = select(Order)
    stmt = stmt.options(joinedload(Order.user).joinedload(User.orders)).where(Order.id > 1)
    b = (await db.execute(stmt)).scalars().all()
    c = (await db.execute(select(User).options(*LOADS))).scalar_one()
    d = (await db.execute(stmt_param)).scalar_one()
    e = await db.get(User, 1, options=[Load(User).selectinload(User.orders)])
    g = await db.execute(update(User).values(id=1))
    h = (await db.execute(select(User.id, Order).options(selectinload(Order.lines).joinedload(Line.x)))).all()
'''


@pytest.fixture(scope="module")
def statements():
    p = _project(STATEMENTS)
    fid = "app:f"
    calls = [c for c in p.functions[fid].summary.calls if c.awaited]
    assert len(calls) == 7
    return {key: statement_of(p, fid, c) for key, c in zip("abcdegh", calls)}


def test_statement_inline(statements):
    st = statements["a"]
    assert st.entity == "app:User" and not st.opaque
    assert st.loaded == {"orders", "tags"} and st.joined == (("app:User", "tags"),)


def test_statement_through_a_name_and_joined_chains(statements):
    st = statements["b"]
    assert st.entity == "app:Order" and not st.opaque
    assert st.loaded == {"user", "orders"}
    assert set(st.joined) == {("app:Order", "user"), ("app:User", "orders")}


def test_statement_opaque(statements):
    assert statements["c"].opaque  # .options(*LOADS)
    assert statements["d"].opaque  # a parameter


def test_statement_get_and_dml(statements):
    e = statements["e"]
    assert e.entity == "app:User" and e.loaded == {"orders"} and not e.opaque
    g = statements["g"]
    assert not g.opaque and g.entities == {None}


def test_statement_joined_inside_selectin_is_not_joined_from_the_root(statements):
    h = statements["h"]
    assert h.entity is None  # select(User.id, ...): the first column is not an entity
    assert h.joined == ()


# ============================================================================ query results
def test_flow_follows_results_names_and_loops():
    p = _project(LEGACY + '''
from sqlalchemy import select


async def f(db):
    result = await db.execute(select(User))
    user = result.scalars().first()
    users = (await db.scalars(select(User))).all()
    for u in users:
        u.orders
    rows = result.all()
    user.orders
''')
    flow = FunctionFlow(p, "app:f", lambda e: e == ("n", "db"))
    base = LEGACY.count("\n")
    kinds = {}
    for b in p.functions["app:f"].summary.bindings:
        v = flow.bound(b)
        kinds[b.name] = (v.kind, v.call.func[2], v.methods) if v else None
    assert kinds == {
        "result": ("result", "execute", ()),
        "user": ("entity", "execute", ("scalars", "first")),
        "users": ("entities", "scalars", ("all",)),
        "u": ("entity", "scalars", ("all", "__iter__")),
        "rows": None,  # Rows are not entities
    }
    assert flow.binding_at("u", base + 10).kind == "for"
    assert flow.binding_at("u", base + 12) is None  # after the loop: not followed
    assert flow.binding_at("user", base + 12).value_span.line == base + 7


def test_flow_trusts_only_the_given_sessions():
    p = _project(LEGACY + '''
async def f(cache):
    user = await cache.get(User, 1)
''')
    flow = FunctionFlow(p, "app:f", lambda e: False)
    (b,) = p.functions["app:f"].summary.bindings
    assert isinstance(b, Binding) and flow.bound(b) is None
