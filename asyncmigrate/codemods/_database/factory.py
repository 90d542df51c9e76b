"""``sessionmaker(bind=engine, ...)`` -> ``async_sessionmaker(async_engine, expire_on_commit=False, ...)``.

``expire_on_commit=False`` is always set: with the default, reading an attribute after ``await commit()``
raises MissingGreenlet (SQLALCHEMY_ASYNC.md §3, §4).  ``scoped_session`` becomes ``async_scoped_session``
with ``scopefunc=asyncio.current_task``, which it requires.  The session class follows
``facts.ASYNC_SESSION_CLASS_FOR`` (SQLModel's ``Session`` -> its ``AsyncSession``).
"""

from __future__ import annotations

from typing import Callable, Optional

import libcst as cst
import libcst.matchers as m

from asyncmigrate import facts
from asyncmigrate.codemods._database.syntax import expr, kwarg, relayout

SQLALCHEMY_ASYNCIO = "sqlalchemy.ext.asyncio"


def session_class(sqlmodel: bool) -> tuple[str, str]:
    """``(module, name)`` of the AsyncSession class for annotations."""
    if sqlmodel:
        return facts.ASYNC_SESSION_CLASS_FOR["sqlmodel.Session"]
    return SQLALCHEMY_ASYNCIO, "AsyncSession"


class AsyncFactoryCall:
    """Builds async session factory calls; schedules their imports through ``import_`` and reports through ``say``."""

    def __init__(self, qnames: Callable[[cst.CSTNode], set[str]], say: Callable[[cst.CSTNode, str], None],
                 import_: Callable[..., None], sqlmodel: bool) -> None:
        self._qnames, self._say, self._import, self._sqlmodel = qnames, say, import_, sqlmodel

    def build(self, call: cst.Call, async_engine: str, session_class: Optional[str] = None) -> cst.Call:
        """``async_sessionmaker(async_engine, expire_on_commit=False, <kept>)`` for a sessionmaker or Session call."""
        self._import(SQLALCHEMY_ASYNCIO, "async_sessionmaker")
        args: list[cst.Arg] = [cst.Arg(cst.Name(async_engine))]
        for key, value in facts.ASYNC_SESSIONMAKER_REQUIRED_KWARGS:
            args.append(kwarg(key, expr(value)))
        class_arg: Optional[cst.Arg] = None
        for i, arg in enumerate(call.args):
            key = arg.keyword.value if arg.keyword else None
            if (key is None and i == 0 and not arg.star) or key in facts.SESSIONMAKER_KWARGS_DROPPED:
                if key == "autocommit" and not m.matches(arg.value, m.Name("False")):
                    self._say(arg, "autocommit=True is not supported by 2.x sessions; dropped")
                continue
            if key == "expire_on_commit":
                if not m.matches(arg.value, m.Name("False")):
                    self._say(arg, "expire_on_commit=True becomes False on the async factory: reads after "
                                   "await commit() would raise MissingGreenlet; code relying on refreshed values "
                                   "needs await session.refresh(obj)")
                continue
            if key == "class_":
                class_arg = arg
                continue
            args.append(arg)
        mapped_class = self._session_class_arg(class_arg, session_class)
        if mapped_class is not None:
            args.append(mapped_class)
        return cst.Call(func=cst.Name("async_sessionmaker"), args=relayout(call, args))

    def scoped(self, scoped: cst.Call, made: cst.Call, name: str) -> cst.Call:
        """``async_scoped_session(made, ..., scopefunc=asyncio.current_task)`` for ``scoped_session(...)``."""
        scopefunc = ".".join(facts.ASYNC_SCOPEFUNC)
        self._import(facts.ASYNC_SCOPEFUNC[0])
        self._import(SQLALCHEMY_ASYNCIO, "async_scoped_session")
        others = [a for a in scoped.args[1:] if not (a.keyword and a.keyword.value == "scopefunc")]
        if any(a.keyword and a.keyword.value == "scopefunc" for a in scoped.args):
            self._say(scoped, f"scoped_session(scopefunc=...) of {name} becomes scopefunc={scopefunc}")
        args = [cst.Arg(made), *others, kwarg("scopefunc", expr(scopefunc))]
        return scoped.with_changes(func=cst.Name("async_scoped_session"), args=relayout(scoped, args))

    def _session_class_arg(self, class_arg: Optional[cst.Arg], session_class: Optional[str]) -> Optional[cst.Arg]:
        qualified = session_class
        if class_arg is not None:
            qualified = next(iter(sorted(self._qnames(class_arg.value))), None)
        if qualified is None and self._sqlmodel:
            qualified = "sqlmodel.Session"
        if qualified is None:
            return None
        target = facts.ASYNC_SESSION_CLASS_FOR.get(qualified)
        if target is None:
            assert class_arg is not None
            return kwarg("sync_session_class", class_arg.value)
        if target[0] == SQLALCHEMY_ASYNCIO:
            return None  # the default class_
        self._import(target[0], target[1])
        return kwarg("class_", cst.Name(target[1]))
