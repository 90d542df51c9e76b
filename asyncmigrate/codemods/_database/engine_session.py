"""``Session(engine)`` -> ``AsyncSession(async_engine, expire_on_commit=False)``: a session built on an engine.

SQLModel projects (the full-stack FastAPI template) have no session factory: the dependency and scripts
build ``Session(engine)`` / ``Session(bind=engine)`` on the engine they import.  The async form builds the
async session class (``facts.ASYNC_SESSION_CLASS_FOR``: SQLModel's ``Session`` -> SQLModel's
``AsyncSession``) on the engine's async twin, which the ``database`` rewrite adds beside the sync engine in
the engine's module.  ``expire_on_commit=False`` is always set, as on the async factory: with the default,
reading an attribute after ``await commit()`` raises MissingGreenlet (SQLALCHEMY_ASYNC.md §3, §4).  The
planner lists the engine references that have such a twin (``FilePlan.sync_engines``); any other
``Session(...)`` is left alone.
"""

from __future__ import annotations

from typing import Callable, Optional

import libcst as cst
import libcst.matchers as m

from asyncmigrate import facts
from asyncmigrate.codemods._database.syntax import bind_arg, import_source, kwarg, relayout
from asyncmigrate.codemods.base import dotted

#: ``Session(...)`` keyword arguments not repeated on ``AsyncSession(...)``: ``bind`` becomes the first argument,
#: ``autocommit=False`` / ``future=True`` are accepted no-ops, ``expire_on_commit`` is always False
_DROPPED = facts.SESSIONMAKER_KWARGS_DROPPED | {"expire_on_commit"}


def session_class_of(call: cst.Call, qnames: Callable[[cst.CSTNode], set[str]]) -> Optional[str]:
    """The qualified name of the sync session class ``call`` constructs, or None."""
    classes = qnames(call.func) & facts.SYNC_SESSION_CLASSES
    return sorted(classes)[0] if classes else None


def engine_of(call: cst.Call) -> Optional[str]:
    """The engine a ``Session(...)`` call binds, as dotted text."""
    arg = bind_arg(call)
    return dotted(arg.value) if arg is not None and not arg.star else None


def async_engine_ref(module: cst.Module, engine: str, async_engine: str
                     ) -> Optional[tuple[cst.BaseExpression, Optional[tuple[str, int]]]]:
    """``(expression, import)`` of the async twin of the sync ``engine`` reference in ``module``.

    ``engine`` imported by ``from M import engine`` -> ``async_engine``, imported from ``M``; ``db.engine`` ->
    ``db.async_engine``; a module-level ``engine`` of this module -> ``async_engine``, defined here.
    """
    head, _, rest = engine.rpartition(".")
    if head:
        return cst.parse_expression(f"{head}.{async_engine}"), None
    imported = import_source(module, engine)
    if imported is not None:
        mod, level, _name = imported
        return cst.Name(async_engine), (mod, level)
    return cst.Name(async_engine), None


def async_session_call(call: cst.Call, engine: cst.BaseExpression, session_name: str,
                       say: Callable[[cst.CSTNode, str], None]) -> cst.Call:
    """``AsyncSession(<engine>, expire_on_commit=False, <kept keyword arguments>)`` for ``Session(...)``."""
    bind = bind_arg(call)
    args: list[cst.Arg] = [cst.Arg(engine)]
    for key, value in facts.ASYNC_SESSIONMAKER_REQUIRED_KWARGS:
        args.append(kwarg(key, cst.parse_expression(value)))
    for arg in call.args:
        if arg is bind:
            continue
        key = arg.keyword.value if arg.keyword else None
        if key in _DROPPED:
            if key == "autocommit" and not m.matches(arg.value, m.Name("False")):
                say(arg, "autocommit=True is not supported by 2.x sessions; dropped")
            if key == "expire_on_commit" and not m.matches(arg.value, m.Name("False")):
                say(arg, "expire_on_commit=True becomes False on the AsyncSession: reads after await commit() would "
                         "raise MissingGreenlet; code relying on refreshed values needs await session.refresh(obj)")
            continue
        args.append(arg)
    return cst.Call(func=cst.Name(session_name), args=relayout(call, args))
