"""``QueryToSelect``: golden fixtures, reported-not-rewritten cases, and no-op runs.

Fixture cases live in ``fixtures/codemods/query_to_select/<case>/``: ``before.py``, ``after.py`` and, when
the codemod must leave something alone, ``warnings.txt`` (one expected warning per line).  Each case
asserts: the output equals ``after.py``, it compiles (so every ``await`` is inside an ``async def``), a
second run changes nothing, and a run without a plan changes nothing and warns about nothing.

The plan comes from the fixture's own annotations, the way the project pass would see them: a parameter
annotated ``Session`` is a sync session in its function, and ``self.<attr>`` is one in every method of a
class whose ``__init__`` stores such a parameter there.  That semantic equivalence of each mapping is
proven separately, by running both forms, in ``tests/facts/test_query_equivalence.py``.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from asyncmigrate.codemods import query_to_select
from asyncmigrate.codemods.base import FilePlan
from asyncmigrate.codemods.query_to_select import QueryToSelect, run_on_source
from asyncmigrate.facts import ASYNC_SESSION_COROUTINES

CASES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "codemods" / "query_to_select"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "before.py").exists())


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def plan_for(source: str) -> FilePlan:
    """Sessions from ``Session`` annotations (see the module docstring)."""
    sessions: dict[str, set[str]] = {}

    def session_params(fn: cst.FunctionDef) -> set[str]:
        params = [*fn.params.posonly_params, *fn.params.params, *fn.params.kwonly_params]
        return {p.name.value for p in params if p.annotation and _code(p.annotation.annotation).endswith("Session")}

    def walk(body, prefix: str, attrs: set[str]) -> None:
        for stmt in body:
            if isinstance(stmt, cst.FunctionDef):
                qualname = prefix + stmt.name.value
                sessions[qualname] = session_params(stmt) | attrs
                walk(stmt.body.body, qualname + ".<locals>.", set())
            elif isinstance(stmt, cst.ClassDef):
                stored: set[str] = set()
                for item in stmt.body.body:
                    if isinstance(item, cst.FunctionDef) and item.name.value == "__init__":
                        params = session_params(item)
                        for assign in item.body.body:
                            for small in getattr(assign, "body", ()):
                                if isinstance(small, cst.Assign) and _code(small.value) in params:
                                    stored |= {_code(t.target) for t in small.targets}
                walk(stmt.body.body, prefix + stmt.name.value + ".", stored)

    walk(cst.parse_module(source).body, "", set())
    return FilePlan(sessions={k: frozenset(v) for k, v in sessions.items() if v},
                    sqlmodel="from sqlmodel" in source or "import sqlmodel" in source)


def expected_warnings(case: str) -> list[str]:
    path = CASES_DIR / case / "warnings.txt"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("case", CASES)
def test_fixture(case: str) -> None:
    before = (CASES_DIR / case / "before.py").read_text()
    after = (CASES_DIR / case / "after.py").read_text()

    output, warnings = run_on_source(before, plan_for(before))

    assert output == after
    assert warnings == expected_warnings(case)
    compile(output, f"{case}/after.py", "exec")


@pytest.mark.parametrize("case", CASES)
def test_fixture_second_run_is_a_no_op(case: str) -> None:
    after = (CASES_DIR / case / "after.py").read_text()
    output, warnings = run_on_source(after, plan_for(after))
    assert output == after
    assert len(warnings) == len(expected_warnings(case))  # what was left is still reported, nothing new


@pytest.mark.parametrize("case", CASES)
def test_fixture_without_a_plan_is_a_no_op(case: str) -> None:
    before = (CASES_DIR / case / "before.py").read_text()
    assert run_on_source(before, FilePlan()) == (before, [])


class _Awaited(cst.CSTVisitor):
    """Every ``await`` whose operand is not a call of an ``AsyncSession`` coroutine method (§1)."""

    def __init__(self) -> None:
        self.wrong: list[str] = []

    def visit_Await(self, node: cst.Await) -> None:
        call = node.expression
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                and call.func.attr.value in ASYNC_SESSION_COROUTINES):
            self.wrong.append(_code(node))


def awaited_wrongly(source: str) -> list[str]:
    visitor = _Awaited()
    cst.parse_module(source).visit(visitor)
    return visitor.wrong


def test_the_await_check_catches_chaining_on_a_coroutine() -> None:
    assert awaited_wrongly("async def f(db):\n    return await db.execute(x).scalars().all()\n")
    assert not awaited_wrongly("async def f(db):\n    return (await db.execute(x)).scalars().all()\n")


@pytest.mark.parametrize("case", CASES)
def test_fixture_awaits_only_session_coroutines(case: str) -> None:
    """``await db.execute(x).scalars()`` awaits the wrong thing (§4): it must be ``(await ...).scalars()``."""
    assert awaited_wrongly((CASES_DIR / case / "after.py").read_text()) == []


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert (CASES_DIR / case / "after.py").exists(), case


# ---------------------------------------------------------------- inline cases
DB = FilePlan(sessions={"f": frozenset({"db"})})


def run(body: str, plan: FilePlan = DB) -> tuple[str, list[str]]:
    return run_on_source(textwrap.dedent(body).lstrip("\n"), plan)


LEFT_ALONE = [
    pytest.param(
        """
        async def f(db):
            return db.query(User).filter(User.age > 1).yield_per(100).all()
        """,
        ["ASM110 line 2: `.yield_per()` on a Query has no verified 2.0 form; left unchanged"],
        id="yield_per"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).union(db.query(User).filter(User.id == 1)).all()
        """,
        ["ASM110 line 2: the Query is used as a value (returned, passed on or stored) and not executed here; "
         "left unchanged",  # the inner query, passed to union()
         "ASM110 line 2: `.union()` on a Query has no verified 2.0 form; left unchanged"],
        id="union-returns-columns-on-select"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).paginate(page=1, per_page=20)
        """,
        ["ASM110 line 2: `.paginate()` on a Query has no verified 2.0 form; left unchanged"],
        id="flask-paginate"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).filter(User.active).subquery()
        """,
        ["ASM110 line 2: `.subquery()` on a Query has no verified 2.0 form; left unchanged"],
        id="subquery"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).filter(User.active)
        """,
        ["ASM110 line 2: the Query is used as a value (returned, passed on or stored) and not executed here; "
         "left unchanged"],
        id="returned-query"),
    pytest.param(
        """
        async def f(db):
            q = db.query(User).filter(User.active)
            return paginate(q, page=1)
        """,
        ["ASM110 line 3: `q` holds a Query that is passed to `paginate()`; its uses are left unchanged"],
        id="stored-query-passed-on"),
    pytest.param(
        """
        async def f(db):
            q = db.query(User)
            q = q.filter(User.active)
            return q
        """,
        ["ASM110 line 4: `q` holds a Query that is returned; its uses are left unchanged"],
        id="stored-query-returned"),
    pytest.param(
        """
        async def f(db):
            q = db.query(User)
            other = q.filter(User.active)
            return other.all()
        """,
        ["ASM110 line 3: `q` holds a Query that is copied to another name; its uses are left unchanged"],
        id="stored-query-copied"),
    pytest.param(
        """
        async def f(db, flag):
            q = db.query(User)
            if flag:
                q = q.with_entities(User.name)
            return q.all()
        """,
        ["ASM110 line 4: `q` holds a Query that changes its columns conditionally; its uses are left unchanged"],
        id="stored-query-conditional-columns"),
    pytest.param(
        """
        async def f(db):
            q = db.query(User)
            def inner():
                return q.all()
            return inner()
        """,
        ["ASM110 line 4: `q` holds a Query that is used in a nested function; its uses are left unchanged"],
        id="stored-query-closure"),
    pytest.param(
        """
        async def f(db, xs):
            q = db.query(User)
            return list(x for x in xs if q.count())
        """,
        ["ASM110 line 3: `q` holds a Query that is used in a generator expression, where `await` would make it "
         "asynchronous; its uses are left unchanged"],
        id="stored-query-in-genexp"),
    pytest.param(
        """
        async def f(db):
            q = db.query(User)
            q.filter(User.active).delete()
        """,
        ["ASM110 line 3: `q` holds a Query that adds builders in the bulk `.delete()` call; its uses are left "
         "unchanged"],
        id="stored-query-bulk-delete-with-builders"),
    pytest.param(
        """
        async def f(db, flag):
            q = db.query(User).filter(User.id == 1)
            if flag:
                q = q.filter(User.active)
            q.update({"active": False})
        """,
        ["ASM110 line 5: `q` holds a Query that is refined before bulk `.update()`: its criteria are not known in "
         "one place; its uses are left unchanged"],
        id="stored-query-refined-before-bulk-update"),
    pytest.param(
        """
        async def f(db, flag):
            if flag:
                q = db.query(User).filter(User.id == 1)
            else:
                q = db.query(User)
            q.delete()
        """,
        ["ASM110 line 6: `q` holds a Query that is used with bulk `.delete()` but has no criteria on every "
         "assignment; its uses are left unchanged"],
        id="stored-query-bulk-delete-one-branch-unfiltered"),
    pytest.param(
        """
        async def f(db):
            q = db.query(User).filter(User.id == 1)
            return q.get(1)
        """,
        ["ASM110 line 3: `q` holds a Query that is used with `.get()`, which needs the query's entity; its uses "
         "are left unchanged"],
        id="stored-query-get"),
    pytest.param(
        """
        async def f(db, rows):
            for q in rows:
                pass
            q = db.query(User)
            return q.all()
        """,
        ["ASM110 line 4: `q` holds a Query that is bound more than once; its uses are left unchanged"],
        id="stored-query-rebound-by-for"),
    pytest.param(
        """
        async def f(db):
            load = lambda: db.query(User).all()
            return load()
        """,
        ["ASM110 line 2: the Query is in a lambda, a generator expression or module code, where `await` cannot "
         "go; left unchanged"],
        id="lambda"),
    pytest.param(
        """
        async def f(db):
            return (u.name for u in [1] if db.query(User).count())
        """,
        ["ASM110 line 2: the Query is in a lambda, a generator expression or module code, where `await` cannot "
         "go; left unchanged"],
        id="async-generator-would-result"),
    pytest.param(
        """
        async def f(db, model):
            return db.query(model).all()
        """,
        ["ASM110 line 2: the Query selects `model`: cannot tell a mapped class from a column, so the result "
         "shape is unknown; left unchanged"],
        id="unknown-entity-or-column"),
    pytest.param(
        """
        async def f(db, alias):
            return db.query(User.name, alias).join(User.addresses).all()
        """,
        ["ASM110 line 2: the Query joins tables around an expression that may be an entity: cannot tell whether "
         "rows were de-duplicated; left unchanged"],
        id="unknown-element-with-join"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).filter(User.id == 1).get(1)
        """,
        ["ASM110 line 2: the Query calls `.get()` after other criteria (legacy raises there too); left unchanged"],
        id="get-after-filter"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).order_by(User.id).update({User.age: 1})
        """,
        ["ASM110 line 2: the Query calls bulk `.update()` after builders other than filter/filter_by/where; "
         "left unchanged"],
        id="update-after-order_by"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).filter(User.id == 1).update({User.age: 1}, update_args={"x": 1})
        """,
        ["ASM110 line 2: the Query passes `.update()` arguments without a 2.0 equivalent (update_args, ...); "
         "left unchanged"],
        id="update_args"),
    pytest.param(
        """
        async def f(db):
            return db.query(User.name).filter(User.id == 1).delete()
        """,
        ["ASM110 line 2: the Query calls bulk `.delete()` on a query that does not select one entity; "
         "left unchanged"],
        id="delete-of-columns"),
    pytest.param(
        """
        from app.helpers import select, sa_select

        async def f(db):
            return db.query(User).all()
        """,
        ["ASM110 line 4: `select` and `sa_select` already name something else here; the Query is left unchanged"],
        id="shadowed-select-and-alias"),
    pytest.param(
        """
        async def f(db, flag):
            if flag:
                q = db.query(User)
            else:
                q = db.query(User.name)
            return q.all()
        """,
        ["ASM110 line 5: `q` holds a Query that is assigned from queries that differ in session or columns; "
         "its uses are left unchanged"],
        id="stored-query-branches-differ"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).active().all()
        """,
        ["ASM110 line 2: `.active()` on a Query has no verified 2.0 form; left unchanged"],
        id="custom-query-method"),
    pytest.param(
        """
        async def f(db):
            return db.query(User).statement
        """,
        ["ASM110 line 2: the Query is used as a value (returned, passed on or stored) and not executed here; "
         "left unchanged"],
        id="statement-attribute"),
]


@pytest.mark.parametrize("source,warnings", LEFT_ALONE)
def test_left_alone_and_reported(source: str, warnings: list[str]) -> None:
    output, warned = run(source)
    assert output == textwrap.dedent(source).lstrip("\n")
    assert warned == warnings


def test_taken_names_are_imported_under_an_alias() -> None:
    """Service modules often define their own ``delete`` / ``update``; parameters shadow too."""
    output, warned = run("""
        from sqlalchemy import select as sa_select

        def delete(*, db_session, id):
            pass

        async def f(db, update):
            db.query(User).filter(User.id == 1).update(update)
            db.query(User).filter(User.id == 2).delete()
            return db.query(User).all()
        """)
    assert output == textwrap.dedent("""\
        from sqlalchemy import delete as sa_delete, update as sa_update, select as sa_select

        def delete(*, db_session, id):
            pass

        async def f(db, update):
            await db.execute(sa_update(User).where(User.id == 1).values(update))
            await db.execute(sa_delete(User).where(User.id == 2))
            return (await db.execute(sa_select(User))).scalars().all()
        """)
    assert warned == []


def test_stored_query_assigned_in_both_branches() -> None:
    output, warned = run("""
        async def f(db, alert_id, name):
            if alert_id:
                q = db.query(Alert).filter(Alert.id == alert_id)
            else:
                q = db.query(Alert).filter_by(name=name)
            return q.first()
        """)
    assert output == textwrap.dedent("""\
        from sqlalchemy import select

        async def f(db, alert_id, name):
            if alert_id:
                q = select(Alert).where(Alert.id == alert_id)
            else:
                q = select(Alert).filter_by(name=name)
            return (await db.execute(q.limit(1))).scalars().first()
        """)
    assert warned == []


def test_module_level_query_is_reported() -> None:
    source = "users = db.query(User).all()\n"
    plan = FilePlan(sessions={"<module>": frozenset({"db"})})
    assert run_on_source(source, plan) == (source, [
        "ASM110 line 1: the Query is in a lambda, a generator expression or module code, where `await` cannot "
        "go; left unchanged"])


def test_a_reported_chain_does_not_stop_the_others() -> None:
    output, warned = run("""
        async def f(db):
            slow = db.query(User).yield_per(10).all()
            return slow, db.query(User).filter(User.id.in_(db.query(Address.user_id))).all()
        """)
    assert output == textwrap.dedent("""\
        from sqlalchemy import select

        async def f(db):
            slow = db.query(User).yield_per(10).all()
            return slow, (await db.execute(select(User).where(User.id.in_(select(Address.user_id))))).scalars().all()
        """)
    assert len(warned) == 1


def test_only_the_planned_scope_is_rewritten() -> None:
    source = textwrap.dedent("""\
        async def f(db):
            async def inner(db):
                return db.query(User).all()
            return db.query(User).count()

        async def g(db):
            return db.query(User).all()
        """)
    plan = FilePlan(sessions={"f.<locals>.inner": frozenset({"db"})})
    output, warned = run_on_source(source, plan)
    assert output == textwrap.dedent("""\
        from sqlalchemy import select

        async def f(db):
            async def inner(db):
                return (await db.execute(select(User))).scalars().all()
            return db.query(User).count()

        async def g(db):
            return db.query(User).all()
        """)
    assert warned == []


def test_sqlmodel_keeps_an_existing_sqlalchemy_select() -> None:
    source = "from sqlalchemy import select\n\nasync def f(db):\n    return db.query(Hero).all()\n"
    plan = FilePlan(sessions={"f": frozenset({"db"})}, sqlmodel=True)
    output, _ = run_on_source(source, plan)
    assert output == ("from sqlalchemy import select\n\nasync def f(db):\n"
                      "    return (await db.execute(select(Hero))).scalars().all()\n")


def test_relationship_attributes_are_not_taken_for_columns() -> None:
    plan = FilePlan(sessions={"f": frozenset({"db"})}, relationships={"User": {"addresses": True}})
    source = "async def f(db):\n    return db.query(User.addresses).all()\n"
    output, warned = run_on_source(source, plan)
    assert output == source and len(warned) == 1


def test_codemod_metadata() -> None:
    assert QueryToSelect.fixes == ("ASM110",)
    assert QueryToSelect.DESCRIPTION
    assert "ASM110" in inspect.getdoc(query_to_select)
