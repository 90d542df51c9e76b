"""codemods/_database/bound_twin.py: which overrides yield a session from outside them, and the twin's body."""

from __future__ import annotations

import libcst as cst
import pytest

from asyncmigrate.codemods._database.bound_twin import bound_body, yielded_session


@pytest.mark.parametrize("source, expected", [
    ("def f():\n    yield test_db\n", "test_db"),
    ("def f():\n    try:\n        yield session\n    finally:\n        session.close()\n", "session"),
    ("def f():\n    db = SessionLocal()\n    yield db\n", None),           # opens its own
    ("def f():\n    with SessionLocal() as db:\n        yield db\n", None),  # opens its own
    ("def f(db):\n    yield db\n", None),                                  # a parameter, not a closure
    ("def f():\n    yield a\n    yield b\n", None),                        # two yields
    ("def f():\n    yield make()\n", None),                                # not a name
])
def test_yielded_session(source: str, expected) -> None:
    fn = cst.parse_statement(source)
    assert isinstance(fn, cst.FunctionDef)
    assert yielded_session(fn) == expected


def test_bound_body_never_shadows_the_session_it_reads() -> None:
    """A fixture called ``session`` (fastapi-course): the twin's locals must not rebind that name, or the
    closure's ``session.get_bind()`` would be an unbound local."""
    for name in ("session", "async_session", "async_test_engine", "test_db"):
        code = cst.Module(body=list(bound_body(name, "_async_database_url"))).code
        assert f"{name}.get_bind().engine.url" in code
        assert f" as {name}:" not in code and f"{name} = " not in code
        compile("async def twin():\n" + "".join("    " + line + "\n" for line in code.splitlines()), "x", "exec")
