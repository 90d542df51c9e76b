"""``asyncmigrate/facts.py`` checked against the installed SQLAlchemy, not against itself.

Each table is tested the way SQLALCHEMY_ASYNC.md says it was verified: ``inspect.iscoroutinefunction`` on
the async classes, real engines for URLs, attribute lookups on ``Query`` / ``Select`` / ``Update``.  Names
that only a newer SQLAlchemy or an uninstalled package has are skipped, never silently passed.  Known
mismatches between a table and this SQLAlchemy are strict ``xfail``s with the reason, so fixing the table
(or a SQLAlchemy upgrade) shows up here.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import ForeignKey, create_engine, exc, select
from sqlalchemy.engine import Result, ScalarResult, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Query, Session, mapped_column, relationship

from asyncmigrate import facts

#: Names a table lists that this SQLAlchemy does not have, and why that is harmless.
NOT_ON_QUERY = {
    "join_from": "Select-only since 2.0: a legacy chain can never call it",
    "outerjoin_from": "Select-only since 2.0: a legacy chain can never call it",
    "from_self": "removed in 2.0; still reported for 1.x code",
    "iterate": "not a Query method; reported if a custom Query defines it",
    "with_polymorphic": "removed from Query in 2.0; still reported for 1.x code",
}
FLASK_SQLALCHEMY_TERMINALS = {"paginate", "first_or_404", "get_or_404", "one_or_404"}
ONLY_IN_21 = {"delete_all", "merge_all"}


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
    user: Mapped[User] = relationship(back_populates="addresses")


def resolve(qualname: str) -> Any:
    """Import the longest importable module prefix of ``qualname`` and walk the rest as attributes."""
    parts = qualname.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError:
            if importlib.util.find_spec(parts[0]) is None:
                pytest.skip(f"{parts[0]} is not installed")
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"cannot resolve {qualname}")


def names(table, missing: dict[str, str] = {}) -> list:  # noqa: B006 - read only
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=missing[n])) if n in missing else n
            for n in sorted(table)]


# ---------------------------------------------------------------- §1: what must and must not be awaited
@pytest.mark.parametrize("name", sorted(facts.ASYNC_SESSION_COROUTINES))
def test_async_session_coroutines_are_coroutine_functions(name: str) -> None:
    if name in ONLY_IN_21 and not hasattr(AsyncSession, name):
        pytest.skip(f"AsyncSession.{name} is new in SQLAlchemy 2.1")
    assert inspect.iscoroutinefunction(getattr(AsyncSession, name))


@pytest.mark.parametrize("name", sorted(facts.ASYNC_SESSION_SYNC_METHODS))
def test_async_session_sync_methods_are_not_coroutines(name: str) -> None:
    assert callable(getattr(AsyncSession, name))
    assert not inspect.iscoroutinefunction(getattr(AsyncSession, name))


@pytest.mark.parametrize("name", sorted(facts.SQLMODEL_ASYNC_SESSION_COROUTINES))
def test_sqlmodel_async_session_coroutines(name: str) -> None:
    """SQLModel's AsyncSession adds ``exec``, a coroutine (SQLALCHEMY_ASYNC.md §6); SQLAlchemy's has no such method."""
    assert not hasattr(AsyncSession, name)
    session = pytest.importorskip("sqlmodel.ext.asyncio.session")
    assert inspect.iscoroutinefunction(getattr(session.AsyncSession, name))


@pytest.mark.parametrize("name", sorted(facts.TEXTUAL_SQL_METHODS))
def test_plain_string_sql_is_refused_and_text_accepted(name: str) -> None:
    """SQLAlchemy 2.x ``AsyncSession``: a bare string statement raises ArgumentError; ``text()`` of it runs."""
    import asyncio

    pytest.importorskip("aiosqlite")
    from sqlalchemy import exc, text
    from sqlalchemy.ext.asyncio import AsyncSession as Async, create_async_engine

    async def run() -> None:
        engine = create_async_engine("sqlite+aiosqlite://")
        try:
            async with Async(engine) as session:
                method = getattr(session, name)
                with pytest.raises(exc.ArgumentError, match="text"):
                    await method("SELECT 1")
                result = await method(text("SELECT 1"))
                if name == "scalar":
                    assert result == 1
                elif name == "execute":
                    assert result.scalar() == 1
                elif name == "scalars":
                    assert result.all() == [1]
                else:  # stream, stream_scalars: async results
                    assert [r async for r in result] in ([1], [(1,)])
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_sqlmodel_relationship_takes_sqlalchemy_keywords_in_a_mapping() -> None:
    """``Relationship(lazy=...)`` is a TypeError; ``sa_relationship_kwargs={"lazy": ...}`` reaches relationship()."""
    sqlmodel = pytest.importorskip("sqlmodel")
    module, name = facts.SQLMODEL_RELATIONSHIP.rsplit(".", 1)
    assert getattr(sqlmodel, name) is sqlmodel.Relationship and module == "sqlmodel"
    with pytest.raises(TypeError):
        sqlmodel.Relationship(back_populates="x", lazy="selectin")
    info = sqlmodel.Relationship(back_populates="x", **{facts.SQLMODEL_RELATIONSHIP_KWARGS: {"lazy": "selectin"}})
    assert info.sa_relationship_kwargs == {"lazy": "selectin"}


def test_session_method_tables_do_not_overlap() -> None:
    assert not facts.ASYNC_SESSION_COROUTINES & facts.ASYNC_SESSION_SYNC_METHODS


@pytest.mark.parametrize("name", sorted(facts.ASYNC_ENGINE_COROUTINES))
def test_async_engine_coroutines(name: str) -> None:
    assert inspect.iscoroutinefunction(getattr(AsyncEngine, name))


@pytest.mark.parametrize("name", ["execution_options", "clear_compiled_cache", "connect", "begin"])
def test_async_engine_sync_methods_are_not_coroutines(name: str) -> None:
    assert name not in facts.ASYNC_ENGINE_COROUTINES
    assert not inspect.iscoroutinefunction(getattr(AsyncEngine, name))


def test_async_engine_has_no_execute() -> None:
    assert not hasattr(AsyncEngine, "execute")


@pytest.mark.parametrize("name", sorted(facts.ASYNC_CONNECTION_COROUTINES))
def test_async_connection_coroutines(name: str) -> None:
    assert inspect.iscoroutinefunction(getattr(AsyncConnection, name))


@pytest.mark.parametrize("name", ["in_transaction", "get_transaction"])
def test_async_connection_sync_methods(name: str) -> None:
    assert name not in facts.ASYNC_CONNECTION_COROUTINES
    assert not inspect.iscoroutinefunction(getattr(AsyncConnection, name))


@pytest.mark.parametrize("name", sorted(facts.RESULT_METHODS))
def test_result_methods_are_sync(name: str) -> None:
    assert hasattr(Result, name)
    for cls in (Result, ScalarResult):
        assert not inspect.iscoroutinefunction(getattr(cls, name, None))


@pytest.mark.parametrize("name", sorted(facts.SYNC_BLOCKING_SESSION_METHODS - {"exec"}))
def test_sync_blocking_methods_exist_on_session(name: str) -> None:
    if name in ONLY_IN_21 and not hasattr(Session, name):
        pytest.skip(f"Session.{name} is new in SQLAlchemy 2.1")
    assert callable(getattr(Session, name))


@pytest.mark.parametrize("name", sorted(facts.SESSION_ONLY_METHODS))
def test_session_only_methods_exist_on_session(name: str) -> None:
    assert callable(getattr(Session, name))


def test_sync_only_session_methods_are_exactly_those_async_session_lacks() -> None:
    """What the soundness check calls ``AttributeError`` on a converted session (``soundness.py``)."""
    lacking = {n for n in dir(Session) if not n.startswith("_") and callable(getattr(Session, n))
               and not hasattr(AsyncSession, n)}
    assert facts.SYNC_ONLY_SESSION_METHODS == lacking


def test_ambiguous_and_20_style_names_are_session_methods() -> None:
    assert facts.SYNC_20_STYLE_METHODS - {"exec"} <= set(dir(Session))
    assert facts.AMBIGUOUS_METHOD_NAMES <= set(dir(Session))


# ---------------------------------------------------------------- qualified names resolve
QUALIFIED = sorted(facts.SYNC_SESSION_TYPES | facts.ASYNC_SESSION_TYPES | facts.SYNC_SESSIONMAKERS
                   | facts.ASYNC_SESSIONMAKERS | facts.SYNC_ENGINE_FACTORIES | facts.ASYNC_ENGINE_FACTORIES
                   | facts.EAGER_OPTIONS | facts.JOINEDLOAD | facts.INSPECT_FUNCTIONS)


@pytest.mark.parametrize("qualname", QUALIFIED)
def test_qualified_names_resolve(qualname: str) -> None:
    assert callable(resolve(qualname))


def test_session_classes() -> None:
    for qualname in sorted(facts.ASYNC_SESSION_TYPES):
        if qualname.startswith("sqlalchemy."):
            obj = resolve(qualname)
            assert obj is AsyncSession or issubclass(obj, AsyncSession) or "scoped" in qualname
    assert resolve("sqlalchemy.orm.Session") is Session


@pytest.mark.parametrize("name", sorted(facts.SCOPED_REGISTRY_IO_METHODS))
def test_scoped_registry_methods_are_the_registrys_own(name: str) -> None:
    from sqlalchemy.ext.asyncio import async_scoped_session
    from sqlalchemy.orm import scoped_session, sessionmaker

    assert callable(getattr(scoped_session, name))
    assert not hasattr(sessionmaker, name) and not hasattr(Session, name)  # a factory receiver names a registry
    assert inspect.iscoroutinefunction(getattr(async_scoped_session, name))


def test_object_session_returns_the_sync_session() -> None:
    class Base(DeclarativeBase):
        pass

    class Thing(Base):
        __tablename__ = "things"
        id: Mapped[int] = mapped_column(primary_key=True)

    with Session() as s:
        t = Thing()
        s.add(t)
        for qualname in sorted(facts.OBJECT_SESSION_FUNCTIONS):
            assert resolve(qualname)(t) is s, qualname


def test_inspect_of_a_sync_engine_connects() -> None:
    # ``inspect(engine)`` checks out a connection at once (the I/O ASM144 reports), before any reflection call
    engine = create_engine("sqlite://")
    checkouts = []
    sa.event.listen(engine, "checkout", lambda *a: checkouts.append(a))
    for qualname in sorted(facts.INSPECT_FUNCTIONS):
        checkouts.clear()
        resolve(qualname)(engine)
        assert checkouts, qualname


def test_joinedload_is_an_eager_option() -> None:
    assert facts.JOINEDLOAD <= facts.EAGER_OPTIONS


# ---------------------------------------------------------------- §2: Query and Select
@pytest.mark.parametrize("name", sorted(facts.QUERY_BUILDER_SAME_NAME))
def test_same_name_builders_exist_on_select(name: str) -> None:
    assert callable(getattr(sa.Select, name))


@pytest.mark.parametrize("name", names(facts.QUERY_BUILDER_SAME_NAME, NOT_ON_QUERY))
def test_same_name_builders_exist_on_query(name: str) -> None:
    assert callable(getattr(Query, name))


@pytest.mark.parametrize("legacy,new", sorted(facts.QUERY_BUILDER_RENAMED.items()))
def test_renamed_builders(legacy: str, new: str) -> None:
    assert hasattr(Query, legacy) and not hasattr(sa.Select, legacy)
    assert hasattr(sa.Select, new)


@pytest.mark.parametrize("legacy,preferred", sorted(facts.QUERY_BUILDER_PREFERRED.items()))
def test_preferred_spellings_exist_on_both(legacy: str, preferred: str) -> None:
    assert hasattr(Query, legacy) and hasattr(Query, preferred)
    assert hasattr(sa.Select, legacy) and hasattr(sa.Select, preferred)


def test_not_equivalent_builders_really_differ() -> None:
    """``Query.union()`` returns entities; ``Select.union()`` executes as plain columns."""
    assert facts.QUERY_BUILDER_NOT_EQUIVALENT <= facts.QUERY_BUILDER_SAME_NAME
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([User(id=1), User(id=2)])
        s.flush()
        for name in sorted(facts.QUERY_BUILDER_NOT_EQUIVALENT):
            legacy = getattr(s.query(User).filter(User.id == 1), name)(s.query(User).filter(User.id == 2)).all()
            modern = s.execute(getattr(select(User).where(User.id == 1), name)(select(User).where(User.id == 2)))
            assert all(isinstance(u, User) for u in legacy)
            assert sorted(modern.scalars().all()) == [1, 2]  # ids, not Users


@pytest.mark.parametrize("name", sorted(facts.QUERY_DML_CRITERIA))
def test_dml_criteria_exist_on_query_update_and_delete(name: str) -> None:
    assert hasattr(Query, name)
    assert callable(getattr(sa.update(User), name)) and callable(getattr(sa.delete(User), name))


@pytest.mark.parametrize("name", sorted(facts.QUERY_JOINS))
def test_joins_exist_on_select(name: str) -> None:
    assert callable(getattr(sa.Select, name))


@pytest.mark.parametrize("name", sorted(facts.QUERY_TERMINALS - FLASK_SQLALCHEMY_TERMINALS))
def test_terminals_exist_on_query(name: str) -> None:
    assert callable(getattr(Query, name))


@pytest.mark.parametrize("name", names(facts.QUERY_UNSUPPORTED, NOT_ON_QUERY))
def test_unsupported_names_exist_on_query(name: str) -> None:
    assert hasattr(Query, name)


@pytest.mark.parametrize("name", sorted(facts.COLUMN_IN_METHODS))
def test_in_methods_take_a_select(name: str) -> None:
    clause = getattr(User.id, name)(select(Address.user_id))
    assert "SELECT addresses.user_id" in str(clause)


def test_subquery_operators() -> None:
    assert "EXISTS" in str(User.addresses.any()) and "EXISTS" in str(Address.user.has())
    assert "EXISTS" in str(select(User).exists()) and "EXISTS" in str(sa.exists())


@pytest.mark.parametrize("module", sorted(facts.SQL_CONSTRUCT_MODULES))
def test_sql_construct_modules_export_the_constructs(module: str) -> None:
    if importlib.util.find_spec(module.split(".")[0]) is None:
        pytest.skip(f"{module} is not installed")
    namespace = importlib.import_module(module)
    assert getattr(namespace, "select") is not None
    if module == "sqlalchemy":
        assert {namespace.update, namespace.delete, namespace.func} and namespace.select is sa.select


@pytest.mark.parametrize("name", sorted(facts.ENTITY_FACTORIES))
def test_entity_factories(name: str) -> None:
    assert callable(getattr(sa.orm, name))


@pytest.mark.parametrize("name", sorted(facts.COLUMN_FACTORIES))
def test_column_factories(name: str) -> None:
    assert callable(getattr(sa, name))


# ---------------------------------------------------------------- §3: URLs and engines
def _dbapi_installed(url: str) -> bool:
    try:
        make_url(url).get_dialect().import_dbapi()
    except (ImportError, exc.NoSuchModuleError):
        return False
    return True


def _sample(prefix: str, tmp_path) -> str:
    """A URL starting with ``prefix``: a file for SQLite, an unreachable server otherwise (nothing connects)."""
    return prefix + (f"/{tmp_path / 'facts.db'}" if prefix.startswith("sqlite") else "u:p@localhost:1/db")


@pytest.mark.parametrize("sync_prefix,async_prefix", facts.ASYNC_DRIVER_FOR_URL)
def test_async_url_builds_an_async_engine(sync_prefix: str, async_prefix: str, tmp_path) -> None:
    url = _sample(sync_prefix, tmp_path)
    converted = facts.async_url(url)
    assert converted == async_prefix + url[len(sync_prefix):]
    if not _dbapi_installed(converted):
        pytest.skip(f"the driver for {async_prefix} is not installed")
    engine = create_async_engine(converted)  # no connection is made here
    assert isinstance(engine, AsyncEngine)
    if converted.startswith("sqlite"):

        async def one() -> int:
            async with engine.connect() as conn:
                return (await conn.execute(sa.text("SELECT 1"))).scalar_one()

        assert asyncio.run(one()) == 1
    asyncio.run(engine.dispose())


@pytest.mark.parametrize("sync_prefix,async_prefix", [r for r in facts.ASYNC_DRIVER_FOR_URL if r[0] != r[1]])
def test_sync_url_is_rejected_by_create_async_engine(sync_prefix: str, async_prefix: str, tmp_path) -> None:
    url = _sample(sync_prefix, tmp_path)
    assert facts.is_sync_url(url)
    try:
        make_url(url).get_dialect()
    except exc.NoSuchModuleError:  # postgres:// (§3): no such dialect, sync or async
        with pytest.raises(exc.NoSuchModuleError):
            create_async_engine(url)
        return
    if not _dbapi_installed(url):
        pytest.skip(f"the sync driver for {sync_prefix} is not installed (2.1 may also pick an async one)")
    with pytest.raises(exc.InvalidRequestError, match="requires an async driver"):
        create_async_engine(url)


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///x.db", "postgresql+asyncpg://u@h/db", "mysql+aiomysql://h/db"])
def test_async_urls_are_left_alone(url: str) -> None:
    assert facts.async_url(url) == url
    assert not facts.is_sync_url(url)


def test_unknown_urls() -> None:
    assert facts.async_url("not a url") is None
    assert facts.async_url("oracle://h/db") is None


@pytest.mark.parametrize("kwarg", sorted(facts.ENGINE_KWARGS_DROPPED))
def test_dropped_engine_kwargs_are_rejected(kwarg: str) -> None:
    with pytest.raises(TypeError, match="Invalid argument"):
        create_async_engine("sqlite+aiosqlite://", **{kwarg: "x"})


@pytest.mark.parametrize("pool,replacement", sorted(facts.ASYNC_POOLCLASS.items()))
def test_pool_classes(pool: str, replacement: str | None) -> None:
    with pytest.raises(exc.ArgumentError, match="cannot be used with asyncio engine"):
        create_async_engine("sqlite+aiosqlite://", poolclass=getattr(sa.pool, pool))
    if replacement is not None:
        engine = create_async_engine("sqlite+aiosqlite://", poolclass=getattr(sa.pool, replacement))
        asyncio.run(engine.dispose())


@pytest.mark.parametrize("driver", sorted(facts.DRIVER_REQUIREMENT))
def test_driver_requirements_name_known_async_drivers(driver: str) -> None:
    assert driver in facts.ASYNC_DRIVERS
