"""Rewrite legacy ``Query`` chains on a sync session into awaited SQLAlchemy 2.0 statements.

``db.query(User).filter(a).all()`` becomes ``(await db.execute(select(User).where(a))).scalars().all()``,
following the non-DIFF rows of ``shared/SQLALCHEMY_ASYNC.md`` §2 and keeping legacy semantics (§8 item 6):
``first()`` adds ``.limit(1)``, ``one()`` becomes ``scalar_one()``, ``scalar()`` stays strict
(``scalar_one_or_none()``), ``count()`` counts a subquery, column and multi-entity queries read Rows, and
``.unique()`` is added wherever the legacy Query would have de-duplicated entities (joins, joined eager
loads, several tables).  ``get`` becomes ``await db.get(M, pk)``, bulk ``update``/``delete`` become
``update(M)``/``delete(M)`` statements read with ``.rowcount`` (on a stored query ``q``,
``update(M).where(q.whereclause)`` when every assignment of ``q`` has criteria; ``synchronize_session=False``
is dropped, because under ``expire_on_commit=False`` it leaves loaded objects stale past the commit), a query stored in a variable and refined
later becomes a ``select()`` when every use of the variable is understood, and a query used as a
subquery (``.in_(...)``, ``.exists()``) becomes a bare ``select()``.  Only receivers the project plan calls
sync sessions in the current function are touched; anything else Query-shaped is left unchanged and
reported with ``warn()``, never guessed.  Fixes: ASM110.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import libcst as cst
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from asyncmigrate.codemods.base import (FilePlan, ScopedTransformer, awaited_then, dotted, names_bound_by,
                                         parenthesize)
from asyncmigrate.facts import (
    COLUMN_FACTORIES, COLUMN_IN_METHODS, EAGER_OPTIONS, ENTITY_FACTORIES, JOINEDLOAD, QUERY_BUILDER_NOT_EQUIVALENT,
    QUERY_BUILDER_PREFERRED, QUERY_BUILDER_RENAMED, QUERY_BUILDER_SAME_NAME, QUERY_DML_CRITERIA, QUERY_JOINS,
    QUERY_TERMINALS, SQL_CONSTRUCT_MODULES, SUBQUERY_OPERATORS,
)

BUILDERS = (QUERY_BUILDER_SAME_NAME - QUERY_BUILDER_NOT_EQUIVALENT) | frozenset(QUERY_BUILDER_RENAMED)
RENAMES = {**QUERY_BUILDER_RENAMED, **QUERY_BUILDER_PREFERRED}
#: The terminals with a verified 2.0 form; the other QUERY_TERMINALS (paginate, *_or_404) are reported.
TERMINALS = frozenset({"all", "first", "one", "one_or_none", "scalar", "get", "count", "update", "delete", "exists"})
assert TERMINALS <= QUERY_TERMINALS
#: Loader options that never add a JOIN to the statement (everything else may: joinedload, Load(...)...).
NON_JOINING_LOADERS = frozenset(q.rsplit(".", 1)[1] for q in EAGER_OPTIONS - JOINEDLOAD) - {"contains_eager"}
ITERATE = "<iterate>"  # pseudo-terminal: ``for x in <query>``
ENTITY, COLUMN, UNKNOWN = "entity", "column", "unknown"


@dataclass(frozen=True)
class Step:
    name: str
    call: cst.Call


def unwind(node: cst.BaseExpression) -> tuple[cst.BaseExpression, list[Step]]:
    """``base.m1(..).m2(..)`` -> ``(base, [m1, m2])``."""
    steps: list[Step] = []
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        steps.append(Step(node.func.attr.value, node))
        node = node.func.value
    steps.reverse()
    return node, steps


def first_non_builder(steps: Sequence[Step]) -> Optional[int]:
    return next((i for i, s in enumerate(steps) if s.name not in BUILDERS), None)


def class_like(name: str) -> bool:
    """``User``, ``OrderItem``: a mapped class by naming convention (not ``ID``, ``True``, ``None``)."""
    return name[:1].isupper() and not name.isupper() and name not in ("True", "False", "None")


def callee_name(call: cst.Call) -> Optional[str]:
    if isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    return call.func.value if isinstance(call.func, cst.Name) else None


def is_exists(expr: cst.BaseExpression) -> bool:
    """``q.exists()``, ``select(..).exists()``, ``exists()``, ``exists().where(..)``."""
    base, steps = unwind(expr)
    if steps and steps[-1].name == "exists":
        return True
    return isinstance(base, cst.Call) and callee_name(base) == "exists"


def from_refs(node: cst.CSTNode) -> set[str]:
    """Classes (``User``) and tables (``users.c``) an expression reads from, by syntax."""
    out: set[str] = set()

    def walk(n: cst.CSTNode) -> None:
        text = dotted(n) if isinstance(n, (cst.Name, cst.Attribute)) else None
        if text is not None:
            parts = text.split(".")
            for i, part in enumerate(parts):
                if class_like(part) or (i and part in ("c", "columns")):
                    out.add(".".join(parts[: i + (1 if class_like(part) else 0)]))
                    break
        elif isinstance(n, cst.Attribute):
            walk(n.value)
        elif isinstance(n, cst.Call) and callee_name(n) in SUBQUERY_OPERATORS:
            if callee_name(n) != "exists":  # x.in_(sub), rel.any(..): x and rel are outer; q.exists(): all inner
                walk(n.func)
        elif isinstance(n, cst.Arg):
            walk(n.value)
        else:
            for child in n.children:
                walk(child)

    walk(node)
    return out


def joins_eagerly(option: cst.CSTNode) -> bool:
    # Over-approximates on purpose: ``.unique()`` is harmless on entity results (§2), a missing one is not.
    calls: list[cst.Call] = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            calls.append(node)

    option.visit(Calls())
    return any(callee_name(c) not in NON_JOINING_LOADERS for c in calls)


@dataclass(frozen=True)
class Shape:
    """What a query selects and whether its entity rows can repeat."""

    elements: tuple[cst.BaseExpression, ...]
    kinds: tuple[str, ...]
    builders: tuple[Step, ...]
    multiplies: bool

    @property
    def kind(self) -> str:
        """``entity`` (one mapped class: ``.scalars()``), ``rows`` (Rows), or ``unknown``."""
        if "star" in self.kinds:
            return UNKNOWN
        if len(self.kinds) == 1 and self.kinds[0] != COLUMN:
            return self.kinds[0]
        return "rows"

    @property
    def unique(self) -> Optional[bool]:
        """Add ``Result.unique()``?  Legacy Query de-duplicates whenever an entity is selected; None: unknown."""
        if not self.multiplies:
            return False
        if ENTITY in self.kinds:
            return True
        return None if (UNKNOWN in self.kinds or "star" in self.kinds) else False


@dataclass
class Scope:
    """One function: its local names (computed on first use: most functions never need them) and its
    stored queries."""

    fn: cst.FunctionDef
    tracked: dict[str, "Tracked"] = field(default_factory=dict)
    _names: Optional[tuple[dict[str, list[cst.Assign]], set[str]]] = None

    @property
    def assigns(self) -> dict[str, list[cst.Assign]]:
        """``name = value`` statements of the function itself (not of nested functions), by name."""
        return self._collect()[0]

    @property
    def other(self) -> set[str]:
        """Names bound any other way: parameters, ``for``, ``with``, imports, ``global``..."""
        return self._collect()[1]

    @property
    def bound(self) -> set[str]:
        return self.other | set(self.assigns)

    @property
    def local_defs(self) -> dict[str, cst.BaseExpression]:
        return {n: a[0].value for n, a in self.assigns.items() if len(a) == 1 and n not in self.other}

    def _collect(self) -> tuple[dict[str, list[cst.Assign]], set[str]]:
        if self._names is None:
            assigns: dict[str, list[cst.Assign]] = {}
            other = {p.name.value for p in _params(self.fn.params)}
            for node, depth in _walk(self.fn.body):
                if depth:
                    continue
                if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                    assigns.setdefault(node.targets[0].target.value, []).append(node)
                else:
                    other |= names_bound_by(node)
            self._names = assigns, other
        return self._names


@dataclass
class Tracked:
    """``q = db.query(M)...`` refined by ``q = q.filter(..)``: every use of ``q`` was understood."""

    receiver: str
    root: cst.Call
    steps: list[Step]  # origin builders, then every refinement's builders (for shape only)
    #: every origin assignment has criteria (filter/filter_by/where): ``q.whereclause`` is never None
    filtered: bool = False
    #: ``q = q.<builder>(..)`` happens somewhere after the origin
    refined: bool = False


class QueryToSelect(ScopedTransformer, VisitorBasedCodemodCommand):
    DESCRIPTION = "Rewrite legacy Query chains on sync sessions into awaited select()/update()/delete() statements."
    fixes = ("ASM110",)

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._scopes: list[Scope] = []
        self._module: Optional[cst.Module] = None
        self._positions: Optional[Mapping[cst.CSTNode, CodeRange]] = None
        self._module_bound: dict[str, tuple[Optional[str], Optional[str]]] = {}  # name -> (module, imported)
        self._indent = "    "
        self._no_await = 0  # > 0 inside a lambda, or a generator expression outside its first iterable
        self._genexp_first: set[int] = set()
        self._iter_ctx: set[int] = set()
        self._in_ctx: set[int] = set()
        self._stmt_ctx: set[int] = set()
        self._paren_ctx: set[int] = set()
        self._assign_ctx: dict[int, str] = {}
        self._method_on: dict[int, str] = {}

    # ------------------------------------------------------------------ context
    def visit_Module(self, node: cst.Module) -> None:
        self._module, self._indent = node, node.default_indent
        for stmt in node.body:
            for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ():
                if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                    module = ("." * len(small.relative)) + (dotted(small.module) or "" if small.module else "")
                    for alias in small.names:
                        self._module_bound[alias.evaluated_alias or alias.evaluated_name] = (module, alias.evaluated_name)
                elif isinstance(small, cst.Import):
                    for alias in small.names:
                        self._module_bound[(alias.evaluated_alias or alias.evaluated_name).split(".")[0]] = (None, None)
                elif isinstance(small, cst.Assign):
                    for target in small.targets:
                        if isinstance(target.target, cst.Name):
                            self._module_bound[target.target.value] = (None, None)
            if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                self._module_bound[stmt.name.value] = (None, None)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> Optional[bool]:
        super().visit_FunctionDef(node)
        self._scopes.append(self._scan(node))
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        self._scopes.pop()
        return super().leave_FunctionDef(original_node, updated_node)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._no_await += 1

    def leave_Lambda(self, original_node: cst.Lambda, updated_node: cst.Lambda) -> cst.BaseExpression:
        self._no_await -= 1
        return updated_node

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        # An await in a generator expression makes it an *async* generator, except in its first
        # iterable, which runs eagerly in the enclosing function.
        self._no_await += 1
        self._genexp_first.add(id(node.for_in))

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp, updated_node: cst.GeneratorExp) -> cst.BaseExpression:
        self._no_await -= 1
        return updated_node

    def visit_CompFor_iter(self, node: cst.CompFor) -> None:
        if id(node) in self._genexp_first:
            self._no_await -= 1

    def leave_CompFor_iter(self, node: cst.CompFor) -> None:
        if id(node) in self._genexp_first:
            self._no_await += 1

    def visit_For(self, node: cst.For) -> None:
        self._iter_ctx.add(id(node.iter))

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._iter_ctx.add(id(node.iter))

    def visit_Expr(self, node: cst.Expr) -> None:
        self._stmt_ctx.add(id(node.value))

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            self._assign_ctx[id(node.value)] = node.targets[0].target.value

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._paren_ctx.add(id(node.value))

    def visit_Subscript(self, node: cst.Subscript) -> None:
        self._paren_ctx.add(id(node.value))

    def visit_Call(self, node: cst.Call) -> None:
        self._paren_ctx.add(id(node.func))
        if isinstance(node.func, cst.Attribute):
            self._method_on[id(node.func.value)] = node.func.attr.value
            if node.func.attr.value in COLUMN_IN_METHODS:
                self._in_ctx.update(id(arg.value) for arg in node.args)

    # ------------------------------------------------------------------ function pass
    def _session(self, base: cst.BaseExpression, first: Optional[Step]) -> Optional[str]:
        text = dotted(base)
        if first is not None and first.name == "query" and self.plan.is_session(self.function_scope, text):
            return text
        return None

    def _scan(self, fn: cst.FunctionDef) -> Scope:
        """The stored queries whose every use is understood; the others are reported once, here."""
        scope = Scope(fn)
        if not self.plan.sessions.get(self.function_scope):
            return scope  # nothing to track: skip the walk
        self._scopes.append(scope)  # _shape() reads local_defs while scanning
        try:
            for name, nodes in scope.assigns.items():
                origins = [a for a in nodes if self._origin(a.value)]
                if origins:
                    tracked = self._track(fn, name, nodes, origins, scope.other)
                    if isinstance(tracked, Tracked):
                        scope.tracked[name] = tracked
                    else:
                        self._warn(*tracked)
        finally:
            self._scopes.pop()
        return scope

    def _origin(self, value: cst.BaseExpression) -> Optional[str]:
        base, steps = unwind(value)
        receiver = self._session(base, steps[0] if steps else None)
        return receiver if receiver and first_non_builder(steps[1:]) is None else None

    def _track(self, fn: cst.FunctionDef, name: str, nodes: list[cst.Assign], origins: list[cst.Assign],
               other: set[str]) -> Tracked | tuple[cst.CSTNode, str]:
        """``name``'s stored query, or where and why one of its uses is not understood."""
        what = f"`{name}` holds a Query that"
        if name in other:
            return origins[-1], f"{what} is bound more than once; its uses are left unchanged"
        chains = [unwind(a.value) for a in origins]
        tracked = Tracked(dotted(chains[0][0]) or "", chains[0][1][0].call, [s for _, st in chains for s in st[1:]],
                          filtered=all(any(s.name in QUERY_DML_CRITERIA for s in st[1:]) for _, st in chains))
        # ``if x: q = db.query(M).filter(a) else: q = db.query(M).filter_by(b)`` is one statement shape
        selects = {(dotted(base), tuple(_code(e) for e in self._shape(st[0].call, st[1:]).elements))
                   for base, st in chains}
        if len(selects) > 1:
            return origins[-1], f"{what} is assigned from queries that differ in session or columns; its uses are " \
                                "left unchanged"
        for assign in nodes:
            if any(assign is origin for origin in origins):
                continue
            vbase, vsteps = unwind(assign.value)
            if not (isinstance(vbase, cst.Name) and vbase.value == name and first_non_builder(vsteps) is None):
                return assign, f"{what} is reassigned to something else; its uses are left unchanged"
            if any(s.name in ("with_entities", "add_columns") for s in vsteps):
                return assign, f"{what} changes its columns conditionally; its uses are left unchanged"
            tracked.steps.extend(vsteps)
            tracked.refined = True
        for node, stack in _uses(fn.body, name):
            problem = self._use_problem(tracked, name, node, stack)
            if problem:
                return node, f"{what} {problem}; its uses are left unchanged"
        return tracked

    def _use_problem(self, tracked: Tracked, name: str, node: cst.Name, stack: list[cst.CSTNode]) -> Optional[str]:
        """Why this use of a stored query is not one we rewrite (so none of its uses is), or None."""
        if any(isinstance(p, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) for p in stack[:-1]):
            return "is used in a nested function"
        if any(isinstance(g, cst.GeneratorExp) and not (stack[j + 1] is g.for_in and stack[j + 2] is g.for_in.iter)
               for j, g in enumerate(stack[:-2])):
            return "is used in a generator expression, where `await` would make it asynchronous"
        i = len(stack) - 1
        if isinstance(stack[i - 1], cst.AssignTarget):
            return None  # the origin or a refinement: both checked by _track
        calls: list[cst.Call] = []
        while (isinstance(stack[i - 1], cst.Attribute) and stack[i - 1].value is stack[i]
               and isinstance(stack[i - 2], cst.Call) and stack[i - 2].func is stack[i - 1]):
            calls.append(stack[i - 2])
            i -= 2
        steps = [Step(c.func.attr.value, c) for c in calls]
        top, parent = stack[i], stack[i - 1]
        k = first_non_builder(steps)
        if k is not None:
            if steps[k].name == "get":
                return "is used with `.get()`, which needs the query's entity"
            if steps[k].name in ("update", "delete"):
                if k:
                    return f"adds builders in the bulk `.{steps[k].name}()` call"
                if tracked.refined:
                    return f"is refined before bulk `.{steps[k].name}()`: its criteria are not known in one place"
                if not tracked.filtered:
                    # ``update(M).where(None)`` would not be the same statement as an unfiltered bulk update
                    return f"is used with bulk `.{steps[k].name}()` but has no criteria on every assignment"
            if steps[k].name not in TERMINALS:
                return f"calls `.{steps[k].name}()`, which has no verified 2.0 form"
            return self._problem(self._tracked_shape(tracked, steps[:k]), steps[k].name, steps[k].call)
        if isinstance(parent, cst.Assign) and parent.value is top:
            target = parent.targets[0].target if len(parent.targets) == 1 else None
            return None if isinstance(target, cst.Name) and target.value == name else "is copied to another name"
        if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is top:
            return self._problem(self._tracked_shape(tracked, steps), ITERATE, None)
        if isinstance(parent, cst.Arg) and isinstance(stack[i - 2], cst.Call) and callee_name(stack[i - 2]) in COLUMN_IN_METHODS:
            return None
        if isinstance(parent, cst.Attribute):
            return f"is read as `.{parent.attr.value}`"
        if isinstance(parent, cst.Arg) and isinstance(stack[i - 2], cst.Call):
            return f"is passed to `{callee_name(stack[i - 2]) or 'a call'}()`"
        return "is returned" if isinstance(parent, cst.Return) else "is stored or used as a value"

    # ------------------------------------------------------------------ shapes
    def _shape(self, root: cst.Call, steps: Iterable[Step]) -> Shape:
        elements = [a for a in root.args]
        builders = list(steps)
        for step in builders:
            if step.name == "with_entities":
                elements = list(step.call.args)
            elif step.name == "add_columns":
                elements += step.call.args
        kinds = tuple("star" if a.star else self._kind(a.value) for a in elements)
        refs: set[str] = set()
        multiplies = any(s.name in QUERY_JOINS for s in builders)
        for a in elements:
            refs |= from_refs(a.value)
        for step in builders:
            if step.name == "options":
                multiplies |= any(joins_eagerly(a.value) for a in step.call.args)
            else:
                for a in step.call.args:
                    refs |= from_refs(a.value)
        return Shape(tuple(a.value for a in elements), kinds, tuple(builders), multiplies or len(refs) > 1)

    def _tracked_shape(self, tracked: Tracked, steps: Sequence[Step]) -> Shape:
        return self._shape(tracked.root, [*tracked.steps, *steps])

    def _kind(self, expr: cst.BaseExpression, depth: int = 0) -> str:
        """Entity or column, by syntax: ``User`` / ``models.User`` / ``aliased(..)`` vs ``User.name`` / ``func.x(..)``."""
        if isinstance(expr, cst.Name):
            if class_like(expr.value):
                return ENTITY
            value = self._scopes[-1].local_defs.get(expr.value) if self._scopes else None
            return self._kind(value, depth + 1) if value is not None and depth < 3 else UNKNOWN
        if isinstance(expr, cst.Attribute):
            text = dotted(expr)
            if text is None:
                return UNKNOWN
            parts = text.split(".")
            if class_like(parts[-1]) and not any(class_like(p) for p in parts[:-1]):
                return ENTITY
            if class_like(parts[-2]) and not class_like(parts[-1]):
                return UNKNOWN if parts[-1] in self.plan.relationships.get(parts[-2], {}) else COLUMN
            return COLUMN if parts[-2] in ("c", "columns") else UNKNOWN
        if isinstance(expr, cst.Call):
            name, path = callee_name(expr), (dotted(expr.func) or "").split(".")
            if name in ENTITY_FACTORIES:
                return ENTITY
            if "func" in path[:-1] or name in COLUMN_FACTORIES:
                return COLUMN
            if isinstance(expr.func, cst.Attribute) and self._kind(expr.func.value, depth) == COLUMN:
                return COLUMN  # User.name.label("n"), func.count(x).label("n")
            return UNKNOWN
        if isinstance(expr, (cst.BinaryOperation, cst.Comparison, cst.UnaryOperation, cst.BooleanOperation)):
            return COLUMN
        return UNKNOWN

    def _problem(self, shape: Shape, terminal: str, call: Optional[cst.Call]) -> Optional[str]:
        """Why this terminal cannot be rewritten faithfully, or None."""
        if terminal == "scalar" and _is_exists_query(shape):
            return None
        if terminal in ("all", "first", "one", "one_or_none", ITERATE) and shape.kind == UNKNOWN:
            first = _code(shape.elements[0]) if shape.elements else "?"
            return f"selects `{first}`: cannot tell a mapped class from a column, so the result shape is unknown"
        if terminal in ("all", "one", "one_or_none", "scalar", ITERATE) and shape.unique is None:
            return "joins tables around an expression that may be an entity: cannot tell whether rows were de-duplicated"
        if terminal == "get":
            if any(s.name != "options" for s in shape.builders):
                return "calls `.get()` after other criteria (legacy raises there too)"
            if len(shape.kinds) != 1 or shape.kinds[0] == COLUMN or call is None or len(call.args) != 1 or call.args[0].keyword:
                return "uses a `.get()` form without a direct `AsyncSession.get()` equivalent"
        if terminal in ("update", "delete"):
            if any(s.name not in QUERY_DML_CRITERIA for s in shape.builders):
                return f"calls bulk `.{terminal}()` after builders other than filter/filter_by/where"
            if len(shape.kinds) != 1 or shape.kinds[0] == COLUMN:
                return f"calls bulk `.{terminal}()` on a query that does not select one entity"
            allowed = ("values", "synchronize_session") if terminal == "update" else ("synchronize_session",)
            if call is not None and (len(call.args) > len(allowed) or any(
                    a.keyword and a.keyword.value not in allowed for a in call.args)):
                return f"passes `.{terminal}()` arguments without a 2.0 equivalent (update_args, ...)"
        return None

    # ------------------------------------------------------------------ rewriting
    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        tracked = self._tracked(original_node)
        if tracked is None or id(original_node) not in self._iter_ctx or not self._await_ok(original_node):
            return updated_node
        shape = self._tracked_shape(tracked, [])
        return self._read(cst.parse_expression(tracked.receiver), updated_node, shape, ITERATE, Layout.flat())

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        base, steps = unwind(original_node)
        receiver = self._session(base, steps[0] if steps else None)
        tracked = None if receiver else self._tracked(base)
        if receiver is None and tracked is None:
            return updated_node
        new_base, new_steps = unwind(updated_node)
        if tracked is None:  # db.query(...): the root call becomes select(...)
            chain = Chain(receiver, steps[0].call, new_steps[0].call, None, steps[1:], new_steps[1:])
        else:  # q.<...>: the stored statement stays
            chain = Chain(tracked.receiver, None, None, new_base, steps, new_steps, tracked)
        k = first_non_builder(chain.steps)
        if k is None:
            if id(original_node) in self._method_on:
                return updated_node  # the chain goes on: its outermost call decides
            return self._unterminated(original_node, updated_node, chain)
        if k != len(chain.steps) - 1:
            return updated_node  # past the terminal, which was rewritten or reported already
        name = chain.steps[k].name
        if name not in TERMINALS:
            self._warn(original_node, f"`.{name}()` on a Query has no verified 2.0 form; left unchanged")
            return updated_node
        shape = chain.shape(self, k)
        problem = self._problem(shape, name, chain.steps[k].call)
        if problem:
            self._warn(original_node, f"the Query {problem}; left unchanged")
            return updated_node
        if name != "exists" and not self._await_ok(original_node):
            return updated_node
        return self._terminal(original_node, updated_node, chain, shape, k)

    def _unterminated(self, original: cst.Call, updated: cst.Call, chain: "Chain") -> cst.BaseExpression:
        """Builders only: an iteration, a subquery, a stored statement or its refinement."""
        oid = id(original)
        scope = self._scopes[-1] if self._scopes else None
        if oid in self._iter_ctx:
            shape = chain.shape(self, len(chain.steps))
            problem = self._problem(shape, ITERATE, None)
            if problem:
                self._warn(original, f"the Query {problem}; left unchanged")
                return updated
            local = self._await_ok(original) and self._imports(original, chain.needs_select)
            if not local:
                return updated
            layout = Layout.of([s.call.func.dot for s in chain.steps], self._indent, terminal=False)
            stmt = self._select(chain, len(chain.steps), local)
            return self._read(cst.parse_expression(chain.receiver), stmt, shape, ITERATE, layout)
        if chain.tracked is not None:
            return self._select(chain, len(chain.steps), {})  # a refinement or a subquery: _track checked both
        if oid in self._in_ctx or (scope is not None and self._assign_ctx.get(oid) in scope.tracked):
            local = self._imports(original, chain.needs_select)
            return updated if local is None else self._select(chain, len(chain.steps), local)
        if scope is None or oid not in self._assign_ctx:  # else _scan reported the variable
            self._warn(original, "the Query is used as a value (returned, passed on or stored) and not executed "
                                 "here; left unchanged")
        return updated

    def _terminal(self, original: cst.Call, updated: cst.Call, chain: "Chain", shape: Shape, k: int):
        terminal = chain.new_steps[k]
        name = terminal.name
        needs = {"get": [], "count": ["func", "select"], "update": ["update"], "delete": ["delete"]}.get(
            name, chain.needs_select)
        local = self._imports(original, needs)
        if local is None:
            return updated
        layout = Layout.of([s.call.func.dot for s in chain.steps[: k + 1]], self._indent, terminal=True)
        receiver = cst.parse_expression(chain.receiver)
        if name == "exists":
            return terminal.call.with_changes(func=terminal.call.func.with_changes(value=self._select(chain, k, local)))
        if name in ("all", "first", "one", "one_or_none") or (name == "scalar" and not _is_exists_query(shape)):
            stmt = self._select(chain, k, local)
            if name == "first":  # Query.first() emits LIMIT 1; Result.first() does not (§2)
                stmt = layout.method(stmt, "limit", [cst.Arg(cst.Integer("1"))])
            return _keep_parens(updated, self._read(receiver, stmt, shape, name, layout))
        if name == "get":
            args = [cst.Arg(chain.new_root.args[0].value), cst.Arg(terminal.call.args[0].value)]
            options = [cst.Element(a.value) for s in chain.new_steps[:k] if s.name == "options" for a in s.call.args]
            if options:
                args.append(cst.Arg(cst.List(options), keyword=cst.Name("options"), equal=_EQ))
            result: cst.BaseExpression = cst.Await(cst.Call(cst.Attribute(receiver, cst.Name("get")), args))
        elif name == "count":  # exact in every §2 case, joins and distinct included
            counted = cst.parse_expression(f"{local['select']}({local['func']}.count()).select_from")
            inner = layout.call(counted, layout.method(self._select(chain, k, local), "subquery"))
            result = cst.Await(cst.Call(cst.Attribute(receiver, cst.Name("scalar")), [cst.Arg(inner)]))
        elif name == "scalar":  # an EXISTS gives exactly one row: db.scalar() is exact
            result = cst.Await(layout.call(cst.Attribute(receiver, cst.Name("scalar")), self._select(chain, k, local)))
        else:  # bulk update / delete
            if chain.tracked is None:
                dml = self._select(chain, k, {"select": local[name]})
            else:  # q = select(M).where(..) already: the same criteria on update(M) / delete(M)
                entity = chain.tracked.root.args[0].value.deep_clone()
                dml = cst.Call(cst.Attribute(cst.Call(cst.Name(local[name]), [cst.Arg(entity)]), cst.Name("where")),
                               [cst.Arg(cst.Attribute(chain.new_base, cst.Name("whereclause")))])
            values, sync = _dml_arguments(terminal.call, name)
            if name == "update":  # keep the user's line breaks (and trailing comma) around the values
                args = [_closing_like(cst.Arg(values), terminal.call.args[-1])] if values is not None else []
                dml = layout.method(dml, "values", args, terminal.call.whitespace_before_args)
            # ``synchronize_session=False`` is dropped: with the async factory's expire_on_commit=False a
            # loaded object would keep its old values even after the commit, where the sync session
            # (expire_on_commit=True) reloaded them; 2.0's default 'auto' updates them at once.
            if sync is not None and not (isinstance(sync, cst.Name) and sync.value == "False"):
                option = cst.Arg(sync, keyword=cst.Name("synchronize_session"), equal=_EQ)
                dml = layout.method(dml, "execution_options", [option])
            result = cst.Await(layout.call(cst.Attribute(receiver, cst.Name("execute")), dml))
            if id(original) in self._stmt_ctx:
                return result  # the rowcount was thrown away
            result = cst.Attribute(parenthesize(result), cst.Name("rowcount"))
        return _keep_parens(updated, result, needs_parens=id(original) in self._paren_ctx)

    def _select(self, chain: "Chain", k: int, local: Mapping[str, str]) -> cst.BaseExpression:
        """``select(<query args>)`` (or the stored statement) and the first ``k`` builders, renamed for Select.
        ``local["select"]`` is what ``select`` (or ``update`` / ``delete``) is called here."""
        if chain.new_root is not None:
            stmt: cst.BaseExpression = chain.new_root.with_changes(func=cst.Name(local["select"]))
        else:
            stmt = chain.new_base
        for step in chain.new_steps[:k]:
            attr = step.call.func.attr.with_changes(value=RENAMES.get(step.name, step.name))
            stmt = step.call.with_changes(func=step.call.func.with_changes(value=stmt, attr=attr))
        return stmt

    @staticmethod
    def _read(receiver, stmt, shape: Shape, terminal: str, layout: "Layout") -> cst.BaseExpression:
        """``(await db.execute(stmt))`` and the Result methods that give the legacy value."""
        result: cst.BaseExpression = awaited_then(layout.call(cst.Attribute(receiver, cst.Name("execute")), stmt))
        unique = ["unique"] if shape.unique else []
        tail = {ITERATE: [], "scalar": ["scalar_one_or_none"]}.get(terminal, [terminal])
        if shape.kind == ENTITY and terminal in ("one", "one_or_none") and not unique:
            methods = ["scalar_" + terminal]
        elif shape.kind == ENTITY and terminal != "scalar":
            methods = ["scalars", *unique, *tail]
        else:
            methods = [*unique, *tail]
        for method in methods:
            result = cst.Call(cst.Attribute(result, cst.Name(method)))
        return result

    # ------------------------------------------------------------------ helpers
    def _tracked(self, base: cst.BaseExpression) -> Optional[Tracked]:
        if isinstance(base, cst.Name) and self._scopes:
            return self._scopes[-1].tracked.get(base.value)
        return None

    def _await_ok(self, node: cst.CSTNode) -> bool:
        if self._no_await or not self.in_function:
            self._warn(node, "the Query is in a lambda, a generator expression or module code, where `await` "
                             "cannot go; left unchanged")
            return False
        return True

    def _warn(self, node: cst.CSTNode, message: str) -> None:
        if self._positions is None and self._module is not None:
            # Resolved on the first warning only; most files have none.  No copy: the nodes stay the
            # ones being visited.
            self._positions = MetadataWrapper(self._module, unsafe_skip_copy=True).resolve(PositionProvider)
        position = (self._positions or {}).get(node)
        self.warn(f"ASM110 line {position.start.line if position else '?'}: {message}")

    def _imports(self, node: cst.CSTNode, names: Sequence[str]) -> Optional[dict[str, str]]:
        """The local name of each SQLAlchemy callable the rewrite needs, importing it when missing.

        An existing SQLAlchemy import is reused.  When the name means something else here (a service
        module's own ``def delete``, a parameter called ``update``), it is imported as ``sa_<name>``.
        """
        local: dict[str, str] = {}
        for name in names:
            found = self._local_name(name)
            if found is None:
                self._warn(node, f"`{name}` and `sa_{name}` already name something else here; the Query is "
                                 "left unchanged")
                return None
            local[name] = found
        for name, as_name in local.items():
            if as_name not in self._module_bound:
                source = "sqlmodel" if name == "select" and self.plan.sqlmodel else "sqlalchemy"
                AddImportsVisitor.add_needed_import(self.context, source, name, None if as_name == name else as_name)
        return local

    def _local_name(self, name: str) -> Optional[str]:
        def free(candidate: str) -> bool:
            return not any(candidate in s.bound for s in self._scopes)

        imported = [n for n, (module, obj) in self._module_bound.items() if obj == name and module in SQL_CONSTRUCT_MODULES]
        for candidate in sorted(imported, key=lambda n: n != name):
            if free(candidate):
                return candidate
        for candidate in (name, f"sa_{name}"):
            if candidate not in self._module_bound and free(candidate):
                return candidate
        return None


@dataclass(frozen=True)
class Chain:
    """One Query chain, as written (``steps``, for analysis) and as transformed so far (``new_*``, for output)."""

    receiver: str
    root: Optional[cst.Call]  # ``db.query(...)``; None for a stored statement
    new_root: Optional[cst.Call]
    new_base: Optional[cst.BaseExpression]  # the ``q`` of ``q.filter(..)``
    steps: Sequence[Step]
    new_steps: Sequence[Step]
    tracked: Optional[Tracked] = None

    @property
    def needs_select(self) -> list[str]:
        return ["select"] if self.root is not None else []

    def shape(self, codemod: QueryToSelect, k: int) -> Shape:
        if self.tracked is not None:
            return codemod._tracked_shape(self.tracked, self.steps[:k])
        assert self.root is not None
        return codemod._shape(self.root, self.steps[:k])


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _is_exists_query(shape: Shape) -> bool:
    return len(shape.elements) == 1 and is_exists(shape.elements[0])


def _dml_arguments(call: cst.Call, name: str) -> tuple[Optional[cst.BaseExpression], Optional[cst.BaseExpression]]:
    """``(values, synchronize_session)`` of ``Query.update(values, synchronize_session)`` / ``.delete(sync)``."""
    positional = [a.value for a in call.args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if name == "delete":
        positional.insert(0, None)  # type: ignore[arg-type]
    values = keywords.get("values", positional[0] if positional else None)
    sync = keywords.get("synchronize_session", positional[1] if len(positional) > 1 else None)
    return values, sync


def _closing_like(arg: cst.Arg, last: cst.Arg) -> cst.Arg:
    """``arg`` closing its call the way ``last`` closed the original one (newline, trailing comma)."""
    if isinstance(last.comma, cst.Comma):
        return arg.with_changes(comma=cst.Comma(whitespace_after=last.comma.whitespace_after))
    return arg.with_changes(whitespace_after_arg=last.whitespace_after_arg)


def _keep_parens(updated: cst.BaseExpression, result: cst.BaseExpression, needs_parens: bool = False):
    if updated.lpar:
        return result.with_changes(lpar=updated.lpar, rpar=updated.rpar)
    return parenthesize(result) if needs_parens and isinstance(result, cst.Await) else result


_EQ = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))


@dataclass
class Layout:
    """Keeps the user's line breaks: a chain on several lines becomes ``(await db.execute(`` + indented
    statement + ``))`` with the Result methods after it."""

    break_ws: Optional[cst.ParenthesizedWhitespace]
    indent: str
    spare: Optional[cst.BaseParenthesizableWhitespace] = None  # the break before the old terminal (may hold a comment)

    @classmethod
    def flat(cls) -> "Layout":
        return cls(None, "")

    @classmethod
    def of(cls, dots: Sequence[cst.BaseExpression], indent: str, terminal: bool) -> "Layout":
        """From the dots of the chain's method calls; ``terminal``: the last dot belongs to the dropped terminal."""
        breaks = [d.whitespace_before for d in dots
                  if isinstance(d, cst.Dot) and isinstance(d.whitespace_before, cst.ParenthesizedWhitespace)]
        if not breaks:
            return cls.flat()
        last = dots[-1]
        keep = terminal and isinstance(last, cst.Dot) and last.whitespace_before is breaks[-1]
        return cls(breaks[-1], indent, last.whitespace_before if keep else None)

    def newline(self, extra: str = "") -> cst.ParenthesizedWhitespace:
        assert self.break_ws is not None
        return self.break_ws.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[],
                                          last_line=cst.SimpleWhitespace(self.break_ws.last_line.value + extra))

    def _take(self) -> cst.BaseParenthesizableWhitespace:
        if self.spare is not None:
            ws, self.spare = self.spare, None
            return ws
        return self.newline()

    def method(self, value: cst.BaseExpression, name: str, args: Sequence[cst.Arg] = (),
               whitespace_before_args: cst.BaseParenthesizableWhitespace = cst.SimpleWhitespace("")) -> cst.Call:
        dot = cst.Dot(whitespace_before=self._take()) if self.break_ws is not None else cst.Dot()
        return cst.Call(cst.Attribute(value, cst.Name(name), dot=dot), list(args),
                        whitespace_before_args=whitespace_before_args)

    def call(self, func: cst.BaseExpression, stmt: cst.BaseExpression) -> cst.Call:
        if self.break_ws is None:
            return cst.Call(func, [cst.Arg(stmt)])
        stmt = stmt.visit(_Indent(self.indent))
        return cst.Call(func, [cst.Arg(stmt, whitespace_after_arg=self._take())],
                        whitespace_before_args=self.newline(self.indent))


class _Indent(cst.CSTTransformer):
    def __init__(self, extra: str) -> None:
        super().__init__()
        self.extra = extra

    def leave_ParenthesizedWhitespace(self, original_node, updated_node):
        return updated_node.with_changes(
            last_line=cst.SimpleWhitespace(updated_node.last_line.value + self.extra),
            empty_lines=[e.with_changes(whitespace=cst.SimpleWhitespace(e.whitespace.value + self.extra))
                         for e in updated_node.empty_lines])


# ---------------------------------------------------------------------- small syntax helpers
def _params(params: cst.Parameters) -> list[cst.Param]:
    out = [*params.posonly_params, *params.params, *params.kwonly_params]
    out += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    return out


def _walk(root: cst.CSTNode) -> list[tuple[cst.CSTNode, int]]:
    """Every node under ``root`` with its nesting depth in functions, lambdas and classes."""
    out: list[tuple[cst.CSTNode, int]] = []

    def go(node: cst.CSTNode, depth: int) -> None:
        out.append((node, depth))
        inner = depth + isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef))
        for child in node.children:
            go(child, inner)

    go(root, 0)
    return out


def _uses(root: cst.CSTNode, name: str) -> list[tuple[cst.Name, list[cst.CSTNode]]]:
    """Each ``Name(name)`` under ``root`` (not attribute names or keywords) with its ancestors."""
    found: list[tuple[cst.Name, list[cst.CSTNode]]] = []

    def go(node: cst.CSTNode, stack: list[cst.CSTNode]) -> None:
        stack.append(node)
        if isinstance(node, cst.Name) and node.value == name:
            parent = stack[-2] if len(stack) > 1 else None
            attr_name = isinstance(parent, cst.Attribute) and parent.attr is node
            keyword = isinstance(parent, cst.Arg) and parent.keyword is node
            if not attr_name and not keyword:
                found.append((node, list(stack)))
        for child in node.children:
            go(child, stack)
        stack.pop()

    go(root, [])
    return found


def run_on_source(code: str, plan: FilePlan) -> tuple[str, list[str]]:
    """Apply :class:`QueryToSelect` to one module's source: ``(new code, warnings)``."""
    context = CodemodContext(scratch={"plan": plan})
    module = QueryToSelect(context).transform_module(cst.parse_module(code))
    return module.code, list(context.warnings)
