"""Shared pieces of every rewrite: the per-file plan and a scope-tracking transformer.

A codemod never decides on its own what a session is or which functions
become async: the project pass (``analysis/``) decides once, for the whole
tree, and hands each file a :class:`FilePlan` through
``context.scratch["plan"]``.  Codemods only change syntax, schedule imports
with ``AddImportsVisitor`` and report what they leave alone with
``self.warn(...)``; they never print.

Scope names follow ``analysis/index.py``: ``"<module>"`` at module level,
``"func"``, ``"Class.method"``, ``"outer.<locals>.inner"``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import FrozenSet, Iterator, Mapping, Optional, Sequence, Tuple

import libcst as cst
from libcst.codemod import CodemodContext, ContextAwareTransformer
from libcst.metadata import MetadataWrapper

MODULE_SCOPE = "<module>"


@dataclass(frozen=True)
class FilePlan:
    """What the project pass decided for one file."""

    module: str = ""
    #: scope qualname -> receivers (dotted source text: "db", "self.db", "self.session") that are SYNC sessions
    #: which this migration turns into AsyncSession
    sessions: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: scope qualnames whose ``def`` becomes ``async def`` (project functions that now await)
    make_async: FrozenSet[str] = frozenset()
    #: scope qualname -> dotted callee texts whose calls must be awaited there ("helper", "self.sync", "svc.run")
    await_calls: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: scope qualname -> dotted callee texts to wrap as ``asyncio.run(...)`` (sync entry points)
    run_calls: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: scope qualname -> callee texts of ``with f(...)`` context managers that become ``async with``
    async_with_calls: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: ``@contextmanager`` generators that become ``@asynccontextmanager async def``
    acm: FrozenSet[str] = frozenset()
    #: names of the async counterparts, as the ``database`` rewrite creates them
    async_engine: str = "async_engine"
    async_session_factory: str = "AsyncSessionLocal"
    async_dependency: str = "get_async_db"
    #: module that defines the async session factory and dependency (for imports), e.g. "app.database"
    database_module: Optional[str] = None
    #: sync session factory names known in this project (``SessionLocal``), as used in this file
    sync_factories: FrozenSet[str] = frozenset()
    #: sync session dependency names (``get_db``), as used in this file
    sync_dependencies: FrozenSet[str] = frozenset()
    #: relationships to load eagerly (``lazy="selectin"``): class qualname in this file -> attribute names
    relationships: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: route scope -> its session receiver: the response model is built inside ``await db.run_sync(...)``
    serialize: Mapping[str, str] = field(default_factory=dict)
    #: SQLModel project: ``select`` must come from ``sqlmodel`` (SQLALCHEMY_ASYNC.md §6)
    sqlmodel: bool = False
    #: sync engine references (dotted source text: "engine", "database.engine") as used in this file; when
    #: empty, the ``database`` rewrites fall back to evidence in the file (``create_engine`` results, names
    #: imported from ``database_module`` and used as an engine)
    sync_engines: FrozenSet[str] = frozenset()
    #: test code (``migration.is_test_file``): nothing in it becomes async and its sync engine stays; the
    #: ``database`` rewrite names its twins after the file's own sync names, the ``tests`` rewrite twins its
    #: dependency overrides and patches of the app's sync names
    test_module: bool = False
    #: the app's sync database names -> their async twins, e.g. {"get_db": "get_async_db", "SessionLocal":
    #: "AsyncSessionLocal", "engine": "async_engine"} (engine, session factories, session dependencies)
    app_twins: Mapping[str, str] = field(default_factory=dict)
    #: module-level names in this file bound to a sync engine by a project helper (``engine =
    #: make_engine(url)``, ``create_engine`` inside it): the ``database`` rewrite derives their async twin from
    #: the sync engine's URL at run time
    derived_engines: FrozenSet[str] = frozenset()
    #: the project is written for pydantic 1 (``migration.pydantic_v1``): responses are validated with
    #: ``parse_obj_as`` (pydantic 2's ``TypeAdapter`` does not exist there)
    pydantic_v1: bool = False
    #: comparisons to cast database-side for asyncpg (``driver_casts``): (line, 1-based column) of the
    #: comparison in the ORIGINAL file -> the side holding the ``str`` value ("left" / "right")
    driver_casts: Mapping[Tuple[int, int], str] = field(default_factory=dict)
    #: scope qualname -> receivers (dotted source text) of ANY session or connection, converted or staying sync,
    #: whose plain-string SQL SQLAlchemy 2.0 refuses (``analysis/legacy_api.py``): ``textual_sql`` wraps it in
    #: ``text()``, which 1.4 accepts as well
    sql_receivers: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: scope qualname -> callee texts (``select``, ``sa.case``) that are SQLAlchemy's ``select``/``case`` there and
    #: are given a list (``list_arguments``: ``select([a, b])`` -> ``select(a, b)``)
    list_arg_callees: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: the thread-pool bridge (``bridge.py``): coroutines that become ``def`` (``demote_to_def``)
    demote: FrozenSet[str] = frozenset()
    #: coroutine qualname -> lines of its blocking calls, moved into ``run_in_threadpool`` (``offload_to_threadpool``)
    offload: Mapping[str, FrozenSet[int]] = field(default_factory=dict)
    #: what runs offloaded code: ``"starlette"`` (``run_in_threadpool``), ``"asyncio"`` (``asyncio.to_thread``) or
    #: ``"bridge:<module>"`` (``run_in_db_thread`` of the generated bridge module)
    thread_runner: str = "starlette"
    #: names other project modules take from this one (``tidy_imports.imported_by_others``): an import the
    #: rewrite made unused here stays when one of them needs it
    imported_by_others: FrozenSet[str] = frozenset()
    #: the project's isort/Ruff/Black settings (``tidy_imports.ImportStyle``); None: Ruff's defaults
    import_style: Optional[object] = None

    def is_session(self, scope: str, dotted_text: Optional[str]) -> bool:
        if dotted_text is None:
            return False
        return dotted_text in self.sessions.get(scope, frozenset())

    def takes_text(self, scope: str, dotted_text: Optional[str]) -> bool:
        """Whether plain-string SQL given to ``dotted_text`` in ``scope`` is wrapped in ``text()``: a converted
        session, or any receiver ``sql_receivers`` lists."""
        return dotted_text is not None and (self.is_session(scope, dotted_text)
                                            or dotted_text in self.sql_receivers.get(scope, frozenset()))


def plan_of(context: CodemodContext) -> FilePlan:
    plan = context.scratch.get("plan")
    return plan if isinstance(plan, FilePlan) else FilePlan()


def dotted(node: cst.BaseExpression) -> Optional[str]:
    """``a.b.c`` for Name/Attribute chains, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


class ScopedTransformer(ContextAwareTransformer):
    """A transformer that knows the qualified name of the scope it is in."""

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._scope: list[tuple[str, str]] = []  # (kind, name)

    @contextmanager
    def _handle_metadata_reference(self, module: cst.Module) -> Iterator[cst.Module]:
        """libcst deep-copies the module for every codemod so that metadata can be keyed by node identity; a
        rewrite that declares no metadata needs no copy (it still gets ``context.module``)."""
        if self.get_inherited_dependencies():
            with super()._handle_metadata_reference(module) as tree:
                yield tree
            return
        old = self.context.wrapper
        self.context = replace(self.context, wrapper=MetadataWrapper(module, unsafe_skip_copy=True))
        try:
            yield module
        finally:
            self.context = replace(self.context, wrapper=old)

    @property
    def plan(self) -> FilePlan:
        return plan_of(self.context)

    @staticmethod
    def _qualname(frames: Sequence[tuple[str, str]]) -> str:
        if not frames:
            return MODULE_SCOPE
        parts: list[str] = []
        for i, (kind, name) in enumerate(frames):
            parts.append(name)
            if kind == "def" and i + 1 < len(frames):
                parts.append("<locals>")
        return ".".join(parts)

    @property
    def scope(self) -> str:
        """Qualified name of the innermost scope (class or function)."""
        return self._qualname(self._scope)

    @property
    def in_function(self) -> bool:
        return any(kind == "def" for kind, _ in self._scope)

    @property
    def function_scope(self) -> str:
        """Qualified name of the innermost enclosing *function*, or ``<module>``."""
        for i in range(len(self._scope) - 1, -1, -1):
            if self._scope[i][0] == "def":
                return self._qualname(self._scope[: i + 1])
        return MODULE_SCOPE

    def visit_ClassDef(self, node: cst.ClassDef) -> Optional[bool]:
        self._scope.append(("class", node.name.value))
        return True

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.BaseStatement:
        self._scope.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> Optional[bool]:
        self._scope.append(("def", node.name.value))
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        self._scope.pop()
        return updated_node


def parenthesize(node: cst.BaseExpression) -> cst.BaseExpression:
    """Wrap ``node`` in parentheses (for ``(await x).attr``)."""
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def await_(node: cst.BaseExpression) -> cst.Await:
    return cst.Await(expression=node)


def awaited_then(node: cst.BaseExpression) -> cst.BaseExpression:
    """``(await node)``, ready to have attributes chained on it."""
    return parenthesize(cst.Await(expression=node))


def names_of(items: Sequence[str]) -> FrozenSet[str]:
    return frozenset(items)


def callee_text(node: cst.BaseExpression) -> Optional[str]:
    """The callee text the planner uses (``migration.expr_text``): ``a.b``, ``Repo().names``."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = callee_text(node.value)
        return f"{base}.{node.attr.value}" if base is not None else None
    if isinstance(node, cst.Call):
        base = callee_text(node.func)
        return f"{base}()" if base is not None else None
    return None


def replace_last_name(node: cst.BaseExpression, new: str) -> cst.BaseExpression:
    """``SessionLocal`` -> ``AsyncSessionLocal``; ``database.SessionLocal`` -> ``database.AsyncSessionLocal``."""
    if isinstance(node, cst.Name):
        return node.with_changes(value=new)
    if isinstance(node, cst.Attribute):
        return node.with_changes(attr=node.attr.with_changes(value=new))
    return node


class AwaitAware(ScopedTransformer):
    """Knows which calls are already awaited, and which functions are (or become) coroutines."""

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._awaited: set[int] = set()
        self._async_stack: list[bool] = []
        self._no_await_depth = 0  # inside lambda / generator expression: ``await`` is not allowed there

    def visit_Await(self, node: cst.Await) -> Optional[bool]:
        self._awaited.add(id(node.expression))
        return True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> Optional[bool]:
        super().visit_FunctionDef(node)
        self._async_stack.append(node.asynchronous is not None or self.scope in self.plan.make_async)
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        self._async_stack.pop()
        return super().leave_FunctionDef(original_node, updated_node)

    def visit_Lambda(self, node: cst.Lambda) -> Optional[bool]:
        self._no_await_depth += 1
        return True

    def leave_Lambda(self, original_node: cst.Lambda, updated_node: cst.Lambda) -> cst.BaseExpression:
        self._no_await_depth -= 1
        return updated_node

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> Optional[bool]:
        self._no_await_depth += 1
        return True

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp, updated_node: cst.GeneratorExp) -> cst.BaseExpression:
        self._no_await_depth -= 1
        return updated_node

    @property
    def can_await(self) -> bool:
        """An ``await`` here is valid: we are in a coroutine (or one-to-be), not in a lambda/genexp."""
        return bool(self._async_stack) and self._async_stack[-1] and self._no_await_depth == 0

    def is_awaited(self, original: cst.CSTNode) -> bool:
        return id(original) in self._awaited


class ParenthesizeAwaits(cst.CSTTransformer):
    """``await x.y`` means ``await (x.y)``: an awaited call with something chained on it needs parentheses.

    Runs last, after every rewrite, so each codemod can produce ``Await`` nodes freely.
    """

    @staticmethod
    def _wrap(node: cst.BaseExpression) -> cst.BaseExpression:
        if isinstance(node, cst.Await) and not node.lpar:
            return parenthesize(node)
        return node

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        return updated_node.with_changes(value=self._wrap(updated_node.value))

    def leave_Subscript(self, original_node: cst.Subscript, updated_node: cst.Subscript) -> cst.BaseExpression:
        return updated_node.with_changes(value=self._wrap(updated_node.value))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return updated_node.with_changes(func=self._wrap(updated_node.func))

    def leave_Await(self, original_node: cst.Await, updated_node: cst.Await) -> cst.BaseExpression:
        # ``await await x`` is invalid; ``await (await x)`` is what a double wrap means
        return updated_node.with_changes(expression=self._wrap(updated_node.expression))


class MergeScheduledImports(cst.CSTTransformer):
    """Put scheduled ``from M import N`` imports into an existing top-level ``from M import ...``.

    libcst's ``AddImportsVisitor`` only looks at the leading import block, so a script that imports its
    package after ``sys.path.insert(...)`` would get the new import above that line, where it fails.
    Merging into the statement that already imports from ``M`` keeps the file's own order (and
    relative spelling); what cannot be merged is left to ``AddImportsVisitor``.

    A twin (``get_async_db``) is defined beside its sync name (``get_db``) by the ``database`` rewrite, so it
    also goes into the statement that imports that sync name when the statement is relative and names
    ``M`` by its last parts (``from ..database import get_db`` for ``app.database``, or for ``database``
    when the file's directory has no ``__init__.py`` and the file is named as a top-level module): the
    spelling that already resolves for the sync name resolves for its twin, where an absolute
    ``from database import get_async_db`` would raise ``ModuleNotFoundError`` (issue 9, class 1).
    """

    def __init__(self, items: Sequence, module_name: str = "",
                 siblings: Optional[Mapping[str, FrozenSet[str]]] = None) -> None:
        super().__init__()
        self.pending = {(i.module_name, i.obj_name) for i in items if i.obj_name and not i.alias and not i.relative}
        self.module_name = module_name
        self.siblings = siblings or {}  # twin name -> the sync names it is defined beside
        self.merged: set[tuple[str, str]] = set()
        self._depth = 0

    def _sibling_wanted(self, node: cst.ImportFrom, have: set[str]) -> set[tuple[str, str]]:
        """Pending twins whose sync name this relative import brings in from a module that ends like theirs."""
        if not node.relative or node.module is None:
            return set()
        tail = dotted(node.module)
        if tail is None:
            return set()
        return {(mod, name) for (mod, name) in self.pending
                if (mod == tail or mod.endswith("." + tail)) and self.siblings.get(name, frozenset()) & have}

    def _absolute(self, node: cst.ImportFrom) -> Optional[str]:
        mod = dotted(node.module) if node.module is not None else ""
        if not node.relative:
            return mod
        parts = self.module_name.split(".")
        level = len(node.relative)
        if level > len(parts):
            return None
        base = parts[: len(parts) - level]
        return ".".join([*base, *([mod] if mod else [])])

    def visit_FunctionDef(self, node: cst.FunctionDef) -> Optional[bool]:
        return False  # only module-level imports

    def visit_ClassDef(self, node: cst.ClassDef) -> Optional[bool]:
        return False

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if isinstance(updated_node.names, cst.ImportStar):
            return updated_node
        module = self._absolute(updated_node)
        have = {a.name.value for a in updated_node.names if isinstance(a.name, cst.Name)}
        plain = {a.name.value for a in updated_node.names if isinstance(a.name, cst.Name) and a.asname is None}
        wanted = sorted({(m, n) for (m, n) in self.pending if m == module} | self._sibling_wanted(updated_node, plain))
        wanted = [(m, n) for (m, n) in wanted if (m, n) not in self.merged]
        if not wanted:
            return updated_node
        names = list(updated_node.names)
        for module, n in wanted:
            self.merged.add((module, n))
            if n in have:
                continue
            last = names[-1]
            if last.comma == cst.MaybeSentinel.DEFAULT:
                names[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            names.append(cst.ImportAlias(name=cst.Name(n)))
        return updated_node.with_changes(names=names)


def twin_siblings(plan: FilePlan) -> dict[str, FrozenSet[str]]:
    """The async twins the rewrites import -> the sync names (last part, as this file uses them) each is
    defined beside in the database module."""
    pairs = [(plan.async_dependency, plan.sync_dependencies), (plan.async_session_factory, plan.sync_factories),
             (plan.async_engine, plan.sync_engines)]
    out: dict[str, set[str]] = {}
    for twin, names in pairs:
        out.setdefault(twin, set()).update(n.rsplit(".", 1)[-1] for n in names)
    for sync, twin in plan.app_twins.items():
        out.setdefault(twin, set()).add(sync)
    return {twin: frozenset(names) for twin, names in out.items() if names}


def merge_scheduled_imports(module: cst.Module, context: CodemodContext, module_name: str) -> cst.Module:
    from libcst.codemod.visitors import AddImportsVisitor

    items = context.scratch.get(AddImportsVisitor.CONTEXT_KEY, [])
    if not items:
        return module
    merger = MergeScheduledImports(items, module_name, twin_siblings(plan_of(context)))
    module = module.visit(merger)
    context.scratch[AddImportsVisitor.CONTEXT_KEY] = [
        i for i in items if (i.module_name, i.obj_name) not in merger.merged
    ]
    return module


def names_bound_by(node: cst.CSTNode) -> set[str]:
    """Names a node binds: targets of assignments, ``for``, ``with ... as``, walrus, ``del``, ``global``,
    imports, definitions and ``except ... as`` (not parameters or comprehension targets)."""
    targets: list[cst.CSTNode] = []
    if isinstance(node, cst.Assign):
        targets = [t.target for t in node.targets]
    elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, cst.For):
        targets = [node.target]
    elif isinstance(node, cst.WithItem) and node.asname is not None:
        targets = [node.asname.name]
    elif isinstance(node, cst.NamedExpr):
        targets = [node.target]
    elif isinstance(node, (cst.Global, cst.Nonlocal)):
        return {n.name.value for n in node.names}
    elif isinstance(node, cst.Del):
        targets = [node.target]
    elif isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(node.names, cst.ImportStar):
        return {(a.evaluated_alias or a.evaluated_name).split(".")[0] for a in node.names}
    elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        return {node.name.value}
    elif isinstance(node, cst.ExceptHandler) and node.name is not None:
        targets = [node.name.name]
    out: set[str] = set()
    for t in targets:
        out |= {n.value for n in names_in(t)}
    return out


def names_in(node: cst.CSTNode) -> list[cst.Name]:
    if isinstance(node, cst.Name):
        return [node]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for e in node.elements for n in names_in(e.value)]
    if isinstance(node, cst.StarredElement):
        return names_in(node.value)
    return []
