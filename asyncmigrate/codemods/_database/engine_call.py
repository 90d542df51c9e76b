"""``create_engine(...)`` -> ``create_async_engine(...)``: the URL, then every argument, checked one by one.

Engine keyword arguments are kept, except those an asyncio engine rejects (SQLALCHEMY_ASYNC.md §3): they
are dropped, or the engine is left alone and reported when dropping would change what it connects to.
In test code the async engine gets ``poolclass=NullPool``: TestClient runs each request on an event loop of
its own, and pooled async connections must not outlive their loop (§4, last row).  A private in-memory
SQLite database there becomes one named, shared-cache in-memory database for both engines, so the tables
the sync test engine creates are the ones the app's async sessions read.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import libcst as cst
import libcst.matchers as m

from asyncmigrate import facts
from asyncmigrate.codemods._database.syntax import (
    Edits,
    assignment,
    expr,
    first_arg_is,
    kwarg,
    module_level,
    relayout,
    with_first_arg,
)
from asyncmigrate.codemods._database.urls import (
    URL_HELPER,
    asyncpg_rejected_params,
    literal_value,
    quoted,
    scheme,
    shared_memory_url,
    sqlite_memory,
    string_like,
)

#: ``context.scratch`` key: the async driver names (``aiosqlite``, ``asyncpg``...) this file's URLs need.
DRIVERS_KEY = "asyncmigrate.async_drivers"

_POOL_MODULE = "sqlalchemy.pool"
#: pool sizing arguments only a QueuePool takes: StaticPool and NullPool raise TypeError on them
#: (checked on aiosqlite, 2.1.9: ``Invalid argument(s) 'pool_size' sent to create_engine()``)
_QUEUE_POOL_ONLY = facts.SQLITE_MEMORY_ASYNC_REJECTED_KWARGS

Say = Callable[[cst.CSTNode, str], None]
QNames = Callable[[cst.CSTNode], set[str]]


class AsyncEngineCall:
    """Builds the async twin of ``create_engine(...)`` calls of one module; reports what it cannot carry over.

    ``pool``: the poolclass the async engine must use (test code: ``NullPool``), replacing the sync one.
    ``memory_name``: share a private in-memory SQLite database under this name (test code); the sync
    engine's URL literal is rewritten too (``staged_edits``).
    """

    def __init__(self, module: cst.Module, bound: dict[str, list[cst.CSTNode]], qnames: QNames, say: Say,
                 scratch: dict, pool: Optional[str] = None, memory_name: Optional[str] = None) -> None:
        self._module, self._bound, self._qnames, self._say, self._scratch = module, bound, qnames, say, scratch
        self._pool, self._memory_name = pool, memory_name
        #: imports the built calls need, and edits of the sync code (a shared in-memory URL): the caller
        #: schedules them only if every call can be built
        self.staged_imports: list[tuple[str, str]] = []
        self.staged_edits = Edits()

    def build(self, name: str, call: cst.Call) -> Optional[tuple[cst.Call, bool]]:
        """``create_async_engine(...)`` for ``name = create_engine(...)``, and whether it uses the URL helper."""
        url_arg = next((a for a in call.args if a.keyword is None and not a.star), None)
        url_arg = url_arg or next((a for a in call.args if a.keyword and a.keyword.value == "url"), None)
        if url_arg is None:
            self._say(call, f"create_engine() for {name} has no URL argument; left alone")
            return None
        mapped = self._async_url(url_arg.value, call)
        if mapped is None:
            return None
        url_value, helper, driver, known = mapped
        args: list[cst.Arg] = []
        for arg in call.args:
            if arg is url_arg:
                args.append(arg.with_changes(value=url_value))
                continue
            kept = self._engine_kwarg(arg, driver, known, call)
            if kept is False:
                return None
            if kept is not None:
                args.append(kept)
        if self._pool is not None:
            self.staged_imports.append((_POOL_MODULE, self._pool))
            args.append(kwarg("poolclass", cst.Name(self._pool)))
        func = cst.Name("create_async_engine")
        return call.with_changes(func=func, args=relayout(call, args)), helper

    # ---- URL ----

    def _async_url(
        self, value: cst.BaseExpression, call: cst.Call
    ) -> Optional[tuple[cst.BaseExpression, bool, Optional[str], Optional[str]]]:
        """``(async URL expression, uses helper, async driver or None, known URL or None)``; None: left alone."""
        literal = literal_value(value)
        if isinstance(literal, str):
            if self._shares_memory(literal):
                literal = self._share_memory(value, literal, call)
                value = quoted(literal)
            mapped = facts.async_url(literal)
            if mapped is None:
                self._say(call, f"URL {scheme(literal)!r} has no async driver in the table; engine left alone")
                return None
            self._check_memory(literal, call)
            self._check_url_params(mapped, call)
            driver = self._note_driver(mapped)
            if mapped == literal:
                return value, False, driver, mapped
            return string_like(value, literal, mapped), False, driver, mapped
        head_part = value.parts[0] if isinstance(value, cst.FormattedString) and value.parts else None
        if isinstance(value, cst.FormattedString) and isinstance(head_part, cst.FormattedStringText):
            head = head_part.value
            if "://" in head:
                mapped = facts.async_url(head)
                if mapped is None:
                    self._say(call, f"URL {scheme(head)!r} has no async driver in the table; engine left alone")
                    return None
                texts = "".join(p.value for p in value.parts[1:] if isinstance(p, cst.FormattedStringText))
                self._check_url_params(mapped + texts, call)
                driver = self._note_driver(mapped)
                parts = [value.parts[0].with_changes(value=mapped), *value.parts[1:]]
                return value.with_changes(parts=parts), False, driver, None
        # Known only at run time: map it there, with the same table.
        known = self._module_literal(value)
        if known is not None and facts.async_url(known) is None:
            self._say(call, f"URL {scheme(known)!r} has no async driver in the table; engine left alone")
            return None
        if known is not None and self._shares_memory(known):
            known = self._share_memory(self._bound[value.value][0].value, known, call)  # type: ignore[attr-defined]
        if known is not None:
            self._check_url_params(facts.async_url(known) or known, call)
            self._check_memory(known, call)
        known_driver: Optional[str] = None  # only when the value is certain, not a default that may be overridden
        for literal_url in self._url_literals(value):
            mapped = facts.async_url(literal_url)
            if known is None and self._shares_memory(literal_url):
                self._say(call, "in-memory SQLite (the URL's default): the async engine would open its own, "
                                "empty database; give both engines a shared database by hand")
            if mapped:
                found = self._note_driver(mapped)
                known_driver = found if known is not None else None
        wrapped = cst.Call(func=cst.Name(URL_HELPER), args=[cst.Arg(value=value)])
        return wrapped, True, known_driver, known

    def _module_literal(self, value: cst.BaseExpression) -> Optional[str]:
        """The value of ``NAME`` when the module binds it once, to a string literal."""
        if not isinstance(value, cst.Name):
            return None
        binders = self._bound.get(value.value, [])
        if len(binders) == 1 and isinstance(binders[0], (cst.Assign, cst.AnnAssign)):
            v = binders[0].value
            if isinstance(v, (cst.SimpleString, cst.ConcatenatedString)) and isinstance(v.evaluated_value, str):
                return v.evaluated_value
        return None

    def _url_literals(self, value: cst.BaseExpression) -> list[str]:
        """URL-looking literals in the expression (``os.getenv("X", "sqlite:///...")``), following a module name."""
        found: list[str] = []
        nodes: list[cst.CSTNode] = [value]
        if isinstance(value, cst.Name):
            nodes += [b.value for b in self._bound.get(value.value, []) if isinstance(b, (cst.Assign, cst.AnnAssign))]
        for node in nodes:
            for s in m.findall(node, m.SimpleString()):
                v = s.evaluated_value if isinstance(s, cst.SimpleString) else None
                if isinstance(v, str) and facts.url_driver(v):
                    found.append(v)
        return found

    def _shares_memory(self, url: str) -> bool:
        return self._memory_name is not None and sqlite_memory(url)

    def _share_memory(self, literal: cst.BaseExpression, url: str, call: cst.Call) -> str:
        """Rewrite the sync engine's in-memory URL ``literal`` to the shared one; returns the new URL.

        A sync engine with no ``poolclass`` gets the SingletonThreadPool it used: SQLAlchemy 2.1 warns when
        it picks the pool for a ``mode=memory`` URL itself.
        """
        assert self._memory_name is not None
        shared = shared_memory_url(url, self._memory_name)
        new_literal = quoted(shared)
        if any(a.keyword is not None and a.keyword.value == "poolclass" for a in call.args):
            self.staged_edits.replace[id(literal)] = new_literal
        else:
            args = [a.with_changes(value=new_literal) if a.value is literal else a for a in call.args]
            args.append(kwarg("poolclass", cst.Name("SingletonThreadPool")))
            self.staged_imports.append((_POOL_MODULE, "SingletonThreadPool"))
            self.staged_edits.replace[id(call)] = call.with_changes(args=relayout(call, args))
            if not any(a.value is literal for a in call.args):
                self.staged_edits.replace[id(literal)] = new_literal
        return shared

    def _check_memory(self, url: str, call: cst.Call) -> None:
        if sqlite_memory(url):
            self._say(call, "in-memory SQLite: the async engine opens its own, empty database; rows written through "
                            "one engine are not seen by the other")

    def _note_driver(self, async_url: str) -> Optional[str]:
        parsed = facts.url_driver(async_url)
        driver = parsed[1] if parsed else None
        if driver:
            self._scratch.setdefault(DRIVERS_KEY, set()).add(driver)
        return driver

    def _check_url_params(self, async_url: str, call: cst.Call) -> None:
        rejected = asyncpg_rejected_params(async_url)
        if rejected:
            self._say(call, f"URL parameter(s) {', '.join(rejected)} are rejected by asyncpg at the first connect; "
                            "use ?ssl=... or connect_args timeout=/server_settings=")

    # ---- keyword arguments ----

    def _engine_kwarg(
        self, arg: cst.Arg, driver: Optional[str], known: Optional[str], call: cst.Call
    ) -> Union[cst.Arg, None, bool]:
        """The argument for the async engine: kept, None to drop it, or False when the engine must be left alone."""
        if arg.star == "**":
            return arg if self._check_kwargs_dict(arg.value, driver, call) else False
        if arg.keyword is None:
            return arg
        key = arg.keyword.value
        if key in facts.ENGINE_KWARGS_DROPPED or key in facts.ENGINE_KWARGS_NOOP:
            return None
        if key in facts.ENGINE_KWARGS_SYNC_ONLY:
            self._say(arg, f"create_engine({key}=...) returns a sync DBAPI connection; create_async_engine needs "
                           f"async_{key}=; engine left alone")
            return False
        if key in facts.ENGINE_KWARGS_PSYCOPG2_ONLY:
            self._say(arg, f"{key}= is a psycopg2 option the async driver rejects; dropped from the async engine")
            return None
        if self._pool is not None and (key == "poolclass" or key in _QUEUE_POOL_ONLY):
            return None  # the test engine's pool is decided above
        if key in facts.SQLITE_MEMORY_ASYNC_REJECTED_KWARGS and known is not None and sqlite_memory(known):
            self._say(arg, f"{key}= is rejected by the in-memory aiosqlite pool (StaticPool); dropped from the "
                           "async engine")
            return None
        if key == "poolclass":
            return self._poolclass(arg)
        if key == "connect_args":
            self._check_connect_args(arg.value, driver, call)
        return arg

    def _poolclass(self, arg: cst.Arg) -> Optional[cst.Arg]:
        for q in self._qnames(arg.value):
            module, _, cls = q.rpartition(".")
            if not q.startswith("sqlalchemy.") or cls not in facts.ASYNC_POOLCLASS:
                continue
            replacement = facts.ASYNC_POOLCLASS[cls]
            if replacement is None:
                self._say(arg, f"poolclass={cls} cannot serve an asyncio engine; dropped (the async engine "
                               "uses its default pool)")
                return None
            value = arg.value
            if isinstance(value, cst.Attribute):
                return arg.with_changes(value=value.with_changes(attr=cst.Name(replacement)))
            self.staged_imports.append((module, replacement))
            return arg.with_changes(value=cst.Name(replacement))
        return arg

    def _check_connect_args(self, value: cst.BaseExpression, driver: Optional[str], call: cst.Call) -> None:
        if driver not in (None, "asyncpg"):
            return
        keys: set[str] = set()
        for d in m.findall(value, m.Dict()):
            assert isinstance(d, cst.Dict)
            for el in d.elements:
                if isinstance(el, cst.DictElement) and isinstance(el.key, cst.SimpleString):
                    keys.add(str(el.key.evaluated_value))
        for c in m.findall(value, m.Call(func=m.Name("dict"))):
            assert isinstance(c, cst.Call)
            keys |= {a.keyword.value for a in c.args if a.keyword is not None}
        rejected = sorted(keys & facts.ASYNCPG_REJECTED_PARAMS)
        if rejected:
            where = "asyncpg" if driver == "asyncpg" else "asyncpg (a postgresql URL maps to it)"
            self._say(value, f"connect_args {', '.join(rejected)} are rejected by {where} at the first connect; "
                             "use ssl=, timeout=, server_settings=")

    def _check_kwargs_dict(self, value: cst.BaseExpression, driver: Optional[str], call: cst.Call) -> bool:
        """``**engine_kwargs``: look at every module-level write to the dict; False if it holds a rejected key."""
        if not isinstance(value, cst.Name):
            self._say(value, "engine keyword arguments built elsewhere are passed to the async engine unchecked")
            return True
        writes: list[tuple[Optional[str], cst.BaseExpression]] = []
        opaque = False
        for stmt, _ in module_level(self._module):
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                pair = assignment(small)
                if pair is not None and pair[0] == value.value:
                    if isinstance(pair[1], cst.Dict):
                        for el in pair[1].elements:
                            if isinstance(el, cst.DictElement):
                                k = el.key.evaluated_value if isinstance(el.key, cst.SimpleString) else None
                                writes.append((k if isinstance(k, str) else None, el.value))
                    elif m.matches(pair[1], m.Call(func=m.Name("dict"))):
                        assert isinstance(pair[1], cst.Call)
                        writes += [(a.keyword.value if a.keyword else None, a.value) for a in pair[1].args]
                    else:
                        opaque = True
                elif m.matches(small, m.Assign(targets=[m.AssignTarget(m.Subscript(value=m.Name(value.value)))])):
                    assert isinstance(small, cst.Assign)
                    target = small.targets[0].target
                    assert isinstance(target, cst.Subscript)
                    index = target.slice[0].slice
                    literal = isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString)
                    k = index.value.evaluated_value if literal else None  # type: ignore[union-attr]
                    writes.append((k if isinstance(k, str) else None, small.value))
                elif m.matches(small, m.Expr(m.Call(func=m.Attribute(m.Name(value.value), m.Name("update"))))):
                    assert isinstance(small, cst.Expr) and isinstance(small.value, cst.Call)
                    writes += [(a.keyword.value if a.keyword else None, a.value) for a in small.value.args]
        if opaque or not writes:
            self._say(value, f"engine keyword arguments in {value.value} are passed to the async engine unchecked")
        ok = True
        for key, v in writes:
            if key in facts.ENGINE_KWARGS_DROPPED | facts.ENGINE_KWARGS_PSYCOPG2_ONLY | facts.ENGINE_KWARGS_SYNC_ONLY:
                self._say(v, f"{value.value} sets {key!r}, which create_async_engine rejects; engine left alone")
                ok = False
            elif key == "poolclass" and any(q.rsplit(".", 1)[-1] in facts.ASYNC_POOLCLASS for q in self._qnames(v)):
                self._say(v, f"{value.value} sets a poolclass an asyncio engine rejects; engine left alone")
                ok = False
            elif self._pool is not None and key in _QUEUE_POOL_ONLY | {"poolclass"}:
                self._say(v, f"{value.value} sets {key!r}, which the test engine's {self._pool} rejects or "
                             "overrides; engine left alone")
                ok = False
            elif key == "connect_args":
                self._check_connect_args(v, driver, call)
        return ok


def repeat_listeners(module: cst.Module, engine: str, async_engine: str, qnames: QNames, edits: Edits) -> None:
    """``event.listen(engine, ...)`` / ``@event.listens_for(engine, ...)`` repeated on ``async_engine.sync_engine``.

    Listening on an AsyncEngine itself raises NotImplementedError (SQLALCHEMY_ASYNC.md §3).
    """
    target = f"{async_engine}.sync_engine"

    def calls(node: cst.BaseExpression, names: frozenset[str]) -> bool:
        return isinstance(node, cst.Call) and bool(qnames(node.func) & names)

    for stmt, _ in module_level(module):
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Expr) and calls(small.value, facts.EVENT_LISTEN) \
                        and first_arg_is(small.value, engine):
                    assert isinstance(small.value, cst.Call)
                    twin = with_first_arg(small.value, expr(target))
                    edits.add_after(stmt, cst.SimpleStatementLine(body=[cst.Expr(twin)]))
        elif isinstance(stmt, cst.FunctionDef):
            for deco in stmt.decorators:
                if calls(deco.decorator, facts.EVENT_LISTENS_FOR) and first_arg_is(deco.decorator, engine):
                    assert isinstance(deco.decorator, cst.Call)
                    twin = deco.with_changes(decorator=with_first_arg(deco.decorator, expr(target)), leading_lines=[])
                    edits.decorators.setdefault(id(stmt), []).append(twin)
