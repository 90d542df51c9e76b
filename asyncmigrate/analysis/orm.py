"""Mapped classes and their relationships, as the per-file summaries show them.

Used by the eager-loading plan (``migration.py``) and the post-migration rules
(ASM203/ASM204, with ``analysis/queries.py`` for what a function's queries load).

:class:`OrmIndex` holds every ``relationship(...)`` / SQLModel ``Relationship(...)``
attribute of a class, with its ``lazy=`` literal and whether it is a collection.
A collection is only claimed on evidence: ``uselist=``, a ``Mapped[list[...]]``-style
annotation, ``secondary=``, the direction of the ``ForeignKey`` between the two
tables, or a ``back_populates`` partner that is known to be scalar.  Otherwise it
is unknown, and rules that need it stay quiet.

Class bodies run in the enclosing scope, so a class attribute's call is found
in that scope's calls by its span (``ClassSummary.attribute_calls``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model import CallSite, Expr, Span
from .index import MODULE_SCOPE
from .sessions import Project

# SQLAlchemy names this module matches (not in facts.py yet).
#: ``relationship`` / SQLModel ``Relationship`` (last name segment, from a sqlalchemy / sqlmodel import)
RELATIONSHIP_FUNCTIONS = ("relationship", "Relationship")
ORM_PACKAGES = ("sqlalchemy", "sqlmodel")
#: ``lazy=`` values that load the relationship together with its parent (``False`` is the legacy "joined")
EAGER_LAZY = frozenset({"selectin", "joined", "subquery", "immediate", False})
#: ``lazy=`` values that load on first attribute access (I/O, so MissingGreenlet under AsyncSession)
SELECT_LAZY = frozenset({"select", True})
#: annotation containers that make a relationship a collection (``Mapped[list[X]]``, ``list["X"]`` in SQLModel)
COLLECTION_TYPES = frozenset({"list", "List", "set", "Set", "frozenset", "FrozenSet", "Collection", "Sequence",
                              "MutableSequence", "MutableSet", "Iterable", "dict", "Dict", "Mapping", "MutableMapping"})
_ANNOTATION_WRAPPERS = frozenset({"Mapped", "WriteOnlyMapped", "DynamicMapped"})

#: a ``lazy=`` that is present but not a literal
UNKNOWN_LAZY = object()
#: no ``lazy=`` at all (the default, ``"select"``)
DEFAULT_LAZY = "select"


def within(inner: Span, outer: Span) -> bool:
    """``inner`` lies inside ``outer`` (calls inside an expression are found by position)."""
    return ((outer.line, outer.column) <= (inner.line, inner.column)
            and (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column))


def calls_within(calls: tuple[CallSite, ...], span: Span) -> list[CallSite]:
    """The calls of an expression (by position), in source order."""
    found = [c for c in calls if within(c.span, span)]
    found.sort(key=lambda c: (c.span.line, c.span.column, -c.span.end_line, -c.span.end_column))
    return found


def last_name(expr: Expr) -> Optional[str]:
    """``a.b.c`` -> ``c``; ``name`` -> ``name``; anything else -> None."""
    if expr is None:
        return None
    if expr[0] == "n":
        return expr[1]
    if expr[0] == "a":
        return expr[2]
    return None


def is_orm_name(v, names) -> bool:
    """``v`` is an external SQLAlchemy / SQLModel name whose last segment is one of ``names``."""
    return bool(v and v[0] == "ext" and v[1].rsplit(".", 1)[-1] in names and v[1].startswith(ORM_PACKAGES))


# ====================================================================== relationships
def is_relationship_call(project: Project, value: Expr, module_fid: str) -> bool:
    """A class-body value that is a ``relationship(...)`` call (what the eager-loading plan always matched)."""
    if not value or value[0] != "c":
        return False
    v = project.value(value[1], module_fid)
    return bool(v and v[0] == "ext" and v[1].rsplit(".", 1)[-1] in RELATIONSHIP_FUNCTIONS
                and v[1].startswith(ORM_PACKAGES))


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
            if call is column or last_name(call.func) != "ForeignKey" or not call.args:
                continue
            ref = call.args[0]
            if ref and ref[0] == "a" and ref[1] is not None:
                base = ref[1]
                v = self.project.value(base, module_fid) if base[0] == "n" else None
                if v and v[0] == "class":
                    if v[1] in self.tables:
                        out.add(self.tables[v[1]])
                else:
                    out.add(last_name(base) or "")
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
            name = last_name(expr)
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
                return last_name(ann[1]) in COLLECTION_TYPES
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
    if ann and ann[0] == "sub" and last_name(ann[1]) in _ANNOTATION_WRAPPERS and ann[2]:
        inner = ann[2][0]
        return inner
    return ann


def orm_index(project: Project) -> OrmIndex:
    """The project's :class:`OrmIndex`, built on first use.

    Kept on the project itself, not in a ``WeakKeyDictionary``: there the index (the value) holds
    the project (the key) strongly, so no analysed project (hundreds of MB for a large tree) was
    ever freed; on the project, the pair is one cycle the garbage collector frees with it.
    """
    idx = vars(project).get("_orm_index")
    if idx is None:
        idx = vars(project)["_orm_index"] = OrmIndex(project)
    return idx
