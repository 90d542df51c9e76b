"""Phase 1 ("database"): add an async engine, session factory and dependency beside the sync ones.

In a module that builds a sync engine (``engine = create_engine(URL, ...)``) and a sync session factory
(``SessionLocal = sessionmaker(bind=engine, ...)``, ``scoped_session(sessionmaker(...))``), this rewrite adds
``async_engine = create_async_engine(<async URL>, ...)`` under the engine, ``AsyncSessionLocal =
async_sessionmaker(async_engine, expire_on_commit=False, ...)`` under the factory, and ``get_async_db`` under
the sync ``get_db`` generator.  The sync objects stay, so routes can move over one at a time (the seed's
Phase 4 removes them).  A literal URL is mapped with the facts table when the rewrite runs; any other URL
expression goes through a small generated ``_async_database_url`` helper that applies the same table at run
time.  Engine keyword arguments are kept, except those an asyncio engine rejects (SQLALCHEMY_ASYNC.md §3).
``event.listen(engine, ...)`` is repeated on ``async_engine.sync_engine``.  A URL with no async driver, a
``creator=``, or a factory bound to an engine from elsewhere is left alone and reported.

Fixes ASM140 (create_engine), ASM141 (sessionmaker) and ASM142 (sync driver URL).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence, Union
from urllib.parse import parse_qsl, urlsplit

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import PositionProvider, QualifiedNameProvider

from asyncmigrate import facts
from asyncmigrate.codemods.base import FilePlan, ScopedTransformer, dotted

DESCRIPTION = (
    "Add create_async_engine, async_sessionmaker(expire_on_commit=False) and an async get_db beside the "
    "sync engine, session factory and dependency, mapping the URL to its async driver."
)

#: ``context.scratch`` key: the async driver names (``aiosqlite``, ``asyncpg``...) this file's URLs need.
DRIVERS_KEY = "asyncmigrate.async_drivers"

_URL_HELPER = "_async_database_url"
_SQLALCHEMY_ASYNCIO = "sqlalchemy.ext.asyncio"
#: AsyncSession attributes that are plain properties (no I/O), allowed in a translated dependency.
_SESSION_PROPERTIES = frozenset(
    {"is_active", "info", "new", "dirty", "deleted", "identity_map", "no_autoflush", "bind"}
)

Statement = Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]


# --------------------------------------------------------------------------------------------------
# Small syntax helpers, shared with lifecycle_to_async.
# --------------------------------------------------------------------------------------------------


def expr(text: str) -> cst.BaseExpression:
    return cst.parse_expression(text)


def kwarg(name: str, value: cst.BaseExpression) -> cst.Arg:
    return cst.Arg(
        keyword=cst.Name(name),
        value=value,
        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
    )


def relayout(original: cst.Call, args: Sequence[cst.Arg]) -> list[cst.Arg]:
    """``args`` laid out the way ``original``'s arguments were: one line, or one per line, trailing comma kept."""
    if not args:
        return []
    sep: cst.BaseParenthesizableWhitespace = cst.SimpleWhitespace(" ")
    for arg in original.args[:-1]:
        if isinstance(arg.comma, cst.Comma):
            sep = arg.comma.whitespace_after
            break
    last = original.args[-1] if original.args else None
    out: list[cst.Arg] = []
    for i, arg in enumerate(args):
        if i < len(args) - 1:
            out.append(
                arg.with_changes(
                    comma=cst.Comma(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=sep),
                    whitespace_after_arg=cst.SimpleWhitespace(""),
                )
            )
        elif last is not None:
            out.append(arg.with_changes(comma=last.comma, whitespace_after_arg=last.whitespace_after_arg))
        else:
            out.append(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT))
    return out


def pad_blank_lines(stmt: Statement, count: int = 2) -> Statement:
    """``stmt`` with at least ``count`` blank lines before it (before its own comments)."""
    lines = list(stmt.leading_lines)
    blank = 0
    while blank < len(lines) and lines[blank].comment is None:
        blank += 1
    if blank >= count:
        return stmt
    return stmt.with_changes(leading_lines=[cst.EmptyLine()] * (count - blank) + lines)


def body_of(stmt: cst.BaseCompoundStatement) -> Iterator[cst.BaseStatement]:
    """Statements of every block of a compound statement (not descending into functions or classes)."""
    blocks: list[cst.BaseSuite] = []
    if isinstance(stmt, (cst.If, cst.With, cst.For, cst.While)):
        blocks.append(stmt.body)
        orelse = getattr(stmt, "orelse", None)
        if isinstance(orelse, cst.If):
            yield orelse
        elif isinstance(orelse, cst.Else):
            blocks.append(orelse.body)
    elif isinstance(stmt, (cst.Try, cst.TryStar)):
        blocks.append(stmt.body)
        blocks.extend(h.body for h in stmt.handlers)
        if stmt.orelse is not None:
            blocks.append(stmt.orelse.body)
        if stmt.finalbody is not None:
            blocks.append(stmt.finalbody.body)
    for block in blocks:
        if isinstance(block, cst.IndentedBlock):
            yield from block.body
        else:  # SimpleStatementSuite: ``if x: a = 1``
            yield cst.SimpleStatementLine(body=block.body)


def module_level(module: cst.Module) -> Iterator[tuple[cst.BaseStatement, cst.BaseStatement]]:
    """``(statement, top-level statement holding it)`` for code that runs at import time."""

    def walk(stmt: cst.BaseStatement, top: cst.BaseStatement) -> Iterator[tuple[cst.BaseStatement, cst.BaseStatement]]:
        yield stmt, top
        if isinstance(stmt, cst.BaseCompoundStatement) and not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            for inner in body_of(stmt):
                yield from walk(inner, top)

    for top in module.body:
        yield from walk(top, top)


def assignment(small: cst.BaseSmallStatement) -> Optional[tuple[str, cst.BaseExpression]]:
    """``(name, value)`` of ``name = value`` / ``name: T = value``."""
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
        return small.targets[0].target.value, small.value
    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value is not None:
        return small.target.value, small.value
    return None


def bound_names(module: cst.Module) -> dict[str, list[cst.CSTNode]]:
    """Every name bound at module level, with the nodes that bind it."""
    names: dict[str, list[cst.CSTNode]] = {}
    for stmt, _ in module_level(module):
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            names.setdefault(stmt.name.value, []).append(stmt)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                pair = assignment(small)
                if pair is not None:
                    names.setdefault(pair[0], []).append(small)
                elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                    for alias in small.names:
                        names.setdefault(alias.evaluated_alias or alias.evaluated_name, []).append(small)
                elif isinstance(small, cst.Import):
                    for alias in small.names:
                        bound = alias.evaluated_alias or alias.evaluated_name.split(".")[0]
                        names.setdefault(bound, []).append(small)
    return names


def import_source(module: cst.Module, name: str) -> Optional[tuple[str, int, str]]:
    """``(module, relative level, imported name)`` of a module-level ``from M import X [as name]``."""
    for stmt, _ in module_level(module):
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if (alias.evaluated_alias or alias.evaluated_name) == name:
                        mod = dotted(small.module) if small.module is not None else ""
                        return mod or "", len(small.relative), alias.evaluated_name
    return None


def url_helper_def(name: str) -> cst.FunctionDef:
    """The run-time URL mapper, emitted from the facts table's pairs as literals."""
    pairs = "\n".join(f'        ("{sync}", "{asyn}"),' for sync, asyn in facts.ASYNC_DRIVER_FOR_URL)
    source = (
        f"def {name}(url: str) -> str:\n"
        '    """``url`` with its sync driver replaced by the async one; other URLs come back unchanged."""\n'
        "    for sync_prefix, async_prefix in (\n"
        f"{pairs}\n"
        "    ):\n"
        "        if url.startswith(sync_prefix):\n"
        "            return async_prefix + url[len(sync_prefix) :]\n"
        "    return url\n"
    )
    fn = cst.parse_statement(source)
    assert isinstance(fn, cst.FunctionDef)
    return fn.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])


# --------------------------------------------------------------------------------------------------
# What the module holds.
# --------------------------------------------------------------------------------------------------


@dataclass
class _Engine:
    stmt: cst.SimpleStatementLine
    top: cst.BaseStatement
    name: str
    call: cst.Call


@dataclass
class _Factory:
    stmt: cst.SimpleStatementLine
    name: str
    call: cst.Call  # the sessionmaker(...) call (inside scoped_session(...) when scoped)
    scoped: Optional[cst.Call] = None  # the scoped_session(...) call
    engine: Optional[str] = None  # the bind, as written


@dataclass
class _Source:
    """Where a sync dependency gets its session: ``SessionLocal()``, ``SessionLocal.begin()``, ``Session(engine)``."""

    var: str
    call: cst.Call
    factory: Optional[str]  # factory name, or None for ``Session(engine)``
    session_class: Optional[str] = None  # qualified name of the Session class for ``Session(engine)``


@dataclass
class _Edits:
    before: dict[int, list[Statement]] = field(default_factory=dict)
    after: dict[int, list[Statement]] = field(default_factory=dict)
    decorators: dict[int, list[cst.Decorator]] = field(default_factory=dict)

    def add_after(self, node: cst.CSTNode, *stmts: Statement) -> None:
        self.after.setdefault(id(node), []).extend(stmts)


class EngineToAsync(ScopedTransformer, VisitorBasedCodemodCommand):
    """Add the async engine, session factory and dependency beside the sync ones (Phase 1)."""

    DESCRIPTION = DESCRIPTION
    fixes = ("ASM140", "ASM141", "ASM142")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._edits = _Edits()

    # ---- traversal: all decisions are made on the whole module first, then applied by node identity ----

    def visit_Module(self, node: cst.Module) -> Optional[bool]:
        self._module = node
        self._bound = bound_names(node)
        self._plan_edits(node)
        return True

    def on_leave(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        result = super().on_leave(original_node, updated_node)
        key = id(original_node)
        if key in self._edits.decorators and isinstance(result, cst.FunctionDef):
            result = result.with_changes(decorators=[*self._edits.decorators[key], *result.decorators])
        before, after = self._edits.before.get(key), self._edits.after.get(key)
        if before or after:
            assert isinstance(result, cst.BaseStatement)
            if before:
                result = pad_blank_lines(result)
            return cst.FlattenSentinel([*(before or []), result, *(after or [])])
        return result

    # ---- helpers ----

    def _qnames(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def _calls(self, node: cst.BaseExpression, names: frozenset[str]) -> bool:
        return isinstance(node, cst.Call) and bool(self._qnames(node.func) & names)

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _say(self, node: cst.CSTNode, message: str) -> None:
        self.warn(f"line {self._line(node)}: {message}")

    def _free(self, name: str) -> bool:
        return name not in self._bound

    def _import(self, module: str, obj: Optional[str] = None, relative: int = 0) -> None:
        """Schedule an import, unless ``obj`` is already bound by an import (any module)."""
        if obj is not None and any(isinstance(n, (cst.ImportFrom, cst.Import)) for n in self._bound.get(obj, [])):
            return
        self.add_needed_import(module, obj, relative=relative)

    # ---- the plan ----

    def _plan_edits(self, module: cst.Module) -> None:
        plan = self.plan
        engines: list[_Engine] = []
        factories: list[_Factory] = []
        async_engines: list[str] = []
        async_factories: list[str] = []
        handled: set[int] = set()
        for stmt, top in module_level(module):
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                pair = assignment(small)
                if pair is None or not isinstance(pair[1], cst.Call):
                    continue
                name, call = pair[0], pair[1]
                q = self._qnames(call.func)
                if q & facts.SYNC_ENGINE_FACTORIES:
                    engines.append(_Engine(stmt, top, name, call))
                    handled.add(id(call))
                elif q & facts.ASYNC_ENGINE_FACTORIES:
                    async_engines.append(name)
                elif q & facts.ASYNC_SESSIONMAKERS or (
                    q & facts.SYNC_SESSIONMAKERS and self._makes_async_sessions(call)  # 1.4: class_=AsyncSession
                ):
                    async_factories.append(name)
                elif q & facts.SYNC_SCOPED_SESSIONS:
                    inner = call.args[0].value if call.args else None
                    plain_makers = facts.SYNC_SESSIONMAKERS - facts.SYNC_SCOPED_SESSIONS
                    if isinstance(inner, cst.Call) and self._calls(inner, plain_makers):
                        factories.append(_Factory(stmt, name, inner, scoped=call, engine=_bind_of(inner)))
                    else:
                        self._say(call, f"scoped_session(...) in {name} wraps a factory defined elsewhere; left alone "
                                        f"(wrap {plan.async_session_factory} in async_scoped_session(..., "
                                        "scopefunc=asyncio.current_task) by hand)")
                elif q & facts.SYNC_SESSIONMAKERS:
                    factories.append(_Factory(stmt, name, call, engine=_bind_of(call)))
        self._report_other_engines(module, handled)
        if not engines and not factories and not async_engines:
            self._plan_imported_dependency(module)
            return

        # The engine the session factory binds is the one that gets an async twin.
        engine_names = {e.name for e in engines}
        bound = [f.engine for f in factories if f.engine in engine_names]
        if bound:
            primary = bound[0]
        elif len(engine_names) == 1:
            primary = next(iter(engine_names))
        else:
            if engines:
                self._say(engines[0].call, "several engines and no session factory binding one; left alone")
            primary = None
        for other in sorted(engine_names - {primary} if primary else set()):
            site = next(e for e in engines if e.name == other)
            self._say(site.call, f"second engine {other} left alone: the plan names one async engine")

        async_engine: Optional[str] = async_engines[0] if async_engines else None
        sites = [e for e in engines if e.name == primary]
        if async_engine is None and sites:
            if not self._free(plan.async_engine):
                self._say(sites[0].call, f"{plan.async_engine} is already defined here; async engine not added")
            elif self._plan_engine(sites):
                async_engine = plan.async_engine
        if async_engine is None:
            for f in factories:
                self._say(f.call, f"{f.name} binds {f.engine or 'no engine'}, which gets no async engine here; "
                                  "left alone")
            self._plan_imported_dependency(module)
            return

        # Session factory.
        factory: Optional[str] = async_factories[0] if async_factories else None
        chosen = next((f for f in factories if f.engine == primary), None) if primary else None
        for f in factories:
            if f is chosen:
                continue
            if chosen is not None:
                self._say(f.call, f"session factory {f.name} left alone: {plan.async_session_factory} mirrors "
                                  f"{chosen.name}")
            else:
                self._say(f.call, f"session factory {f.name} binds {f.engine or 'no engine'}, which gets no async "
                                  "engine here; left alone")
        scoped = chosen is not None and chosen.scoped is not None
        if factory is None and chosen is not None:
            if not self._free(plan.async_session_factory):
                self._say(chosen.call, f"{plan.async_session_factory} is already defined here; async factory not added")
                chosen = None
            else:
                self._plan_factory(chosen, async_engine)
                factory = plan.async_session_factory
        elif factory is not None:
            scoped = False  # an existing async factory: use it as it is

        # Session dependency.
        sync_factories = ({f.name for f in factories} | set(plan.sync_factories)) - set(async_factories)
        mirrored = chosen.name if chosen is not None and not async_factories else None
        self._plan_dependency(module, sync_factories, primary, async_engine, factory, scoped, sites, mirrored)

    def _makes_async_sessions(self, call: cst.Call) -> bool:
        class_ = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "class_"), None)
        return class_ is not None and bool(self._qnames(class_) & facts.ASYNC_SESSION_TYPES)

    # ---- engine ----

    def _plan_engine(self, sites: list[_Engine]) -> bool:
        statements: list[tuple[_Engine, cst.SimpleStatementLine]] = []
        needs_helper = False
        self._staged_imports: list[tuple[str, str]] = []  # scheduled only if every site can be rewritten
        for site in sites:
            built = self._async_engine_call(site)
            if built is None:
                return False
            call, helper = built
            needs_helper = needs_helper or helper
            line = cst.SimpleStatementLine(
                body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(self.plan.async_engine))], value=call)]
            )
            statements.append((site, line))
        if needs_helper:
            name, n = _URL_HELPER, 1
            while not self._free(name):
                n += 1
                name = f"{_URL_HELPER}_{n}"
            self._edits.before.setdefault(id(sites[0].top), []).append(url_helper_def(name))
            statements = [(s, _rename_helper(line, name)) for s, line in statements]
        self._import(_SQLALCHEMY_ASYNCIO, "create_async_engine")
        for module, name in self._staged_imports:
            self._import(module, name)
        for site, line in statements:
            self._edits.add_after(site.stmt, line)
        self._plan_listeners(sites[0].name)
        return True

    def _async_engine_call(self, site: _Engine) -> Optional[tuple[cst.Call, bool]]:
        """``create_async_engine(...)`` for one ``create_engine(...)`` call, and whether it uses the URL helper."""
        call = site.call
        url_arg = next((a for a in call.args if a.keyword is None and not a.star), None)
        url_arg = url_arg or next((a for a in call.args if a.keyword and a.keyword.value == "url"), None)
        if url_arg is None:
            self._say(call, f"create_engine() for {site.name} has no URL argument; left alone")
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
        func = cst.Name("create_async_engine")
        return call.with_changes(func=func, args=relayout(call, args)), helper

    def _async_url(
        self, value: cst.BaseExpression, call: cst.Call
    ) -> Optional[tuple[cst.BaseExpression, bool, Optional[str], Optional[str]]]:
        """``(async URL expression, uses helper, async driver or None, known URL or None)``; None: left alone."""
        literal = value.evaluated_value if isinstance(value, (cst.SimpleString, cst.ConcatenatedString)) else None
        if isinstance(literal, str):
            mapped = facts.async_url(literal)
            if mapped is None:
                self._say(call, f"URL {_scheme(literal)!r} has no async driver in the table; engine left alone")
                return None
            self._check_memory(literal, call)
            self._check_url_params(mapped, call)
            driver = self._note_driver(mapped)
            if mapped == literal:
                return value, False, driver, mapped
            return _string_like(value, literal, mapped), False, driver, mapped
        head_part = value.parts[0] if isinstance(value, cst.FormattedString) and value.parts else None
        if isinstance(value, cst.FormattedString) and isinstance(head_part, cst.FormattedStringText):
            head = head_part.value
            if "://" in head:
                mapped = facts.async_url(head)
                if mapped is None:
                    self._say(call, f"URL {_scheme(head)!r} has no async driver in the table; engine left alone")
                    return None
                texts = "".join(p.value for p in value.parts[1:] if isinstance(p, cst.FormattedStringText))
                self._check_url_params(mapped + texts, call)
                driver = self._note_driver(mapped)
                parts = [value.parts[0].with_changes(value=mapped), *value.parts[1:]]
                return value.with_changes(parts=parts), False, driver, None
        # Known only at run time: map it there, with the same table.
        known = self._module_literal(value)
        if known is not None and facts.async_url(known) is None:
            self._say(call, f"URL {_scheme(known)!r} has no async driver in the table; engine left alone")
            return None
        if known is not None:
            self._check_url_params(facts.async_url(known) or known, call)
            self._check_memory(known, call)
        known_driver: Optional[str] = None  # only when the value is certain, not a default that may be overridden
        for literal_url in self._url_literals(value):
            mapped = facts.async_url(literal_url)
            if mapped:
                found = self._note_driver(mapped)
                known_driver = found if known is not None else None
        wrapped = cst.Call(func=cst.Name(_URL_HELPER), args=[cst.Arg(value=value)])
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

    def _check_memory(self, url: str, call: cst.Call) -> None:
        if _sqlite_memory(url):
            self._say(call, "in-memory SQLite: the async engine opens its own, empty database; rows written through "
                            "one engine are not seen by the other")

    def _note_driver(self, async_url: str) -> Optional[str]:
        parsed = facts.url_driver(async_url)
        driver = parsed[1] if parsed else None
        if driver:
            self.context.scratch.setdefault(DRIVERS_KEY, set()).add(driver)
        return driver

    def _check_url_params(self, async_url: str, call: cst.Call) -> None:
        if not async_url.startswith("postgresql+asyncpg://"):
            return
        query = urlsplit(async_url).query
        rejected = sorted({k for k, _ in parse_qsl(query)} & facts.ASYNCPG_REJECTED_PARAMS)
        if rejected:
            self._say(call, f"URL parameter(s) {', '.join(rejected)} are rejected by asyncpg at the first connect; "
                            "use ?ssl=... or connect_args timeout=/server_settings=")

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
        if key in facts.SQLITE_MEMORY_ASYNC_REJECTED_KWARGS and known is not None and _sqlite_memory(known):
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
            self._staged_imports.append((module, replacement))
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
            elif key == "connect_args":
                self._check_connect_args(v, driver, call)
        return ok

    def _report_other_engines(self, module: cst.Module, handled: set[int]) -> None:
        for call in m.findall(module, m.Call()):
            assert isinstance(call, cst.Call)
            if id(call) not in handled and self._calls(call, facts.SYNC_ENGINE_FACTORIES):
                self._say(call, "create_engine() outside a module-level assignment is left alone")

    # ---- event listeners ----

    def _plan_listeners(self, engine: str) -> None:
        target = f"{self.plan.async_engine}.sync_engine"
        for stmt, _ in module_level(self._module):
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if (
                        isinstance(small, cst.Expr)
                        and self._calls(small.value, facts.EVENT_LISTEN)
                        and _first_arg_is(small.value, engine)
                    ):
                        assert isinstance(small.value, cst.Call)
                        twin = _with_first_arg(small.value, expr(target))
                        self._edits.add_after(stmt, cst.SimpleStatementLine(body=[cst.Expr(twin)]))
            elif isinstance(stmt, cst.FunctionDef):
                for deco in stmt.decorators:
                    if self._calls(deco.decorator, facts.EVENT_LISTENS_FOR) and _first_arg_is(deco.decorator, engine):
                        assert isinstance(deco.decorator, cst.Call)
                        twin = deco.with_changes(
                            decorator=_with_first_arg(deco.decorator, expr(target)), leading_lines=[]
                        )
                        self._edits.decorators.setdefault(id(stmt), []).append(twin)

    # ---- session factory ----

    def _plan_factory(self, f: _Factory, async_engine: str) -> None:
        made = self._async_factory_call(f.call, async_engine)
        if f.scoped is not None:
            scopefunc = ".".join(facts.ASYNC_SCOPEFUNC)
            self._import(facts.ASYNC_SCOPEFUNC[0])
            self._import(_SQLALCHEMY_ASYNCIO, "async_scoped_session")
            others = [a for a in f.scoped.args[1:] if not (a.keyword and a.keyword.value == "scopefunc")]
            if any(a.keyword and a.keyword.value == "scopefunc" for a in f.scoped.args):
                self._say(f.scoped, f"scoped_session(scopefunc=...) of {f.name} becomes scopefunc={scopefunc}")
            args = [cst.Arg(made), *others, kwarg("scopefunc", expr(scopefunc))]
            made = f.scoped.with_changes(func=cst.Name("async_scoped_session"), args=relayout(f.scoped, args))
        line = cst.SimpleStatementLine(
            body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(self.plan.async_session_factory))], value=made)]
        )
        self._edits.add_after(f.stmt, line)
        self._warn_session_events(f.name)

    def _async_factory_call(self, call: cst.Call, async_engine: str, session_class: Optional[str] = None) -> cst.Call:
        """``async_sessionmaker(async_engine, expire_on_commit=False, <kept>)`` for a sessionmaker or Session call."""
        self._import(_SQLALCHEMY_ASYNCIO, "async_sessionmaker")
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

    def _session_class_arg(self, class_arg: Optional[cst.Arg], session_class: Optional[str]) -> Optional[cst.Arg]:
        qualified = session_class
        if class_arg is not None:
            qualified = next(iter(sorted(self._qnames(class_arg.value))), None)
        if qualified is None and self.plan.sqlmodel:
            qualified = "sqlmodel.Session"
        if qualified is None:
            return None
        target = facts.ASYNC_SESSION_CLASS_FOR.get(qualified)
        if target is None:
            assert class_arg is not None
            return kwarg("sync_session_class", class_arg.value)
        if target[0] == _SQLALCHEMY_ASYNCIO:
            return None  # the default class_
        self._import(target[0], target[1])
        return kwarg("class_", cst.Name(target[1]))

    def _session_class(self) -> tuple[str, str]:
        """``(module, name)`` of the AsyncSession class for annotations."""
        if self.plan.sqlmodel:
            return facts.ASYNC_SESSION_CLASS_FOR["sqlmodel.Session"]
        return _SQLALCHEMY_ASYNCIO, "AsyncSession"

    def _warn_session_events(self, factory: str) -> None:
        for call in m.findall(self._module, m.Call()):
            assert isinstance(call, cst.Call)
            if self._calls(call, facts.EVENT_LISTEN | facts.EVENT_LISTENS_FOR) and _first_arg_is(call, factory):
                self._say(call, f"session events on {factory} are not registered for "
                                f"{self.plan.async_session_factory}; listen on its sync_session_class")

    # ---- session dependency ----

    def _plan_imported_dependency(self, module: cst.Module) -> None:
        """A ``get_db`` whose factory is imported (``from app.db.session import SessionLocal``)."""
        factories = {f for f in self.plan.sync_factories if import_source(module, f) is not None}
        if factories:
            self._plan_dependency(module, factories, None, None, None, False, [], None)

    def _plan_dependency(
        self,
        module: cst.Module,
        sync_factories: set[str],
        engine: Optional[str],
        async_engine: Optional[str],
        factory: Optional[str],
        scoped: bool,
        sites: list[_Engine],
        mirrored: Optional[str],
    ) -> None:
        plan = self.plan
        candidates: list[tuple[cst.FunctionDef, _Source]] = []
        for stmt in module.body:
            if isinstance(stmt, cst.FunctionDef) and not stmt.decorators and _is_generator(stmt):
                source = self._session_source(stmt, sync_factories, engine)
                if source is not None:
                    candidates.append((stmt, source))
        if not candidates:
            return
        existing = self._bound.get(plan.async_dependency, [])
        if existing:
            if not (len(existing) == 1 and isinstance(existing[0], cst.FunctionDef) and existing[0].asynchronous):
                self._say(candidates[0][0], f"{plan.async_dependency} is already defined here; not added")
            return
        chosen = next((c for c in candidates if c[0].name.value in plan.sync_dependencies), candidates[0])
        for fn, _ in candidates:
            if fn is not chosen[0]:
                self._say(fn, f"{fn.name.value}() also yields a sync session; {plan.async_dependency} follows "
                              f"{chosen[0].name.value}()")
        fn, source = chosen
        local = source.factory is not None and source.factory in {n for n, b in self._bound.items() if _assigned(b)}
        if local and mirrored is not None and source.factory != mirrored:
            self._say(fn, f"{fn.name.value}() uses {source.factory}, but {plan.async_session_factory} mirrors "
                          f"{mirrored}; {plan.async_dependency} not added")
            return
        async_factory = self._dependency_factory(source, factory, async_engine, sites, fn)
        if async_factory is None:
            return
        new_fn = self._async_dependency(fn, source, async_factory, scoped and source.factory is not None)
        self._edits.add_after(fn, new_fn)

    def _dependency_factory(
        self, source: _Source, factory: Optional[str], async_engine: Optional[str], sites: list[_Engine],
        fn: cst.FunctionDef,
    ) -> Optional[str]:
        plan = self.plan
        if source.factory is None:  # Session(engine): give it a factory under the async engine
            if factory is not None:
                return factory
            if async_engine is None or not sites:
                return None
            if not self._free(plan.async_session_factory):
                self._say(fn, f"{plan.async_session_factory} is already defined here; {plan.async_dependency} "
                              "not added")
                return None
            made = self._async_factory_call(source.call, async_engine, source.session_class)
            line = cst.SimpleStatementLine(
                body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(plan.async_session_factory))], value=made)]
            )
            self._edits.add_after(sites[-1].top, line)
            return plan.async_session_factory
        imported = import_source(self._module, source.factory)
        if imported is not None and source.factory not in {n for n, b in self._bound.items() if _assigned(b)}:
            mod, level, _ = imported
            if self._free(plan.async_session_factory) or import_source(self._module, plan.async_session_factory):
                self.add_needed_import(mod, plan.async_session_factory, relative=level)
                return plan.async_session_factory
            self._say(fn, f"{plan.async_session_factory} is already defined here; {plan.async_dependency} not added")
            return None
        if factory is None:
            self._say(fn, f"{fn.name.value}() uses {source.factory}, which gets no async factory here; "
                          f"{plan.async_dependency} not added")
        return factory

    def _session_source(self, fn: cst.FunctionDef, factories: set[str], engine: Optional[str]) -> Optional[_Source]:
        """How ``fn`` gets the session it yields, when it is a sync session from a known factory."""
        yielded = {y.value.value for y in m.findall(fn.body, m.Yield(value=m.Name())) if isinstance(y, cst.Yield)
                   and isinstance(y.value, cst.Name)}
        pairs: list[tuple[str, cst.BaseExpression]] = []
        binding = m.Assign(targets=[m.AssignTarget(m.Name())]) | m.WithItem(asname=m.AsName(name=m.Name()))
        for node in m.findall(fn.body, binding):
            if isinstance(node, cst.Assign):
                pairs.append((node.targets[0].target.value, node.value))  # type: ignore[attr-defined]
            elif isinstance(node, cst.WithItem) and node.asname is not None:
                pairs.append((node.asname.name.value, node.item))  # type: ignore[attr-defined]
        for var, value in pairs:
            if var not in yielded or not isinstance(value, cst.Call):
                continue
            func = value.func
            if isinstance(func, cst.Name) and func.value in factories:
                return _Source(var, value, func.value)
            if m.matches(func, m.Attribute(value=m.Name(), attr=m.Name("begin"))):
                name = func.value.value  # type: ignore[attr-defined]
                if name in factories:
                    return _Source(var, value, name)
            classes = self._qnames(func) & facts.SYNC_SESSION_CLASSES
            if classes and engine is not None and (_bind_of(value) == engine):
                return _Source(var, value, None, session_class=sorted(classes)[0])
        return None

    def _async_dependency(self, fn: cst.FunctionDef, source: _Source, factory: str, scoped: bool) -> cst.FunctionDef:
        plan = self.plan
        session_module, session_name = self._session_class()
        self._import(session_module, session_name)
        self._import("collections.abc", "AsyncIterator")
        body = self._translated_body(fn, source, factory, scoped)
        if body is None:
            if scoped:
                template = (f"session = {factory}()\ntry:\n    yield session\nfinally:\n    await {factory}.remove()\n")
            else:
                template = f"async with {factory}() as session:\n    yield session\n"
            body = cst.parse_module(template).body
        returns = cst.Annotation(expr(f"AsyncIterator[{session_name}]"))
        return fn.with_changes(
            name=cst.Name(plan.async_dependency),
            asynchronous=cst.Asynchronous(),
            returns=returns,
            body=cst.IndentedBlock(body=list(body)),
            leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
            whitespace_before_colon=cst.SimpleWhitespace(""),
        )

    def _translated_body(
        self, fn: cst.FunctionDef, source: _Source, factory: str, scoped: bool
    ) -> Optional[Sequence[cst.BaseStatement]]:
        """None for the plain open/yield/close shapes (the canonical body is used); else the body, awaited."""
        statements = list(fn.body.body)
        if statements and m.matches(statements[0], m.SimpleStatementLine([m.Expr(m.SimpleString())])):
            statements = statements[1:]
        src = cst.Module(body=[]).code_for_node(source.call)
        var = source.var
        plain = [
            f"{var} = {src}\ntry:\n    yield {var}\nfinally:\n    {var}.close()\n",
            f"try:\n    {var} = {src}\n    yield {var}\nfinally:\n    {var}.close()\n",
            f"with {src} as {var}:\n    yield {var}\n",
        ]
        actual = ast.dump(ast.parse(cst.Module(body=statements).code))
        opens_plainly = source.factory is None or m.matches(source.call, m.Call(func=m.Name(), args=[]))
        if opens_plainly and any(actual == ast.dump(ast.parse(t)) for t in plain):
            return None
        translator = _AwaitSession(var, source, factory)
        new = [s.visit(translator) for s in statements]
        if translator.unsupported is not None:
            self._say(translator.unsupported, f"{fn.name.value}() does more with the session than opening, "
                                              f"committing and closing it; {self.plan.async_dependency} only "
                                              "opens and closes one")
            return None
        return new  # type: ignore[return-value]


class _AwaitSession(cst.CSTTransformer):
    """Mirror a sync dependency body on the async factory: coroutine session methods awaited, ``with`` async."""

    def __init__(self, var: str, source: _Source, factory: str) -> None:
        super().__init__()
        self.var, self.source, self.factory = var, source, factory
        self.unsupported: Optional[cst.CSTNode] = None
        self._allowed: set[int] = set()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.unsupported = self.unsupported or node
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        self.unsupported = self.unsupported or node
        return False

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if m.matches(node.value, m.Name(self.var)):
            attr = node.attr.value
            if attr in facts.ASYNC_SESSION_COROUTINES | facts.ASYNC_SESSION_SYNC_METHODS | _SESSION_PROPERTIES:
                self._allowed.add(id(node.value))

    def visit_Yield(self, node: cst.Yield) -> None:
        if node.value is not None:
            self._allowed.add(id(node.value))

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._allowed.add(id(node.target))

    def visit_AsName(self, node: cst.AsName) -> None:
        self._allowed.add(id(node.name))

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.var and id(node) not in self._allowed:
            self.unsupported = self.unsupported or node

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = updated.func
        if original is self.source.call and self.source.factory is None:  # Session(engine)
            return cst.Call(func=cst.Name(self.factory))
        if isinstance(func, cst.Name) and func.value == self.source.factory:
            return updated.with_changes(func=cst.Name(self.factory))
        if isinstance(func, cst.Attribute) and m.matches(func.value, m.Name(self.source.factory or "")):
            if func.attr.value == "begin":
                return updated.with_changes(func=func.with_changes(value=cst.Name(self.factory)))
            if func.attr.value == "remove":
                return cst.Await(updated.with_changes(func=func.with_changes(value=cst.Name(self.factory))))
        if isinstance(func, cst.Attribute) and m.matches(func.value, m.Name(self.var)):
            if func.attr.value in facts.ASYNC_SESSION_COROUTINES:
                return cst.Await(updated)
        return updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        if isinstance(updated.value, cst.Await):
            wrapped = updated.value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            return updated.with_changes(value=wrapped)
        return updated

    def leave_With(self, original: cst.With, updated: cst.With) -> cst.With:
        for item in original.items:
            call = item.item
            if call is self.source.call or (
                isinstance(call, cst.Call)
                and m.matches(call.func, m.Attribute(value=m.Name(self.source.factory or ""), attr=m.Name("begin")))
            ):
                return updated.with_changes(asynchronous=cst.Asynchronous())
        return updated


# --------------------------------------------------------------------------------------------------
# Pure functions on syntax.
# --------------------------------------------------------------------------------------------------


def _bind_of(call: cst.Call) -> Optional[str]:
    """The engine a ``sessionmaker(...)`` / ``Session(...)`` binds, as dotted text."""
    for i, arg in enumerate(call.args):
        if (arg.keyword is None and i == 0 and not arg.star) or (arg.keyword and arg.keyword.value == "bind"):
            return dotted(arg.value)
    return None


def _first_arg_is(call: cst.BaseExpression, name: str) -> bool:
    if not isinstance(call, cst.Call) or not call.args or call.args[0].keyword is not None:
        return False
    return dotted(call.args[0].value) == name


def _with_first_arg(call: cst.Call, value: cst.BaseExpression) -> cst.Call:
    return call.with_changes(args=[call.args[0].with_changes(value=value), *call.args[1:]])


def _is_generator(fn: cst.FunctionDef) -> bool:
    class _Yields(cst.CSTVisitor):
        found = False

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is fn

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

        def visit_Yield(self, node: cst.Yield) -> None:
            self.found = True

    v = _Yields()
    fn.visit(v)
    return v.found


def _assigned(binders: list[cst.CSTNode]) -> bool:
    return any(isinstance(b, (cst.Assign, cst.AnnAssign)) for b in binders)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] + "://" if "://" in url else url[:20]


def _sqlite_memory(url: str) -> bool:
    parsed = facts.url_driver(url)
    if parsed is None or parsed[0] != "sqlite":
        return False
    database = url.split("://", 1)[1].lstrip("/").split("?", 1)[0]
    return database in facts.SQLITE_MEMORY_DATABASES


def _string_like(node: cst.BaseExpression, old: str, new: str) -> cst.BaseExpression:
    """A literal for ``new``, in the quotes and prefix of ``node`` when the URL's head is spelled plainly."""
    if isinstance(node, cst.SimpleString):
        raw = node.value[len(node.prefix) + len(node.quote): -len(node.quote)]
        for sync_prefix, async_prefix in facts.ASYNC_DRIVER_FOR_URL:
            if old.startswith(sync_prefix) and raw.startswith(sync_prefix) and new.startswith(async_prefix):
                return node.with_changes(
                    value=node.prefix + node.quote + async_prefix + raw[len(sync_prefix):] + node.quote
                )
    return cst.SimpleString('"' + new.replace("\\", "\\\\").replace('"', '\\"') + '"')


def _rename_helper(line: cst.SimpleStatementLine, name: str) -> cst.SimpleStatementLine:
    if name == _URL_HELPER:
        return line

    class _Rename(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
            return updated.with_changes(value=name) if updated.value == _URL_HELPER else updated

    result = line.visit(_Rename())
    assert isinstance(result, cst.SimpleStatementLine)
    return result


def run_on_source(code: str, plan: FilePlan) -> tuple[str, list[str]]:
    """Rewrite one module's source; returns ``(new code, warnings)``."""
    package = plan.module.rpartition(".")[0] if plan.module else None
    context = CodemodContext(scratch={"plan": plan}, full_module_name=plan.module or None, full_package_name=package)
    new = EngineToAsync(context).transform_module(cst.parse_module(code))
    return new.code, list(context.warnings)
