"""Proof that every ``QueryToSelect`` mapping keeps the legacy result (SQLALCHEMY_ASYNC.md §2, §8 item 6).

Each case is the body of ``def f(db)`` written against the legacy ``Query`` API.  It runs twice, on two
copies of one SQLite file holding §2's data (alice(30) with 2 addresses, bob(25) 1, carol(35) 0,
dave(25) 1):

* as written, with a sync ``Session``;
* as the codemod rewrites it (``async def f(db)``; the plan says ``db`` is a session in ``f``), with an
  ``AsyncSession`` on ``sqlite+aiosqlite``.  Nothing on the async side is written by hand.

The results are compared after normalising: entities by class and column values (never by identity),
Rows by their values (and that they *are* Rows, so ``.scalars()`` mistakes show up), exceptions by type,
and the tables' contents afterwards (for bulk update / delete).
"""

from __future__ import annotations

import asyncio
import shutil
import textwrap
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ForeignKey, String, and_, create_engine, desc, exists, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase, Mapped, Session, aliased, joinedload, mapped_column, relationship, selectinload,
)

from asyncmigrate.codemods.base import FilePlan
from asyncmigrate.codemods.query_to_select import run_on_source

# Two cases select from users and addresses without a join on purpose (legacy de-duplication).
pytestmark = pytest.mark.filterwarnings("ignore:SELECT statement has a cartesian product")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30))
    age: Mapped[int]
    addresses: Mapped[list["Address"]] = relationship(back_populates="user")


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped[User] = relationship(back_populates="addresses")


NAMESPACE = {
    "User": User, "Address": Address, "func": func, "exists": exists, "joinedload": joinedload,
    "selectinload": selectinload, "aliased": aliased, "and_": and_, "desc": desc,
    "models": types.SimpleNamespace(User=User, Address=Address),
}

C = pytest.param
CASES = [
    # --- entity queries: .scalars()
    C("return db.query(User).filter(User.age > 26).order_by(User.id).all()", id="all"),
    C("return db.query(User).filter(User.age >= 25, User.name != 'carol').filter_by(age=25)"
      ".order_by(User.id.desc()).limit(2).offset(0).all()", id="all-chain"),
    C("return sorted(u.id for u in db.query(User).all())", id="all-in-genexp-first-iterable"),
    C("return db.query(models.User).order_by(models.User.id).all()", id="all-dotted-class"),
    C("ua = aliased(User)\nreturn db.query(ua).filter(ua.age == 25).order_by(ua.id).all()", id="all-aliased"),
    C("return db.query(User).order_by(User.age.desc()).first()", id="first"),
    C("return db.query(User).filter(User.age > 99).first()", id="first-none"),
    C("return db.query(User).order_by(User.id).limit(3).offset(2).first()", id="first-after-limit-offset"),
    C("return db.query(User).filter(User.name == 'bob').one()", id="one"),
    C("return db.query(User).filter(User.age > 99).one()", id="one-none-raises"),
    C("return db.query(User).filter(User.age == 25).one()", id="one-many-raises"),
    C("return db.query(User).filter(User.name == 'bob').one_or_none()", id="one_or_none"),
    C("return db.query(User).filter(User.age > 99).one_or_none()", id="one_or_none-none"),
    C("return db.query(User).filter(User.age == 25).one_or_none()", id="one_or_none-many-raises"),
    # --- get
    C("return db.query(User).get(2)", id="get"),
    C("return db.query(User).get(99)", id="get-missing"),
    C("return db.query(User).get(2).name", id="get-then-attribute"),
    C("u = db.query(User).options(selectinload(User.addresses)).get(1)\nreturn u.id, len(u.addresses)",
      id="get-options"),
    # --- count
    C("return db.query(User).count()", id="count"),
    C("return db.query(User).filter(User.age == 25).count() == 2", id="count-compared"),
    C("return db.query(User).join(User.addresses).count()", id="count-join"),
    C("return db.query(User).join(User.addresses).distinct().count()", id="count-join-distinct"),
    C("return db.query(User).options(joinedload(User.addresses)).count()", id="count-joinedload"),
    C("return db.query(User.age).distinct().count()", id="count-column-distinct"),
    # --- scalar: strict like Query.scalar()
    C("return db.query(User).filter(User.id == 1).scalar()", id="scalar-entity"),
    C("return db.query(User).filter(User.age == 25).scalar()", id="scalar-many-raises"),
    C("return db.query(User).filter(User.age > 99).scalar()", id="scalar-none"),
    C("return db.query(func.max(User.age)).scalar()", id="scalar-max"),
    C("return db.query(func.count(User.id)).filter(User.age == 25).scalar()", id="scalar-count"),
    C("return db.query(User.name).filter(User.id == 3).scalar()", id="scalar-column"),
    C("return db.query(User.name, User.age).filter(User.id == 3).scalar()", id="scalar-two-columns"),
    C("return db.query(User.name).scalar()", id="scalar-column-many-raises"),
    # --- column and multi-entity queries: Rows
    C("return db.query(User.id, User.name).order_by(User.id).all()", id="rows-columns"),
    C("return db.query(User.name).order_by(User.name).all()", id="rows-one-column"),
    C("return db.query(User.name).order_by(User.id).first()", id="rows-first"),
    C("return db.query(User.name, User.age).filter(User.id == 2).one()", id="rows-one"),
    C("return db.query(User.name.label('n')).filter(User.id == 9).one_or_none()", id="rows-one_or_none-label"),
    C("return db.query(User, Address).join(User.addresses).order_by(Address.id).all()", id="rows-two-entities"),
    C("return db.query(User.name).join(User.addresses).order_by(User.name).all()", id="rows-join-not-deduplicated"),
    C("return db.query(User, User.age).join(User.addresses).order_by(User.id).all()", id="rows-join-deduplicated"),
    C("return db.query(User.age, Address.email).order_by(User.age, Address.email).all()",
      id="rows-cartesian-columns-not-deduplicated"),
    C("return db.query(User, Address.user_id).filter(Address.user_id == 1).order_by(User.id).all()",
      id="rows-cartesian-entity-deduplicated"),
    C("return db.query(func.count(User.id)).all()", id="rows-func"),
    C("return db.query(User.age, func.count(User.id)).group_by(User.age)"
      ".having(func.count(User.id) > 1).all()", id="rows-group-having"),
    C("return db.query(User.age).distinct().order_by(User.age).all()", id="rows-distinct"),
    C("return db.query(func.count(Address.id)).select_from(User).join(User.addresses)"
      ".filter(User.age > 26).scalar()", id="select_from-join-scalar"),
    C("total = func.sum(User.age)\nreturn db.query(User.age, total).group_by(User.age).order_by(User.age).all()",
      id="rows-local-column-variable"),
    # --- joins de-duplicate entities in legacy Query: .unique()
    C("return db.query(User).join(User.addresses).filter(Address.email.like('%@x')).order_by(User.id).all()",
      id="join-unique"),
    C("return db.query(User).join(Address, Address.user_id == User.id).order_by(User.id).all()",
      id="join-onclause-unique"),
    C("return db.query(User).filter(User.id == Address.user_id).order_by(User.id).all()", id="implicit-join-unique"),
    C("return db.query(User).outerjoin(User.addresses).order_by(User.id).all()", id="outerjoin-unique"),
    C("return db.query(User).join(User.addresses).filter(User.name == 'alice').one()", id="join-one"),
    C("return db.query(User).join(User.addresses).filter(User.name == 'alice').one_or_none()",
      id="join-one_or_none"),
    C("return db.query(User).join(User.addresses).filter(User.name == 'alice').scalar()", id="join-scalar"),
    C("return [u.id for u in db.query(User).join(User.addresses).order_by(User.id)]", id="join-iterate"),
    C("return db.query(User).filter(User.addresses.any(Address.email.like('a%'))).order_by(User.id).all()",
      id="any-no-unique-needed"),
    # --- joined eager loading of a collection: .unique() is required
    C("return [(u.id, len(u.addresses)) for u in db.query(User).options(joinedload(User.addresses))"
      ".order_by(User.id).all()]", id="joinedload-all"),
    C("u = db.query(User).options(joinedload(User.addresses)).order_by(User.id).first()\n"
      "return u.id, len(u.addresses)", id="joinedload-first"),
    C("u = db.query(User).options(joinedload(User.addresses)).filter(User.id == 1).one()\n"
      "return u.id, len(u.addresses)", id="joinedload-one"),
    C("return [(u.id, len(u.addresses)) for u in db.query(User).options(joinedload(User.addresses))]",
      id="joinedload-iterate"),
    C("a = db.query(Address).options(joinedload(Address.user)).filter(Address.id == 3).one()\n"
      "return a.user.name", id="joinedload-many-to-one"),
    # --- bulk update / delete: .rowcount, synchronize_session
    C("u = db.query(User).filter(User.name == 'alice').one()\n"
      "n = db.query(User).filter(User.age > 26).update({User.age: 26})\n"
      "return n, u.age", id="update-auto-sync"),
    C("u = db.query(User).get(1)\n"
      "n = db.query(User).filter(User.id == 1).update({'age': 40}, synchronize_session=False)\n"
      "return n, u.age", id="update-string-keys-no-sync",
      marks=pytest.mark.xfail(strict=True, reason="deliberate: synchronize_session=False is dropped, so an object "
                              "loaded before the update sees the new value at once instead of after the commit "
                              "(test_bulk_dml_then_commit_reads_what_the_sync_session_read)")),
    C("n = db.query(User).filter(User.id == 1).update({'age': 40})\nreturn n", id="update-string-keys"),
    C("q = db.query(User).filter(User.age == 25)\nn = q.update({User.age: 26})\nreturn n, q.count()",
      id="stored-update"),
    C("q = db.query(Address).filter(Address.user_id == 1)\nfirst = q.order_by(Address.id).first()\n"
      "return q.delete(), first", id="stored-delete"),
    C("u = db.query(User).get(1)\n"
      "n = db.query(User).filter(User.age > 26).update({User.age: User.age + 1}, synchronize_session='fetch')\n"
      "return n, u.age", id="update-fetch"),
    C("db.query(User).filter_by(name='bob').update({User.age: 1})\nreturn None", id="update-statement"),
    C("return db.query(User).filter(User.age > 99).update({User.age: 1})", id="update-no-rows"),
    C("n = db.query(Address).filter(Address.user_id == 1).delete()\nreturn n", id="delete"),
    C("a = db.query(Address).get(3)\ndb.query(Address).filter(Address.id == 3).delete()\nreturn a in db",
      id="delete-statement-leaves-session"),
    C("return db.query(Address).filter(Address.email.like('%@x')).delete(synchronize_session=False)",
      id="delete-no-sync"),
    # --- EXISTS
    C("return db.query(db.query(User).filter(User.age > 30).exists()).scalar()", id="exists-true"),
    C("return db.query(db.query(User).filter(User.age > 99).exists()).scalar()", id="exists-false"),
    C("return db.query(exists().where(Address.user_id == User.id).where(User.name == 'carol')).scalar()",
      id="exists-construct"),
    C("return db.query(exists().where(Address.user_id == User.id, User.name == 'alice')).scalar()",
      id="exists-construct-true"),
    C("return db.query(Address).filter(db.query(User).filter(User.id == Address.user_id, User.age == 25)"
      ".exists()).order_by(Address.id).all()", id="exists-in-filter"),
    # --- with_entities / add_columns
    C("return db.query(User).filter(User.age == 25).with_entities(User.name).order_by(User.name).all()",
      id="with_entities"),
    C("return db.query(User).filter(User.age == 25).with_entities(func.count()).scalar()",
      id="with_entities-count"),
    C("return db.query(User).add_columns(User.age).order_by(User.id).all()", id="add_columns"),
    # --- a query used as a subquery
    C("return db.query(User).filter(User.id.in_(db.query(Address.user_id).filter(Address.email.like('a%'))))"
      ".order_by(User.id).all()", id="in-subquery"),
    C("return db.query(User.name).filter(User.id.not_in(db.query(Address.user_id))).all()",
      id="not_in-subquery"),
    # --- iteration
    C("out = []\nfor u in db.query(User).filter(User.age > 26).order_by(User.id):\n    out.append(u.name)\n"
      "return out", id="iterate"),
    C("return [(name, age) for name, age in db.query(User.name, User.age).order_by(User.id)]",
      id="iterate-rows"),
    # --- a stored query, refined later
    C("q = db.query(User)\nif True:\n    q = q.filter(User.age == 25)\n"
      "return q.count(), q.order_by(User.id).all(), [u.name for u in q]", id="stored-refined"),
    C("q = db.query(User).order_by(User.id)\nif False:\n    q = q.filter(User.age == 25)\n"
      "return q.first(), q.all()", id="stored-unrefined"),
    C("q = db.query(User)\nq = q.join(User.addresses)\nreturn q.order_by(User.id).all()", id="stored-join-unique"),
    C("q = db.query(User).filter(User.age > 30)\nreturn db.query(q.exists()).scalar()", id="stored-exists"),
    C("q = db.query(Address.user_id)\nq = q.filter(Address.email.like('b%'))\n"
      "return db.query(User.name).filter(User.id.in_(q)).all()", id="stored-subquery"),
    C("q = db.query(User.name, User.age)\nq = q.filter(User.age < 30)\n"
      "for row in q:\n    pass\nreturn q.order_by(User.name).all(), row", id="stored-rows"),
    # --- chains on several lines keep their layout; the result must not change
    C("return (\n    db.query(User)  # newest first\n    .filter(User.age > 26)\n    .order_by(User.id.desc())\n"
      "    .first()\n)", id="multiline-first"),
    C("n = (\n    db.query(User)\n    .filter(User.age < 30)\n    .update(\n        {User.age: 1},\n"
      "        synchronize_session=False,\n    )\n)\nreturn n", id="multiline-update"),
    C("return (\n    db.query(User)\n    .join(User.addresses)\n    .count()\n)", id="multiline-count"),
]


def normalise(value: Any) -> Any:
    if isinstance(value, (User, Address)):
        columns = sorted(c.key for c in type(value).__table__.columns)
        return (type(value).__name__, *(getattr(value, c) for c in columns))
    if isinstance(value, Row):
        return ("Row", *(normalise(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [normalise(v) for v in value]
    assert value is None or isinstance(value, (bool, int, str)), repr(value)
    return value


SNAPSHOT = [select(User.id, User.name, User.age).order_by(User.id), select(Address.id, Address.user_id).order_by(Address.id)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([
            User(id=1, name="alice", age=30, addresses=[Address(id=1, email="a1@x"), Address(id=2, email="a2@x")]),
            User(id=2, name="bob", age=25, addresses=[Address(id=3, email="b@x")]),
            User(id=3, name="carol", age=35),
            User(id=4, name="dave", age=25, addresses=[Address(id=4, email="d@x")]),
        ])
        s.commit()
    engine.dispose()
    return path


def function_source(body: str, asynchronous: bool) -> str:
    return f"{'async ' if asynchronous else ''}def f(db):\n" + textwrap.indent(body, "    ") + "\n"


def load(source: str):
    namespace = dict(NAMESPACE)
    exec(compile(source, "<case>", "exec"), namespace)
    return namespace["f"]


def run_legacy(source: str, db_path: Path) -> tuple[Any, list]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as db, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LegacyAPIWarning for Query.get()
            try:
                result = normalise(load(source)(db))
            except Exception as exc:  # noqa: BLE001 - the exception type is the result
                result = ("raises", type(exc).__name__)
            return result, [db.execute(stmt).all() for stmt in SNAPSHOT]
    finally:
        engine.dispose()


def run_async(source: str, db_path: Path) -> tuple[Any, list]:
    async def main():
        engine = create_async_engine(f"sqlite+aiosqlite:///{db_path}")
        try:
            async with AsyncSession(engine, expire_on_commit=False) as db:  # what the migrated factory makes
                try:
                    result = normalise(await load(source)(db))
                except Exception as exc:  # noqa: BLE001
                    result = ("raises", type(exc).__name__)
                return result, [(await db.execute(stmt)).all() for stmt in SNAPSHOT]
        finally:
            await engine.dispose()

    return asyncio.run(main())


def rewrite(body: str) -> str:
    source, warned = run_on_source(function_source(body, asynchronous=True), FilePlan(sessions={"f": frozenset({"db"})}))
    assert warned == [], warned
    assert ".query(" not in source, source
    return source


@pytest.mark.parametrize("body", CASES)
def test_rewrite_gives_the_legacy_result(body: str, template: Path, tmp_path: Path, request) -> None:
    legacy_db, async_db = tmp_path / "legacy.db", tmp_path / "async.db"
    shutil.copy(template, legacy_db)
    shutil.copy(template, async_db)
    rewritten = rewrite(body)

    expected = run_legacy(function_source(body, asynchronous=False), legacy_db)
    actual = run_async(rewritten, async_db)

    raises = isinstance(expected[0], tuple) and expected[0][0] == "raises"
    assert raises == ("-raises" in request.node.callspec.id), f"unexpected legacy result {expected[0]}"

    assert actual == expected, f"\n--- rewritten ---\n{rewritten}"


def test_cases_cover_every_terminal_and_context() -> None:
    """Every verified terminal, and iteration, subqueries and stored queries, has at least one case."""
    bodies = " ".join(p.values[0] for p in CASES)
    for needle in (".all()", ".first()", ".one()", ".one_or_none()", ".scalar()", ".get(", ".count()",
                   ".update(", ".delete(", ".exists()", ".with_entities(", ".add_columns(", ".in_(db.query",
                   "for u in db.query", "q = q.filter", "joinedload", ".join(", ".outerjoin("):
        assert needle in bodies, needle


def test_scalars_on_rows_would_be_caught(template: Path, tmp_path: Path) -> None:
    """The comparison is strict enough to see the §2 DIFF rows (Row 1-tuples vs entities)."""
    shutil.copy(template, tmp_path / "a.db")
    shutil.copy(template, tmp_path / "b.db")
    body = "return db.query(User).order_by(User.id).all()"
    wrong = "async def f(db):\n    return (await db.execute(select(User).order_by(User.id))).all()\n"
    legacy = run_legacy(function_source(body, asynchronous=False), tmp_path / "a.db")
    assert run_async("from sqlalchemy import select\n" + wrong, tmp_path / "b.db") != legacy


AFTER_COMMIT = [
    C("u = db.query(User).get(1)\n"
      "db.query(User).filter(User.id == 1).update({'age': 40}, synchronize_session=False)\nreturn u",
      id="update-no-sync"),
    C("u = db.query(User).get(1)\nq = db.query(User).filter(User.id == 1)\n"
      "q.update({User.age: 41}, synchronize_session=False)\nreturn u", id="stored-update-no-sync"),
    C("u = db.query(User).get(2)\ndb.query(User).filter(User.age == 25).update({User.age: 1}, "
      "synchronize_session='fetch')\nreturn u", id="update-fetch"),
]


@pytest.mark.parametrize("body", AFTER_COMMIT)
def test_bulk_dml_then_commit_reads_what_the_sync_session_read(body: str, template: Path, tmp_path: Path) -> None:
    """An object loaded before a bulk update and read after the commit: the sync session expired it on
    commit and reloaded the new value; the migrated session (expire_on_commit=False) must show the same,
    which is why ``synchronize_session=False`` is not carried over."""
    shutil.copy(template, tmp_path / "legacy.db")
    shutil.copy(template, tmp_path / "async.db")
    rewritten = rewrite(body)

    engine = create_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    with Session(engine) as db, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = load(function_source(body, asynchronous=False))(db)
        db.commit()
        expected = normalise(obj)
    engine.dispose()

    async def main():
        async_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.db'}")
        try:
            async with AsyncSession(async_engine, expire_on_commit=False) as db:
                obj = await load(rewritten)(db)
                await db.commit()
                return normalise(obj)
        finally:
            await async_engine.dispose()

    assert asyncio.run(main()) == expected, f"\n--- rewritten ---\n{rewritten}"
    assert expected[1] not in (25, 30), "each case reads an age the bulk update changed"
