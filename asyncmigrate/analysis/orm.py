"""What the ORM side of the project looks like: mapped classes, relationships, statements, query results.

Used by the eager-loading plan (``migration.py``) and the post-migration rules
(ASM203/ASM204).  Three layers, each built on the per-file summaries only:

* **Relationships** (:class:`OrmIndex`): every ``relationship(...)`` /
  SQLModel ``Relationship(...)`` attribute of a class, with its ``lazy=``
  literal and whether it is a collection.  A collection is only claimed on
  evidence: ``uselist=``, a ``Mapped[list[...]]``-style annotation,
  ``secondary=``, the direction of the ``ForeignKey`` between the two tables,
  or a ``back_populates`` partner that is known to be scalar.  Otherwise it is
  unknown, and rules that need it stay quiet.
* **Statements** (:func:`statement_of`): what a session call executes: the
  entity of the ``select(...)`` and the relationships its loader options
  (``selectinload``, ``joinedload``...) name.  The statement is read where it
  is visible: inline, or through the assignments of a local name in the same
  function.  Anything else (a statement from a helper, a module constant,
  ``.options(*LOADS)``) makes it *opaque*.
* **Query results** (:class:`FunctionFlow`): which local names hold an entity,
  or an iterable of entities, that came out of an ``await``-ed session call,
  following ``.scalars()``, ``.unique()``, ``.first()``... and ``for`` loops.

Positions link the layers: a class-body call and a statement's calls are
found by their spans (``ClassSummary.attribute_calls``, ``Binding.value_span``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from .. import facts
from ..model import Binding, CallSite, Expr, Span
from .index import MODULE_SCOPE
from .sessions import Fn, Project

# SQLAlchemy names this module matches (facts.py has the loader options; these are the rest).
#: ``relationship`` / SQLModel ``Relationship`` (last name segment, from a sqlalchemy / sqlmodel import)
RELATIONSHIP_FUNCTIONS = ("relationship", "Relationship")
_ORM_PACKAGES = ("sqlalchemy", "sqlmodel")
#: ``lazy=`` values that load the relationship together with its parent (``False`` is the legacy "joined")
EAGER_LAZY = frozenset({"selectin", "joined", "subquery", "immediate", False})
#: ``lazy=`` values that load on first attribute access (I/O, so MissingGreenlet under AsyncSession)
SELECT_LAZY = frozenset({"select", True})
#: loader option functions, by last name segment (``selectinload``, ``joinedload``, ``Load(...).selectinload``...)
LOADER_NAMES = frozenset(q.rsplit(".", 1)[-1] for q in facts.EAGER_OPTIONS)
JOINED_LOADER = "joinedload"
#: statement constructors whose results are not entities (bulk DML, textual SQL)
NON_ENTITY_STATEMENTS = frozenset({"update", "delete", "insert", "text"})
#: annotation containers that make a relationship a collection (``Mapped[list[X]]``, ``list["X"]`` in SQLModel)
COLLECTION_TYPES = frozenset({"list", "List", "set", "Set", "frozenset", "FrozenSet", "Collection", "Sequence",
                              "MutableSequence", "MutableSet", "Iterable", "dict", "Dict", "Mapping", "MutableMapping"})
_ANNOTATION_WRAPPERS = frozenset({"Mapped", "WriteOnlyMapped", "DynamicMapped"})

#: a ``lazy=`` that is present but not a literal
UNKNOWN_LAZY = object()
#: no ``lazy=`` at all (the default, ``"select"``)
DEFAULT_LAZY = "select"


def within(inner: Span, outer: Span) -> bool:
    return ((outer.line, outer.column) <= (inner.line, inner.column)
            and (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column))


def calls_within(calls: tuple[CallSite, ...], span: Span) -> list[CallSite]:
    """The calls of an expression (by position), in source order."""
    found = [c for c in calls if within(c.span, span)]
    found.sort(key=lambda c: (c.span.line, c.span.column, -c.span.end_line, -c.span.end_column))
    return found


def _last(expr: Expr) -> Optional[str]:
    if expr is None:
        return None
    if expr[0] == "n":
        return expr[1]
    if expr[0] == "a":
        return expr[2]
    return None


def _is_orm_name(v, names) -> bool:
    return bool(v and v[0] == "ext" and v[1].rsplit(".", 1)[-1] in names and v[1].startswith(_ORM_PACKAGES))


# ====================================================================== relationships
def is_relationship_call(project: Project, value: Expr, module_fid: str) -> bool:
    """A class-body value that is a ``relationship(...)`` call (what the eager-loading plan always matched)."""
    if not value or value[0] != "c":
        return False
    v = project.value(value[1], module_fid)
    return bool(v and v[0] == "ext" and v[1].rsplit(".", 1)[-1] in RELATIONSHIP_FUNCTIONS
                and v[1].startswith(_ORM_PACKAGES))


def relationship_index(project: Project) -> tuple[dict[str, list[tuple[str, str]]], set[str]]:
    """(relationship attribute name -> [(file path, class qualname)], mapped class ids) over every class.

    A class is mapped when it sets ``__tablename__`` or defines a relationship.
    """
    out: dict[str, list[tuple[str, str]]] = {}
    mapped: set[str] = set()
    for cid, (fs, cls) in project.classes.items():
        module_fid = f"{cid.split(':', 1)[0]}:{MODULE_SCOPE}"
        for name, value in cls.assigns:
            if name == "__tablename__":
                mapped.add(cid)
            if is_relationship_call(project, value, module_fid):
                out.setdefault(name, []).append((fs.path, cls.qualname))
                mapped.add(cid)
    return out, mapped


@dataclass(frozen=True)
class Relationship:
    cls: str  # class id
    name: str
    path: str
    #: the ``lazy=`` literal, :data:`DEFAULT_LAZY` when absent, :data:`UNKNOWN_LAZY` when not a literal
    lazy: object
    #: True / False, or None when unknown
    collection: Optional[bool]
    #: target class id, when it can be resolved
    target: Optional[str]
    back_populates: Optional[str]

    @property
    def lazy_select(self) -> bool:
        """Loads on first access (the default): MissingGreenlet when first read under AsyncSession."""
        return self.lazy is not UNKNOWN_LAZY and self.lazy in SELECT_LAZY

    @property
    def eager(self) -> bool:
        return self.lazy is not UNKNOWN_LAZY and self.lazy in EAGER_LAZY


@dataclass
class _RelDraft:
    cls: str
    name: str
    path: str
    call: Optional[CallSite]
    annotation: Expr
    lazy: object = DEFAULT_LAZY
    uselist: object = None
    secondary: bool = False
    target_expr: Expr = None
    back_populates: Optional[str] = None
    target: Optional[str] = None


class OrmIndex:
    """Relationships of every class in the project (build once per project: :func:`orm_index`)."""

    def __init__(self, project: Project):
        self.project = project
        self.index, self.mapped = relationship_index(project)
        self._calls_by_span: dict[str, dict[Span, CallSite]] = {}
        self.tables: dict[str, str] = {}
        self.foreign_tables: dict[str, set[str]] = {}
        drafts = self._drafts()
        self.relationships: dict[str, dict[str, Relationship]] = {}
        for (cid, name), d in drafts.items():
            collection = self._collection(d, drafts)
            self.relationships.setdefault(cid, {})[name] = Relationship(
                d.cls, d.name, d.path, d.lazy, collection, d.target, d.back_populates)

    # ------------------------------------------------------------------ lookups
    def relationship(self, cid: str, name: str) -> Optional[Relationship]:
        """``cid.name`` when it is a relationship (inherited ones included)."""
        for c in self.project.mro(cid):
            rel = self.relationships.get(c, {}).get(name)
            if rel is not None:
                return rel
        return None

    def _frame_fid(self, cid: str) -> str:
        """Where a class body's calls are recorded: the enclosing function, or the module."""
        qual = self.project.classes[cid][1].qualname
        frame = qual.rsplit(".<locals>.", 1)[0] if ".<locals>." in qual else MODULE_SCOPE
        return f"{cid.split(':', 1)[0]}:{frame}"

    def _frame_calls(self, fid: str) -> dict[Span, CallSite]:
        table = self._calls_by_span.get(fid)
        if table is None:
            fn = self.project.functions.get(fid)
            table = {c.span: c for c in fn.summary.calls} if fn is not None else {}
            self._calls_by_span[fid] = table
        return table

    def class_call(self, cid: str, attr_span: Span) -> Optional[CallSite]:
        """The call a class-body attribute is assigned (class bodies run in the enclosing scope)."""
        return self._frame_calls(self._frame_fid(cid)).get(attr_span)

    # ------------------------------------------------------------------ building
    def _drafts(self) -> dict[tuple[str, str], _RelDraft]:
        p = self.project
        for cid, (fs, cls) in p.classes.items():
            for name, value in cls.assigns:
                if name == "__tablename__" and value and value[0] == "n":
                    self.tables[cid] = value[1]  # the string literal, as the index parses it
        for cid, (fs, cls) in p.classes.items():
            module_fid = f"{cid.split(':', 1)[0]}:{MODULE_SCOPE}"
            fks: set[str] = set()
            for name, span in cls.attribute_calls:
                call = self.class_call(cid, span)
                if call is not None:
                    fks |= self._foreign_tables(call, cid, module_fid)
            self.foreign_tables[cid] = fks
        drafts: dict[tuple[str, str], _RelDraft] = {}
        for cid, (fs, cls) in p.classes.items():
            module_fid = f"{cid.split(':', 1)[0]}:{MODULE_SCOPE}"
            spans = dict(cls.attribute_calls)
            annotations = dict(cls.annotations)
            for name, value in cls.assigns:
                if not is_relationship_call(p, value, module_fid):
                    continue
                call = self.class_call(cid, spans[name]) if name in spans else None
                d = _RelDraft(cid, name, fs.path, call, annotations.get(name))
                if call is not None:
                    consts = dict(call.kw_constants)
                    names = {k for k, _ in call.kwargs}
                    if "lazy" in consts:
                        d.lazy = consts["lazy"]
                    elif "lazy" in names or call.star_kwargs or "sa_relationship_kwargs" in names \
                            or "sa_relationship" in names:
                        d.lazy = UNKNOWN_LAZY
                    d.uselist = consts.get("uselist", UNKNOWN_LAZY if "uselist" in names else None)
                    d.secondary = "secondary" in names
                    bp = consts.get("back_populates")
                    d.back_populates = bp if isinstance(bp, str) else None
                    d.target_expr = call.args[0] if call.args else dict(call.kwargs).get("argument")
                else:
                    d.lazy = UNKNOWN_LAZY
                d.target = self._target(d, module_fid)
                drafts[(cid, name)] = d
        return drafts

    def _foreign_tables(self, column: CallSite, cid: str, module_fid: str) -> set[str]:
        """Tables a ``Column(..., ForeignKey("t.id"))`` / ``Field(foreign_key="t.id")`` refers to."""
        out: set[str] = set()
        fk = dict(column.kw_constants).get("foreign_key")
        if isinstance(fk, str) and "." in fk:
            out.add(fk.rsplit(".", 1)[0].rsplit(".", 1)[-1])
        frame_calls = tuple(self._frame_calls(self._frame_fid(cid)).values())
        for call in calls_within(frame_calls, column.span):
            if call is column or _last(call.func) != "ForeignKey" or not call.args:
                continue
            ref = call.args[0]
            if ref and ref[0] == "a" and ref[1] is not None:
                base = ref[1]
                v = self.project.value(base, module_fid) if base[0] == "n" else None
                if v and v[0] == "class":
                    if v[1] in self.tables:
                        out.add(self.tables[v[1]])
                else:
                    out.add(_last(base) or "")
        out.discard("")
        return out

    def _target(self, d: _RelDraft, module_fid: str) -> Optional[str]:
        candidates: list[Expr] = []
        if d.target_expr is not None:
            candidates.append(d.target_expr)
        ann = _unwrap_mapped(d.annotation)
        if ann is not None:
            inner = ann[2][0] if ann[0] == "sub" and ann[2] else ann[1] if ann[0] == "annotated" else ann
            candidates.append(inner)
        for expr in candidates:
            if expr is None or expr[0] not in ("n", "a"):
                continue
            v = self.project.value(expr, module_fid)
            if v and v[0] == "class":
                return v[1]
            name = _last(expr)
            same = [c for c in self.mapped if c.rsplit(":", 1)[-1].rsplit(".", 1)[-1] == name]
            if len(same) == 1:
                return same[0]
        return None

    def _own_collection(self, d: _RelDraft) -> Optional[bool]:
        """What the relationship's own definition says (no partner)."""
        if isinstance(d.uselist, bool):
            return d.uselist
        if d.uselist is UNKNOWN_LAZY:
            return None
        ann = _unwrap_mapped(d.annotation)
        if ann is not None:
            if ann[0] == "sub":
                return _last(ann[1]) in COLLECTION_TYPES
            if ann[0] in ("n", "a", "annotated"):
                return False
        if d.secondary:
            return True
        if d.target is not None and d.target != d.cls:
            mine, theirs = self.tables.get(d.cls), self.tables.get(d.target)
            if mine and theirs:
                to_them = theirs in self.foreign_tables.get(d.cls, ())
                to_me = mine in self.foreign_tables.get(d.target, ())
                if to_me and not to_them:
                    return True  # one-to-many: the other table holds the foreign key
                if to_them and not to_me:
                    return False  # many-to-one
        return None

    def _collection(self, d: _RelDraft, drafts: dict[tuple[str, str], _RelDraft]) -> Optional[bool]:
        own = self._own_collection(d)
        if own is not None or d.uselist is UNKNOWN_LAZY:
            return own
        if d.target is not None and d.back_populates:
            partner = drafts.get((d.target, d.back_populates))
            if partner is not None and self._own_collection(partner) is False:
                return True  # the other side is many-to-one
        return None


def _unwrap_mapped(ann: Expr) -> Expr:
    """``Mapped[X]`` -> ``X`` (SQLModel annotations have no wrapper)."""
    if ann and ann[0] == "sub" and _last(ann[1]) in _ANNOTATION_WRAPPERS and ann[2]:
        inner = ann[2][0]
        return inner
    return ann


_INDEXES: "weakref.WeakKeyDictionary[Project, OrmIndex]" = weakref.WeakKeyDictionary()


def orm_index(project: Project) -> OrmIndex:
    """The project's :class:`OrmIndex`, built on first use."""
    idx = _INDEXES.get(project)
    if idx is None:
        idx = _INDEXES[project] = OrmIndex(project)
    return idx


# ====================================================================== statements
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
    return bool(v and v[0] == "ext" and v[1].rsplit(".", 1)[-1] == "select" and v[1].startswith(_ORM_PACKAGES))


def _loader(project: Project, func: Expr, fid: str) -> Optional[str]:
    """The loader option a call makes (``joinedload``...), or None."""
    if func is None:
        return None
    if func[0] == "a" and func[1] is not None and func[1][0] == "c" and func[2] in LOADER_NAMES:
        return func[2]  # chained: ``selectinload(A.b).joinedload(B.c)``, ``Load(A).selectinload(A.b)``
    v = project.value(func, fid)
    if _is_orm_name(v, LOADER_NAMES):
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
            if first is not None and _is_orm_name(self.project.value(root[1], self.fid), NON_ENTITY_STATEMENTS):
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
            return bool(_is_orm_name(v, (JOINED_LOADER, "Load")))
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
