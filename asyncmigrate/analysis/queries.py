"""What a function's queries run and give back: statements, loader options, entities from awaited calls.

Used by the post-migration rules (ASM203, ASM204) with ``analysis/orm.py``.

* **Statements** (:func:`statement_of`): what a session call executes: the
  entity of the ``select(...)`` and the relationships its loader options
  (``selectinload``, ``joinedload``...) name.  The statement is read where it
  is visible: inline, or through the assignments of a local name in the same
  function.  Anything else (a statement from a helper, a module constant,
  ``.options(*LOADS)``) makes it *opaque*.
* **Query results** (:class:`FunctionFlow`): which local names hold an entity,
  or an iterable of entities, that came out of an ``await``-ed session call,
  following ``.scalars()``, ``.unique()``, ``.first()``... and ``for`` loops.

A statement's calls are found by position: the calls inside a session call's
span, or inside the value span of a name's :class:`~asyncmigrate.model.Binding`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from .. import facts
from ..model import Binding, CallSite, Expr, Span
from .orm import ORM_PACKAGES, calls_within, is_orm_name
from .sessions import Fn, Project

#: loader option functions, by last name segment (``selectinload``, ``joinedload``, ``Load(...).selectinload``...)
LOADER_NAMES = frozenset(q.rsplit(".", 1)[-1] for q in facts.EAGER_OPTIONS)
JOINED_LOADER = "joinedload"
#: statement constructors whose results are not entities (bulk DML, textual SQL)
NON_ENTITY_STATEMENTS = frozenset({"update", "delete", "insert", "text"})


@dataclass(frozen=True)
class Statement:
    """What a session call executes, as far as this function shows it."""

    #: class ids of the first entity of each root ``select(...)``; ``None`` in it: a root that is not a class
    entities: frozenset = frozenset()
    #: relationship names named by a loader option (``selectinload(User.orders)`` -> "orders")
    loaded: frozenset[str] = frozenset()
    #: ``joinedload`` targets: (class id of the attribute's class, or None, relationship name)
    joined: tuple[tuple[Optional[str], str], ...] = ()
    #: part of the statement cannot be seen (built elsewhere, options we cannot read)
    opaque: bool = False

    @property
    def entity(self) -> Optional[str]:
        """The one entity class selected, or None."""
        if len(self.entities) == 1:
            (only,) = tuple(self.entities)
            return only
        return None


def _root(expr: Expr) -> Optional[tuple[str, object]]:
    """Where a ``select(...).where(...)`` chain starts: ("call", func) or ("name", n)."""
    depth = 0
    while expr is not None and depth < 64:
        depth += 1
        if expr[0] == "n":
            return ("name", expr[1])
        if expr[0] != "c":
            return None
        func = expr[1]
        if func and func[0] == "a" and func[1] is not None and func[1][0] in ("c", "n"):
            expr = func[1]
            continue
        return ("call", func)
    return None


def _is_select(project: Project, func: Expr, fid: str) -> bool:
    v = project.value(func, fid)
    return bool(v and v[0] == "ext" and v[1].rsplit(".", 1)[-1] == "select" and v[1].startswith(ORM_PACKAGES))


def _loader(project: Project, func: Expr, fid: str) -> Optional[str]:
    """The loader option a call makes (``joinedload``...), or None."""
    if func is None:
        return None
    if func[0] == "a" and func[1] is not None and func[1][0] == "c" and func[2] in LOADER_NAMES:
        return func[2]  # chained: ``selectinload(A.b).joinedload(B.c)``, ``Load(A).selectinload(A.b)``
    v = project.value(func, fid)
    if is_orm_name(v, LOADER_NAMES):
        return v[1].rsplit(".", 1)[-1]
    return None


def _loader_expr(project: Project, expr: Expr, fid: str) -> bool:
    return bool(expr and expr[0] == "c" and _loader(project, expr[1], fid))


class _StatementBuilder:
    def __init__(self, project: Project, fid: str):
        self.project = project
        self.fid = fid
        self.fn = project.functions[fid]
        self.entities: set = set()
        self.loaded: set[str] = set()
        self.joined: list[tuple[Optional[str], str]] = []
        self.opaque = False
        self._names: set[str] = set()

    def expression(self, value: Expr, inside: list[CallSite], line: int) -> None:
        """One expression that builds (part of) the statement; ``inside``: its calls."""
        root = _root(value)
        if root is None:
            self.opaque = True
        elif root[0] == "call":
            first = next((c for c in inside if c.func == root[1]), None)
            if first is not None and is_orm_name(self.project.value(root[1], self.fid), NON_ENTITY_STATEMENTS):
                self.entities.add(None)  # ``update(User)...``, ``text(...)``: loads no entities
            elif first is None or not _is_select(self.project, root[1], self.fid):
                self.opaque = True  # ``build_query()``, ``union(...)``: not read
            else:
                entity = first.args[0] if first.args else None
                v = self.project.value(entity, self.fid) if entity is not None else None
                self.entities.add(v[1] if v and v[0] == "class" else None)
        else:
            self.name(root[1], line)  # type: ignore[arg-type]
        self.loaders(inside)

    def name(self, name: str, line: int) -> None:
        """A statement held by a local name: every assignment of it before ``line`` (branches included)."""
        if name in self._names:
            return  # ``stmt = stmt.where(...)``: its earlier assignments are read already
        self._names.add(name)
        parts = bindings_before(self.fn, name, line)
        if not parts:
            self.opaque = True  # a parameter, a global, a name bound some other way
        for b in parts:
            self.expression(b.value, calls_within(self.fn.summary.calls, b.value_span), b.value_span.line)

    def loaders(self, inside: list[CallSite]) -> None:
        for c in inside:
            if c.func and c.func[0] == "a" and c.func[2] == "options":
                if not c.args or not all(_loader_expr(self.project, a, self.fid) for a in c.args):
                    self.opaque = True  # ``.options(*LOADS)``, ``.options(opts)``: cannot see what loads
            kind = _loader(self.project, c.func, self.fid)
            if kind is None:
                continue
            for arg in c.args:
                if arg is None:
                    self.opaque = True  # ``selectinload("*")`` and the like
                    continue
                if arg[0] == "a":
                    rel = arg[2]
                    v = self.project.value(arg[1], self.fid)
                    owner = v[1] if v and v[0] == "class" else None
                elif arg[0] == "n":
                    rel, owner = arg[1], None  # a legacy string path
                else:
                    self.opaque = True
                    continue
                self.loaded.add(rel)
                if kind == JOINED_LOADER and self._joined_from_root(c.func):
                    self.joined.append((owner, rel))

    def _joined_from_root(self, func: Expr) -> bool:
        """Every earlier link of the loader chain is joined too: ``joinedload(A.b).joinedload(B.c)``.

        After a ``selectinload``/``defaultload`` link the join happens in that link's own query, so the
        main result needs no ``unique()`` (checked on SQLAlchemy 2.1.9).
        """
        while func is not None and func[0] == "a" and func[1] is not None and func[1][0] == "c":
            func = func[1][1]  # the previous link's callee
            if func is not None and func[0] == "a" and func[1] is not None and func[1][0] == "c":
                if func[2] != JOINED_LOADER:
                    return False
                continue
            v = self.project.value(func, self.fid)
            return bool(is_orm_name(v, (JOINED_LOADER, "Load")))
        return True

    def build(self) -> Statement:
        return Statement(frozenset(self.entities), frozenset(self.loaded), tuple(self.joined), self.opaque)


def bindings_before(fn: Fn, name: str, line: int, kinds=("assign",)) -> list[Binding]:
    return [b for b in fn.summary.bindings if b.name == name and b.kind in kinds and b.value_span.end_line < line]


def statement_of(project: Project, fid: str, call: CallSite) -> Statement:
    """The statement a session call (``execute``, ``scalars``, ``scalar``, ``get``...) runs."""
    sb = _StatementBuilder(project, fid)
    inside = [c for c in calls_within(sb.fn.summary.calls, call.span) if c is not call]
    method = call.func[2] if call.func and call.func[0] == "a" else None
    if method in ("get", "get_one"):
        entity = call.args[0] if call.args else None
        v = project.value(entity, fid) if entity is not None else None
        sb.entities.add(v[1] if v and v[0] == "class" else None)
        options = dict(call.kwargs)
        if "options" in options:
            if options["options"] is not None or not any(_loader(project, c.func, fid) for c in inside):
                sb.opaque = True  # ``options=opts``: a list built elsewhere
            sb.loaders(inside)
        if call.star_kwargs:
            sb.opaque = True
        return sb.build()
    stmt = call.args[0] if call.args else dict(call.kwargs).get("statement")
    if stmt is None:
        return Statement(opaque=True)
    sb.expression(stmt, inside, call.span.line)
    return sb.build()


# ====================================================================== query results
#: what a result method gives: (kind of the receiver, method) -> kind of the value
_RESULT_STEPS = {
    ("result", "scalars"): "entities",
    ("result", "unique"): "result",
    ("result", "scalar"): "entity",
    ("result", "scalar_one"): "entity",
    ("result", "scalar_one_or_none"): "entity",
    ("entities", "unique"): "entities",
    ("entities", "first"): "entity",
    ("entities", "one"): "entity",
    ("entities", "one_or_none"): "entity",
    ("entities", "all"): "entities",
    ("entities", "fetchall"): "entities",
}
#: session coroutine -> kind of its awaited value
_SESSION_RESULTS = {"get": "entity", "get_one": "entity", "scalar": "entity", "scalars": "entities",
                    "execute": "result"}


@dataclass(frozen=True)
class Loaded:
    """A value that came out of an awaited session call."""

    kind: str  # "entity", "entities" (iterable of entities) or "result" (rows)
    call: CallSite  # the awaited session call
    methods: tuple[str, ...] = ()  # result methods applied since


@dataclass
class FunctionFlow:
    """Values from awaited session calls, through local names, in one function."""

    project: Project
    fid: str
    #: is this receiver expression an AsyncSession?  (the rule decides what evidence it accepts)
    is_async_session: Callable[[Expr], bool]
    _memo: dict = field(default_factory=dict)

    @property
    def fn(self) -> Fn:
        return self.project.functions[self.fid]

    def binding_at(self, name: str, line: int) -> Optional[Binding]:
        """The binding of ``name`` that a read on ``line`` sees (by position; branches are not followed)."""
        best: Optional[Binding] = None
        best_comp: Optional[Binding] = None
        for b in self.fn.summary.bindings:
            if b.name != name:
                continue
            if b.kind == "comp":
                if b.scope is not None and b.scope.line <= line <= b.scope.end_line:
                    if best_comp is None or (b.scope.line, b.scope.column) >= (best_comp.scope.line, best_comp.scope.column):  # type: ignore[union-attr]
                        best_comp = b
                continue
            if b.kind == "for":
                if not (b.scope is not None and b.value_span.end_line < line <= b.scope.end_line):
                    continue
            elif not b.value_span.end_line < line:
                continue
            if best is None or b.value_span.line >= best.value_span.line:
                best = b
        return best_comp or best

    def _session_call(self, func: Expr, span: Span) -> Optional[CallSite]:
        for c in calls_within(self.fn.summary.calls, span):
            if c.func == func and c.awaited:
                return c
        return None

    def value(self, expr: Expr, span: Span, line: int, depth: int = 0) -> Optional[Loaded]:
        """What ``expr`` (found inside ``span``, evaluated on ``line``) holds, when it comes from a session call."""
        if expr is None or depth > 8:
            return None
        kind = expr[0]
        if kind == "aw":
            inner = expr[1]
            if inner and inner[0] == "c" and inner[1] and inner[1][0] == "a":
                func = inner[1]
                result = _SESSION_RESULTS.get(func[2])
                if result is None or not self.is_async_session(func[1]):
                    return None
                call = self._session_call(func, span)
                return Loaded(result, call) if call is not None else None
            return None
        if kind == "c" and expr[1] and expr[1][0] == "a":
            base = self.value(expr[1][1], span, line, depth + 1)
            if base is None:
                return None
            step = _RESULT_STEPS.get((base.kind, expr[1][2]))
            return Loaded(step, base.call, base.methods + (expr[1][2],)) if step else None
        if kind == "n":
            b = self.binding_at(expr[1], line)
            if b is None or b.kind != "assign":
                return None
            return self.value(b.value, b.value_span, b.value_span.line, depth + 1)
        return None

    def bound(self, b: Binding) -> Optional[Loaded]:
        """What a binding gives its name: ``for``/``comp`` over entities give one entity each."""
        key = id(b)
        if key in self._memo:
            return self._memo[key]
        v = self.value(b.value, b.value_span, b.value_span.line)
        if v is not None and b.kind in ("for", "comp"):
            v = Loaded("entity", v.call, v.methods + ("__iter__",)) if v.kind == "entities" else None
        elif v is not None and b.kind == "with":
            v = None
        self._memo[key] = v
        return v

    def reads(self) -> Iterator[tuple[str, str, int, Span]]:
        """``(name, attr, line, span)`` for every ``name.attr`` read in the function."""
        s = self.fn.summary
        spans = s.attribute_read_spans
        for i, (name, attr, line) in enumerate(s.attribute_reads):
            span = spans[i] if i < len(spans) else Span(line, 1, line, 1)
            yield name, attr, line, span
