"""The async twin of an override that yields a session a fixture built on its own engine (issue 9, class 6).

A common test set-up builds its engine and session inside a fixture (the savepoint/rollback recipe,
``create_engine(test_url)`` in ``def test_db():``) and overrides the app's dependency with
``def get_test_db(): yield test_db``.  There is no module-level async factory to open a twin's session
from, so the twin reaches the same database through the yielded session itself::

    async def get_test_async_db() -> AsyncIterator[AsyncSession]:
        async_test_engine = create_async_engine(
            _async_database_url(test_db.get_bind().engine.url.render_as_string(hide_password=False)),
            poolclass=NullPool)
        try:
            async with AsyncSession(async_test_engine, expire_on_commit=False) as async_session:
                yield async_session
        finally:
            await async_test_engine.dispose()

Why this shape (docs/EVENT_LOOPS.md, checked by ``tests/facts/test_event_loops.py``): ``TestClient`` runs
the app on its own event loop in another thread, and an asyncpg connection belongs to the loop that
opened it, so an engine whose pool outlives one request is not safe to share between the test's loop and
the app's; an engine made, used and disposed inside the request, with ``NullPool``, never crosses loops.
``get_bind()`` is the fixture's Engine or Connection, and both have ``.engine``.  The URL goes through the
generated run-time driver mapping (``urls.URL_HELPER``), so ``sqlite:///`` becomes ``sqlite+aiosqlite:///``.
The twin does not share the fixture's transaction: what the test commits the app sees, which is reported.
"""

from __future__ import annotations

from typing import Optional, Sequence

import libcst as cst
import libcst.matchers as m

#: imports the twin's body needs: (module, name)
IMPORTS = (("sqlalchemy.ext.asyncio", "create_async_engine"), ("sqlalchemy.pool", "NullPool"))


def yielded_session(fn: cst.FunctionDef) -> Optional[str]:
    """The one name ``fn`` yields, when the generator only yields (and maybe closes) a session from outside it.

    ``yield test_db`` and ``try: yield session / finally: session.close()`` qualify; a name assigned in ``fn``
    (a session it opens itself) or a second ``yield`` does not.
    """
    yields = m.findall(fn.body, m.Yield())
    if len(yields) != 1:
        return None
    value = yields[0].value  # type: ignore[union-attr]
    if not isinstance(value, cst.Name):
        return None
    bound = {p.name.value for p in fn.params.params}  # names the function binds itself: not a fixture's
    for target in m.findall(fn.body, m.AssignTarget(target=m.Name())):
        assert isinstance(target, cst.AssignTarget) and isinstance(target.target, cst.Name)
        bound.add(target.target.value)
    for item in m.findall(fn.body, m.WithItem(asname=m.AsName(name=m.Name()))):
        assert isinstance(item, cst.WithItem) and item.asname is not None and isinstance(item.asname.name, cst.Name)
        bound.add(item.asname.name.value)
    return None if value.value in bound else value.value


def bound_body(session: str, helper: str, session_class: str = "AsyncSession") -> Sequence[cst.BaseStatement]:
    """Open an ``AsyncSession`` on a per-call ``NullPool`` engine for the database ``session`` is bound to.

    The locals are named apart from ``session`` (a fixture may be called ``session``, and a local of that
    name would make the closure's reference to it unbound)."""
    var = "async_session" if session != "async_session" else "async_session_"
    engine = "async_test_engine" if session != "async_test_engine" else "async_test_engine_"
    template = (
        f"{engine} = create_async_engine(\n"
        f"    {helper}({session}.get_bind().engine.url.render_as_string(hide_password=False)), poolclass=NullPool\n"
        f")\n"
        f"try:\n"
        f"    async with {session_class}({engine}, expire_on_commit=False) as {var}:\n"
        f"        yield {var}\n"
        f"finally:\n"
        f"    await {engine}.dispose()\n"
    )
    return cst.parse_module(template).body
