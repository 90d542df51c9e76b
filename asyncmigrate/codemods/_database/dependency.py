"""The async twin of a generator that yields a sync session (``get_db`` -> ``get_async_db``).

The twin opens its session from the async factory.  The plain shapes (open / yield / close, ``with``)
become the canonical ``async with Factory() as session: yield session``; any other body is mirrored with
the coroutine session methods awaited and ``with`` made ``async with`` (SQLALCHEMY_ASYNC.md §1, §4), or,
when it does more with the session than that, replaced by the canonical body and reported by the caller.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import libcst as cst
import libcst.matchers as m

from asyncmigrate import facts
from asyncmigrate.codemods._database.syntax import bind_of, expr

#: AsyncSession attributes that are plain properties (no I/O), allowed in a translated dependency.
_SESSION_PROPERTIES = frozenset(
    {"is_active", "info", "new", "dirty", "deleted", "identity_map", "no_autoflush", "bind"}
)


@dataclass
class SessionSource:
    """Where a sync dependency gets its session: ``SessionLocal()``, ``SessionLocal.begin()``, ``Session(engine)``."""

    var: str
    call: cst.Call
    factory: Optional[str]  # factory name, or None for ``Session(engine)``
    session_class: Optional[str] = None  # qualified name of the Session class for ``Session(engine)``


def session_source(fn: cst.FunctionDef, factories: set[str], engine: Optional[str],
                   qnames: Callable[[cst.CSTNode], set[str]]) -> Optional[SessionSource]:
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
            return SessionSource(var, value, func.value)
        if m.matches(func, m.Attribute(value=m.Name(), attr=m.Name("begin"))):
            name = func.value.value  # type: ignore[attr-defined]
            if name in factories:
                return SessionSource(var, value, name)
        classes = qnames(func) & facts.SYNC_SESSION_CLASSES
        if classes and engine is not None and (bind_of(value) == engine):
            return SessionSource(var, value, None, session_class=sorted(classes)[0])
    return None


def canonical_body(factory: str, scoped: bool, var: str = "session",
                   opener: Optional[cst.Call] = None) -> Sequence[cst.BaseStatement]:
    """Open a session from the async ``factory`` (or with ``opener``), yield it, close it (``remove()`` it when
    scoped)."""
    if opener is not None:
        template = f"async with {cst.Module(body=[]).code_for_node(opener)} as {var}:\n    yield {var}\n"
    elif scoped:
        template = f"{var} = {factory}()\ntry:\n    yield {var}\nfinally:\n    await {factory}.remove()\n"
    else:
        template = f"async with {factory}() as {var}:\n    yield {var}\n"
    return cst.parse_module(template).body


def translated_body(
    fn: cst.FunctionDef, source: SessionSource, factory: str, opener: Optional[cst.Call] = None
) -> tuple[Optional[Sequence[cst.BaseStatement]], Optional[cst.CSTNode]]:
    """``(body, None)``: ``fn``'s body, awaited, on ``factory``; ``(None, None)`` for the plain open/yield/close
    shapes (the canonical body is meant); ``(None, node)`` when ``node`` does more with the session.

    ``opener``: the call that replaces ``Session(engine)`` (``AsyncSession(async_engine, ...)``) when there is
    no async factory to open the session from."""
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
        return None, None
    translator = _AwaitSession(var, source, factory, opener)
    new = [s.visit(translator) for s in statements]
    if translator.unsupported is not None:
        return None, translator.unsupported
    return new, None  # type: ignore[return-value]


def async_twin(fn: cst.FunctionDef, name: str, body: Sequence[cst.BaseStatement], session_name: str) -> cst.FunctionDef:
    """``async def name() -> AsyncIterator[<session_name>]`` with ``body``, beside ``fn`` (two blank lines)."""
    return fn.with_changes(
        name=cst.Name(name),
        asynchronous=cst.Asynchronous(),
        returns=cst.Annotation(expr(f"AsyncIterator[{session_name}]")),
        body=cst.IndentedBlock(body=list(body)),
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
        whitespace_before_colon=cst.SimpleWhitespace(""),
    )


class _AwaitSession(cst.CSTTransformer):
    """Mirror a sync dependency body on the async factory: coroutine session methods awaited, ``with`` async."""

    def __init__(self, var: str, source: SessionSource, factory: str, opener: Optional[cst.Call] = None) -> None:
        super().__init__()
        self.var, self.source, self.factory, self.opener = var, source, factory, opener
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
            if attr in facts.AWAITED_SESSION_METHODS | facts.ASYNC_SESSION_SYNC_METHODS | _SESSION_PROPERTIES:
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
            return self.opener if self.opener is not None else cst.Call(func=cst.Name(self.factory))
        if isinstance(func, cst.Name) and func.value == self.source.factory:
            return updated.with_changes(func=cst.Name(self.factory))
        if isinstance(func, cst.Attribute) and m.matches(func.value, m.Name(self.source.factory or "")):
            if func.attr.value == "begin":
                return updated.with_changes(func=func.with_changes(value=cst.Name(self.factory)))
            if func.attr.value == "remove":
                return cst.Await(updated.with_changes(func=func.with_changes(value=cst.Name(self.factory))))
        if isinstance(func, cst.Attribute) and m.matches(func.value, m.Name(self.var)):
            if func.attr.value in facts.AWAITED_SESSION_METHODS:
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
