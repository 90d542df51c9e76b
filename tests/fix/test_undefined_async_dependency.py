"""``fix`` plans ``Depends(get_async_db)`` where the database rewrite defines no ``get_async_db`` (found on
the corpus, issue 5): the verification then rejects the whole migration and ``--write`` writes nothing.

1. ``get_db`` defined outside the database module.  A very common layout keeps the engine (and perhaps ``SessionLocal``) in ``app/db.py`` and the session
dependency in ``app/api/deps.py``, with an ``Annotated`` alias the routes import::

    def get_db():
        with SessionLocal() as session:      # or Session(engine)
            yield session

    SessionDep = Annotated[Session, Depends(get_db)]

``fix`` plans ``Depends(get_db)`` -> ``Depends(get_async_db)`` (and the alias as ``AsyncSessionDep =
Annotated[AsyncSession, Depends(get_async_db)]``), but the database rewrite adds the async engine/factory to
``db.py`` only and defines ``get_async_db`` nowhere (it does so only when ``get_db`` sits in the database
module itself).  The verification then rejects ``deps.py`` ("the rewrite would use undefined name(s)
get_async_db") and every route module ("would import AsyncSessionDep from app.api.deps, which does not
define it"; without the alias: "would import get_async_db from app.api.deps, which does not define it"),
so ``--write`` writes nothing, exit 3.  The same happens on fastapi/full-stack-fastapi-template
(backend/app/api/deps.py, ``Session(engine)``).

2. The engine built by a helper function (``engine = make_engine(url)``, ``create_engine`` inside it): the
database rewrite leaves it alone ("create_engine() outside a module-level assignment is left alone") and so
adds no ``async_engine``/``AsyncSessionLocal``/``get_async_db``, yet ``get_db`` and the ``Annotated`` alias
beside it are still rewritten to them.  The same happens on Netflix/dispatch
(src/dispatch/database/core.py, ``engine = create_db_engine(...)``: 52 files rejected) and on
mealie-recipes/mealie (mealie/db/db_setup.py, ``SessionLocal, engine = sql_global_init(url)``: 8 files rejected).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from asyncmigrate.cli import main

MODELS = '''\
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
'''

ROUTES = '''\
from fastapi import APIRouter
from sqlalchemy import select

from app.api.deps import SessionDep
from app.models import Item

router = APIRouter()


@router.get("/items")
def read_items(session: SessionDep):
    return session.execute(select(Item)).scalars().all()
'''

DB_ENGINE_ONLY = '''\
from sqlalchemy import create_engine

engine = create_engine("postgresql://u:p@localhost/db")
'''

DEPS_SESSION_OF_ENGINE = '''\
from collections.abc import Generator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from app.db import engine


def get_db() -> Generator[Session, None, None]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
'''

DB_WITH_FACTORY = '''\
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("postgresql://u:p@localhost/db")
SessionLocal = sessionmaker(bind=engine)
'''

DEPS_SESSIONLOCAL = '''\
from collections.abc import Generator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from app.db import SessionLocal


def get_db() -> Generator[Session, None, None]:
    with SessionLocal() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
'''


ROUTES_PLAIN_DEPENDS = '''\
from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import get_db
from app.models import Item

router = APIRouter()


@router.get("/items")
def read_items(session: Session = Depends(get_db)):
    return session.execute(select(Item)).scalars().all()
'''


def _project(root: Path, db: str, deps: str, routes: str) -> Path:
    for rel, text in {"app/__init__.py": "", "app/api/__init__.py": "", "app/db.py": db,
                      "app/api/deps.py": deps, "app/models.py": MODELS, "app/api/routes.py": routes}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("db, deps, routes", [
    (DB_ENGINE_ONLY, DEPS_SESSION_OF_ENGINE, ROUTES),
    (DB_WITH_FACTORY, DEPS_SESSIONLOCAL, ROUTES),
    (DB_WITH_FACTORY, DEPS_SESSIONLOCAL.replace("\n\nSessionDep = Annotated[Session, Depends(get_db)]\n", "\n"),
     ROUTES_PLAIN_DEPENDS),
], ids=["Session(engine)+alias", "SessionLocal()+alias", "SessionLocal()+plain-Depends"])
def test_session_dependency_in_its_own_module_is_migrated(db: str, deps: str, routes: str, tmp_path: Path,
                                                          monkeypatch) -> None:
    root = _project(tmp_path / "project", db, deps, routes)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["fix", "project", "--write", "--no-cache"], catch_exceptions=False)
    assert "failed verification" not in result.stderr, result.stderr
    assert result.exit_code == 0, result.stderr
    routes = (root / "app/api/routes.py").read_text()
    assert "async def read_items" in routes and "await session.execute" in routes
    for rel in ("app/db.py", "app/api/deps.py", "app/api/routes.py"):
        compile((root / rel).read_text(), rel, "exec")
    deps_after = (root / "app/api/deps.py").read_text()
    # the dependency the alias names is defined in deps.py or imported into it
    assert "def get_async_db" in deps_after or "import get_async_db" in deps_after \
        or "get_async_db," in deps_after or ", get_async_db" in deps_after, deps_after


DB_ENGINE_FROM_HELPER = '''\
from typing import Annotated

from fastapi import Depends
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url):
    return create_engine(url, pool_pre_ping=True)


engine = make_engine("postgresql://u:p@localhost/db")
SessionLocal = sessionmaker(bind=engine)


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


DbSession = Annotated[Session, Depends(get_db)]
'''

ROUTES_DB_SESSION = '''\
from fastapi import APIRouter
from sqlalchemy import select

from app.db import DbSession
from app.models import Item

router = APIRouter()


@router.get("/items")
def read_items(db: DbSession):
    return db.execute(select(Item)).scalars().all()
'''


def test_engine_built_by_a_helper_gives_a_consistent_plan(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "project"
    for rel, text in {"app/__init__.py": "", "app/db.py": DB_ENGINE_FROM_HELPER, "app/models.py": MODELS,
                      "app/routes.py": ROUTES_DB_SESSION}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["fix", "project", "--write", "--no-cache"], catch_exceptions=False)
    assert "failed verification" not in result.stderr, result.stderr
    assert result.exit_code == 0, result.stderr
    for rel in ("app/db.py", "app/routes.py"):
        compile((root / rel).read_text(), rel, "exec")
