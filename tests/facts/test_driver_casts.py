"""Facts behind ``codemods/driver_casts.py`` (issue 9, class 10), checked on the drivers themselves.

asyncpg sends typed parameters: an integer column compared with a ``str`` fails, where psycopg2's text
parameters let PostgreSQL cast.  ``cast(value, Column.type)`` alone does not help: SQLAlchemy then binds the
value with the column's type and asyncpg refuses a ``str`` for it.  ``cast(literal(value), Column.type)``
binds the value by its run-time Python type and lets PostgreSQL cast: it finds the row for ``"5"`` and for
``5``, finds nothing for ``None`` on a NOT NULL column (as ``IS NULL`` did), and fails like psycopg2 did for a
value that is not a number.  Needs ``ASYNCMIGRATE_PG_URL`` (scripts/postgres.sh).
"""

from __future__ import annotations

import asyncio
import os

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Row(Base):
    __tablename__ = "asyncmigrate_driver_casts"
    id = sa.Column(sa.Integer, primary_key=True)
    big = sa.Column(sa.BigInteger, nullable=False)


def _url(driver: str) -> str:
    base = os.environ.get("ASYNCMIGRATE_PG_URL")
    if not base:
        pytest.skip("ASYNCMIGRATE_PG_URL is not set (start one with scripts/postgres.sh)")
    pytest.importorskip(driver.split("+")[1])
    return make_url(base).set(drivername=driver).render_as_string(hide_password=False)


def _run_asyncpg(where) -> object:
    from sqlalchemy.ext.asyncio import create_async_engine

    async def go():
        engine = create_async_engine(_url("postgresql+asyncpg"))
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.run_sync(Base.metadata.create_all)
                await conn.execute(sa.insert(Row).values(id=5, big=5))
            async with engine.connect() as conn:
                return (await conn.execute(sa.select(Row.id).where(where))).scalars().all()
        finally:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
            await engine.dispose()

    return asyncio.run(go())


def _run_psycopg2(where) -> object:
    engine = sa.create_engine(_url("postgresql+psycopg2"))
    try:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            Base.metadata.create_all(conn)
            conn.execute(sa.insert(Row).values(id=5, big=5))
        with engine.connect() as conn:
            return conn.execute(sa.select(Row.id).where(where)).scalars().all()
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
        engine.dispose()


def _cast(value, column):
    return sa.cast(sa.literal(value), column.type)


@pytest.mark.postgres
def test_asyncpg_rejects_the_plain_comparison_psycopg2_accepted() -> None:
    assert _run_psycopg2(Row.id == "5") == [5]
    with pytest.raises(sa.exc.DBAPIError, match="operator does not exist: integer = character varying"):
        _run_asyncpg(Row.id == "5")


@pytest.mark.postgres
def test_a_cast_of_the_bare_value_is_refused_by_asyncpg() -> None:
    with pytest.raises(sa.exc.DBAPIError, match="invalid input for query argument"):
        _run_asyncpg(Row.id == sa.cast("5", Row.id.type))


@pytest.mark.postgres
@pytest.mark.parametrize("value, found", [("5", [5]), (5, [5]), ("6", []), (None, [])])
def test_a_cast_of_the_literal_matches_the_old_query(value, found) -> None:
    assert _run_asyncpg(Row.id == _cast(value, Row.id)) == found
    assert _run_asyncpg(Row.big == _cast(value, Row.big)) == found
    # and what psycopg2 found with the plain comparison (None: ``IS NULL`` on a NOT NULL column)
    assert _run_psycopg2(Row.id == value) == found
    assert _run_psycopg2(Row.id == _cast(value, Row.id)) == found


@pytest.mark.postgres
def test_a_value_that_is_not_a_number_fails_in_the_database_as_before() -> None:
    with pytest.raises(sa.exc.DBAPIError, match="invalid input syntax for type integer"):
        _run_psycopg2(Row.id == "x")
    with pytest.raises(sa.exc.DBAPIError, match="invalid input syntax for type integer"):
        _run_asyncpg(Row.id == _cast("x", Row.id))
