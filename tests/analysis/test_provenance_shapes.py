"""Edges of the shapes issue 12 taught the analysis (generic bases, session decorators, helpers, roots).

The recall fixtures (``test_recall.py``) show each class found; these pin down what must *not* follow from it.
"""

from __future__ import annotations

import os
import textwrap

from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from tests.helpers import findings

DB = """
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker(bind=create_engine("sqlite://"))
"""


def _session_uses(fs) -> list[tuple[str, int, str, str, str]]:
    return sorted((f.path, f.span.line, f.code, f.severity, f.evidence) for f in fs if f.code in (
        "ASM110", "ASM120", "ASM121", "ASM122"))


def test_a_passthrough_decorator_keeps_the_callers_arguments():
    # ``func(*args, **kwargs)`` passes the caller's session through: the parameter still gets it by call site
    fs = findings({"app/db.py": DB, "app/deco.py": """
        import functools

        def logged(func):
            @functools.wraps(func)
            def run(*args, **kwargs):
                return func(*args, **kwargs)
            return run
    """, "app/svc.py": """
        from app.deco import logged
        from app.db import SessionLocal

        @logged
        def save(tx, row):
            tx.commit()

        async def handler():
            save(SessionLocal(), 1)
    """})
    assert _session_uses(fs) == [("app/svc.py", 7, "ASM120", "blocks-loop", "call-site")]


def test_a_decorator_that_injects_a_session_does_not_take_the_callers_first_argument_for_it():
    # the caller's first argument lands on the wrapper's *second* positional parameter: a session the caller
    # passes is not the decorated function's ``tx``; the wrapper's own session is
    fs = findings({"app/db.py": DB, "app/deco.py": """
        from app.db import SessionLocal

        def with_session(func):
            def wrapper(*args):
                return func(SessionLocal(), *args)
            return wrapper
    """, "app/svc.py": """
        from app.deco import with_session

        @with_session
        def save(tx, other):
            tx.commit()
            other.commit()

        def job(s):
            save(s)
    """})
    uses = _session_uses(fs)
    assert ("app/svc.py", 6, "ASM120", "debt", "call-site") in uses
    assert not any(line == 7 and ev != "name-only" for _p, line, _c, _s, ev in uses)


def test_registration_decorators_are_not_wrappers():
    # ``@router.get`` and a project decorator that returns the function itself: calls reach the function directly
    fs = findings({"app/db.py": DB, "app/reg.py": """
        HANDLERS = []

        def register(func):
            HANDLERS.append(func)
            return func
    """, "app/svc.py": """
        from app.db import SessionLocal
        from app.reg import register

        @register
        def save(tx):
            tx.commit()

        async def handler():
            save(SessionLocal())
    """})
    assert _session_uses(fs) == [("app/svc.py", 7, "ASM120", "blocks-loop", "call-site")]


def test_a_project_file_named_like_sqlalchemy_never_shadows_it(tmp_path):
    # no __init__.py: ``db/sqlalchemy.py`` is named ``sqlalchemy`` by its file name alone, but the app runs from
    # the root, where ``import sqlalchemy`` is SQLAlchemy
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "sqlalchemy.py").write_text("def create_engine(url):\n    return url\n")
    (tmp_path / "routes.py").write_text(
        "from sqlalchemy.orm import Session\n\n\nasync def handler(tx: Session):\n    tx.commit()\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        fs = analyse_paths(["."], Config(root=str(tmp_path)), use_cache=False, jobs=1).result.findings
    finally:
        os.chdir(cwd)
    assert ("routes.py", 5, "ASM120", "blocks-loop", "annotation") in _session_uses(fs)


def test_a_subscripted_value_that_is_not_a_class_stays_unknown():
    # ``pool[0]()`` is an item of a list, not a generic alias: nothing is inferred from it
    fs = findings({"app/db.py": DB, "app/svc.py": """
        from app.db import SessionLocal

        class Repo:
            def __init__(self, tx):
                self.tx = tx

            def save(self):
                self.tx.commit()

        pool = [Repo]

        async def handler():
            pool[0](SessionLocal()).save()
    """})
    assert _session_uses(fs) == []


# ---------------------------------------------------------------- the second round of shapes (issue 12)
def _scan_tree(tmp_path, files: dict[str, str]):
    for rel, src in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(src))
    return analyse_paths([str(tmp_path)], Config(root=str(tmp_path)), use_cache=False, jobs=1).result.findings


def test_call_chains_name_namespace_modules_from_the_import_root(tmp_path):
    # no __init__.py: ``from services.store import save_all`` in backend/api/ resolves from backend/, so the chain
    # says ``services.store`` and ``api.upload_files``, not the bare file names
    fs = _scan_tree(tmp_path, {"backend/api/upload_files.py": """
        from services.store import save_all

        async def upload():
            save_all()
    """, "backend/services/store.py": """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        def save_all():
            with Session(create_engine("sqlite://")) as tx:
                tx.commit()
    """, "backend/jobs/store.py": "def save_all():\n    return 1\n"})
    chains = {f.chain for f in fs if f.code == "ASM120"}
    assert chains == {("api.upload_files.upload", "services.store.save_all")}


def test_a_src_layout_names_modules_from_src(tmp_path):
    fs = _scan_tree(tmp_path, {"src/tools/run.py": """
        from sqlalchemy.orm import Session

        async def job(tx: Session):
            helper(tx)

        def helper(tx):
            tx.commit()
    """})
    assert {f.chain for f in fs if f.code == "ASM120"} == {("tools.run.job", "tools.run.helper")}


def test_a_name_is_an_async_session_only_where_no_sync_session_exists():
    helper = """
        def stage(session, obj):
            session.add(obj)
            session.expunge(obj)
    """
    only_async = {"app/db.py": "from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker\n",
                  "app/util.py": helper}
    assert [f for f in findings(only_async) if f.code.startswith("ASM1")] == []
    # one sync session anywhere (an import, or a call through a module alias): names keep their sync fallback
    for extra in ("from sqlalchemy.orm import Session\n",
                  "import sqlalchemy.orm as orm\n\nSessionLocal = orm.sessionmaker()\n"):
        fs = findings({**only_async, "scripts/seed.py": extra})
        assert [(f.path, f.code, f.evidence) for f in fs if f.code == "ASM121"] == [
            ("app/util.py", "ASM121", "name-only")] * 2


def test_fixtures_are_looked_up_in_the_module_then_in_conftest_folders_upwards():
    conftest = """
        import pytest
        from app.db import SessionLocal

        @pytest.fixture
        def tx():
            return SessionLocal()
    """
    fs = findings({"app/db.py": DB, "tests/conftest.py": conftest, "tests/unit/test_a.py": """
        def test_a(tx):
            tx.commit()
    """, "other/test_b.py": """
        def test_b(tx):
            tx.commit()
    """, "tests/test_c.py": """
        import pytest

        @pytest.fixture
        def tx():
            return {}

        def test_c(tx):
            tx.commit()
    """})
    uses = {(f.path, f.evidence) for f in fs if f.code == "ASM120"}
    # other/ has no conftest.py above it with ``tx``; test_c's own fixture (a dict) wins over the conftest's
    assert uses == {("tests/unit/test_a.py", "fixture")}


def test_a_stored_attribute_read_needs_the_same_path_and_a_session_store():
    fs = findings({"app/db.py": DB, "app/main.py": """
        from app.db import SessionLocal

        async def middleware(request, call_next):
            request.state.tx = SessionLocal()
            request.state.user = object()
            return await call_next(request)

        async def route(request, other):
            request.state.tx.commit()
            request.state.user.commit()
            other.tx.commit()
    """})
    assert [(f.span.line, f.code, f.evidence) for f in fs if f.code == "ASM120"] == [(10, "ASM120", "attribute")]


def test_a_fixture_imported_into_conftest_is_found_under_its_fixture_name():
    fs = findings({"app/db.py": DB, "tests/fixtures/db.py": """
        import pytest
        from app.db import SessionLocal

        @pytest.fixture(name="tx")
        def make_tx():
            yield SessionLocal()
    """, "tests/conftest.py": "from tests.fixtures.db import make_tx\n", "tests/test_a.py": """
        def test_a(tx):
            tx.commit()

        def test_b(make_tx):
            make_tx.commit()
    """})
    assert [(f.path, f.span.line, f.evidence) for f in fs if f.code == "ASM120"] == [("tests/test_a.py", 3, "fixture")]


def test_the_session_an_object_belongs_to_is_a_session():
    # mealie's rating listener: ``session = object_session(target)`` then ``session.query(...)``; any name
    fs = findings({"app/listeners.py": """
        from sqlalchemy.orm import object_session

        def on_flush(mapper, connection, target):
            owner = object_session(target)
            owner.query(type(target)).count()
    """})
    assert [(f.code, f.evidence) for f in fs if f.code == "ASM110"] == [("ASM110", "provider")]


def test_a_parameter_annotated_with_the_session_factory_gets_what_callers_pass():
    # dispatch: ``def create_or_update(db_session: SessionLocal, ...)`` (the factory, where ``Session`` was meant):
    # no session type, so no ASM102, but the annotation no longer stops the sessions its callers pass
    fs = findings({"app/db.py": DB + """
from sqlalchemy.ext.asyncio import async_sessionmaker

AsyncSessionLocal = async_sessionmaker()
""", "app/svc.py": """
        from app.db import AsyncSessionLocal, SessionLocal

        def save(tx: SessionLocal):
            tx.commit()

        async def asave(tx: AsyncSessionLocal):
            tx.add(1)
            tx.expunge(1)

        async def handler():
            save(SessionLocal())
            asave(AsyncSessionLocal())

        def unused(db: SessionLocal):
            db.commit()
    """})
    assert [(f.span.line, f.code, f.evidence) for f in fs if f.path == "app/svc.py" and f.code != "ASM103"] == [
        (5, "ASM120", "call-site"), (16, "ASM120", "name-only")]


def test_soundness_maps_chains_with_full_module_names_back_to_functions(tmp_path):
    # the soundness check attributes a violation to the functions of its chain: the names it reads are the ones
    # chains carry (``services.store.save_all``), not the bare file names
    from asyncmigrate.soundness.calls import _display_fids

    for rel, src in {"backend/api/upload_files.py": "from services.store import save_all\n\n\nasync def upload():\n"
                     "    save_all()\n", "backend/services/store.py": "def save_all():\n    return 1\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(src)
    run = analyse_paths([str(tmp_path)], Config(root=str(tmp_path)), use_cache=False, jobs=1, need_analysis=True)
    fids = _display_fids(run.analysis)
    assert fids["services.store.save_all"].endswith(":save_all")
    assert fids["api.upload_files.upload"].endswith(":upload")
