"""What SQLAlchemy 2.0 refuses of 1.4's API, and what the rewrites put in its place, checked on real versions.

``analysis/legacy_api.py`` and ``fix`` rest on these facts (``facts.LEGACY_ENGINE_METHODS``,
``LEGACY_LIST_ARGUMENT_CONSTRUCTS``, ``METADATA_TYPES``, ``LEGACY_SESSION_KWARGS``, ``TEXTUAL_SQL_METHODS``,
``CONNECTION_MAKERS``):

* on the installed SQLAlchemy (2.x): each 1.4 form fails, and each rewritten form works;
* on 1.4 (opt-in: ``ASYNCMIGRATE_SQLA14_PYTHON`` names a Python with SQLAlchemy 1.4 installed, such as the
  realsuites' fastapi-postgresql environment): each 1.4 form works there (so it is a real 1.4 idiom, not
  code that was always broken), and each rewritten form works there too (so a rewrite never needs the pin
  raised to be right).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session, sessionmaker

from asyncmigrate import facts

SQLA14_ENV = "ASYNCMIGRATE_SQLA14_PYTHON"


@pytest.fixture()
def engine():
    e = sa.create_engine("sqlite://")
    yield e
    e.dispose()


TABLE = sa.table("t", sa.column("a"))


# ---------------------------------------------------------------------------- 2.x refuses the 1.4 forms
def test_installed_sqlalchemy_is_2x() -> None:
    assert int(sa.__version__.split(".")[0]) >= 2


@pytest.mark.parametrize("method", sorted(facts.LEGACY_ENGINE_METHODS))
def test_engine_has_no_connectionless_methods(engine, method: str) -> None:
    assert not hasattr(engine, method)


@pytest.mark.parametrize("method", sorted(facts.TEXTUAL_SQL_METHODS - {"stream", "stream_scalars"}))
def test_session_refuses_plain_string_sql(engine, method: str) -> None:
    with Session(engine) as session, pytest.raises(exc.ArgumentError):
        getattr(session, method)("SELECT 1")


@pytest.mark.parametrize("maker", sorted(facts.CONNECTION_MAKERS))
def test_connections_refuse_plain_string_sql_and_take_text(engine, maker: str) -> None:
    with Session(engine) as session:
        source = session if maker == "connection" else engine
        made = getattr(source, maker)()
        with (made if maker != "connection" else _nullcontext(made)) as conn:
            assert isinstance(conn, sa.engine.Connection)
            with pytest.raises(exc.ArgumentError):
                conn.execute("SELECT 1")
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1


class _nullcontext:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc_info):
        return False


def test_text_is_what_sessions_take(engine) -> None:
    with Session(engine) as session:
        assert session.execute(sa.text("SELECT 1")).scalar() == 1
        assert session.scalar(sa.text("SELECT 2")) == 2


@pytest.mark.parametrize("qualname", sorted(facts.LEGACY_LIST_ARGUMENT_CONSTRUCTS))
def test_list_arguments_are_refused_and_positional_ones_taken(engine, qualname: str) -> None:
    module, name = qualname.rsplit(".", 1)
    construct = getattr(__import__(module, fromlist=[name]), name)
    if name == "select":
        with pytest.raises(exc.ArgumentError):
            construct([TABLE.c.a])
        statement = construct(TABLE.c.a, sa.literal(1))
    else:
        with pytest.raises(exc.ArgumentError):
            construct([(TABLE.c.a == 1, "one")], else_="other")
        statement = sa.select(construct((sa.literal(1) == 1, "one"), (sa.literal(1) == 2, "two"), else_="other"))
    with engine.connect() as conn:
        if name == "select":
            conn.execute(sa.text("CREATE TABLE t (a INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (5)"))
            assert conn.execute(statement).all() == [(5, 1)]
        else:
            assert conn.execute(statement).scalar() == "one"


@pytest.mark.parametrize("qualname", sorted(facts.METADATA_TYPES))
def test_metadata_has_no_bind(engine, qualname: str) -> None:
    module, name = qualname.rsplit(".", 1)
    metadata = getattr(__import__(module, fromlist=[name]), name)
    with pytest.raises(TypeError):
        metadata(bind=engine)


@pytest.mark.parametrize(("keyword", "value"), facts.LEGACY_SESSION_KWARGS)
def test_sessions_refuse_autocommit(engine, keyword: str, value: object) -> None:
    with pytest.raises(exc.ArgumentError):
        sessionmaker(bind=engine, **{keyword: value})()
    with pytest.raises(exc.ArgumentError):
        Session(engine, **{keyword: value})
    sessionmaker(bind=engine, **{keyword: False})().close()  # the 1.4 default spelled out is still accepted


# ---------------------------------------------------------------------------- 1.4 (opt-in)
_ON_14 = textwrap.dedent("""
    import json, warnings
    warnings.simplefilter("ignore")
    import sqlalchemy as sa
    from sqlalchemy.orm import Session, sessionmaker
    out = {"version": sa.__version__}
    e = sa.create_engine("sqlite://")
    t = sa.table("t", sa.column("a"))
    with e.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (5)"))

    def works(name, thunk):
        try:
            thunk()
            out[name] = True
        except Exception as error:
            out[name] = f"{type(error).__name__}: {error}"

    for method in METHODS:
        works("engine." + method, lambda m=method: getattr(e, m))
    works("session.execute(str)", lambda: Session(e).execute("SELECT 1").scalar())
    works("session.scalar(str)", lambda: Session(e).scalar("SELECT 1"))
    works("connection.execute(str)", lambda: e.connect().execute("SELECT 1").scalar())
    works("session.execute(text)", lambda: Session(e).execute(sa.text("SELECT 1")).scalar())
    works("connection.execute(text)", lambda: e.connect().execute(sa.text("SELECT 1")).scalar())
    works("select([..])", lambda: Session(e).execute(sa.select([t.c.a])).all())
    works("select(a, b)", lambda: Session(e).execute(sa.select(t.c.a, sa.literal(1))).all())
    works("case([..])", lambda: Session(e).execute(sa.select(sa.case([(t.c.a == 5, "x")], else_="y"))).all())
    works("case((..))", lambda: Session(e).execute(sa.select(sa.case((t.c.a == 5, "x"), else_="y"))).all())
    works("MetaData(bind=)", lambda: sa.MetaData(bind=e))
    works("autocommit=True", lambda: sessionmaker(bind=e, autocommit=True)().close())
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def on_14() -> dict:
    python = os.environ.get(SQLA14_ENV)
    if not python:
        pytest.skip(f"set {SQLA14_ENV} to a Python with SQLAlchemy 1.4 installed")
    code = _ON_14.replace("METHODS", repr(sorted(facts.LEGACY_ENGINE_METHODS)))
    run = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["version"].startswith("1.4."), result["version"]
    return result


@pytest.mark.parametrize("form", ["session.execute(str)", "session.scalar(str)", "connection.execute(str)",
                                  "select([..])", "case([..])", "MetaData(bind=)", "autocommit=True",
                                  *(f"engine.{m}" for m in sorted(facts.LEGACY_ENGINE_METHODS))])
def test_the_legacy_forms_work_on_14(on_14: dict, form: str) -> None:
    assert on_14[form] is True, on_14[form]


@pytest.mark.parametrize("form", ["session.execute(text)", "connection.execute(text)", "select(a, b)",
                                  "case((..))"])
def test_the_rewritten_forms_work_on_14_too(on_14: dict, form: str) -> None:
    assert on_14[form] is True, on_14[form]
