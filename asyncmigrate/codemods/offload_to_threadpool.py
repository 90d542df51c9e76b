"""The blocking statements of a coroutine run in the threadpool, one run of statements per call (thread-pool bridge).

A coroutine that awaits other things and also calls sync database code (or other blocking I/O) cannot become a
``def``.  The planner (``bridge.py``) gives it the lines that block; this rewrite takes each maximal run of
consecutive statements that hold those lines and await nothing, moves it into a local ``def`` placed just before,
and awaits ``run_in_db_thread(part, ...)`` of the generated bridge module (``bridge_module.py``) where the
project has a session factory, else ``run_in_threadpool(part, ...)`` (Starlette's; ``asyncio.to_thread`` in a
project without Starlette).
Locals the run rebinds are passed in, locals it binds that are read afterwards come back as the return value, and
a run that ends with the function's ``return`` returns what it returned.  A unit of work (the queries and the
commit that ends them) stays in one call; the calls are awaited one after the other, so a sync session the
coroutine holds is never used by two threads at once.  What cannot move (a blocking call inside an awaited
expression, a ``return``/``break``/``yield`` inside the run, a local function defined there) is reported with
the line, and stays where it is.
"""

from __future__ import annotations

import ast
from typing import Optional, Sequence

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import PositionProvider

from .base import ScopedTransformer, dotted

_PART = "_blocking_part"
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _walk_own(nodes: Sequence[ast.AST], into_scopes: bool = False):
    """Every node below ``nodes`` in the same frame (nested functions, lambdas and classes skipped unless asked)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES) and not into_scopes:
            continue
        stack.extend(ast.iter_child_nodes(node))


def _stores(nodes: Sequence[ast.AST]) -> set[str]:
    """Names bound in this frame by ``nodes`` (comprehension targets are the comprehension's own)."""
    out: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(node, _SCOPES):
            if not isinstance(node, ast.Lambda):
                out.add(node.name)
            continue
        if isinstance(node, _COMPREHENSIONS):
            stack.extend(n for n in ast.walk(node) if isinstance(n, ast.NamedExpr))
            continue
        stack.extend(ast.iter_child_nodes(node))
    return out


def _loads(nodes: Sequence[ast.AST]) -> set[str]:
    return {n.id for n in _walk_own(nodes, into_scopes=True) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


#: names whose use needs the frame itself (``super()`` without arguments, ``locals()``) or the loop's thread
_FRAME_BUILTINS = frozenset({"super", "locals", "vars", "exec", "eval"})
_LOOP_LIBRARIES = frozenset({"asyncio", "anyio", "trio"})


def _why_not_movable(stmts: Sequence[ast.stmt], loop_names: frozenset = frozenset()) -> Optional[str]:
    """Why ``stmts`` cannot run in a local ``def`` (a final ``return`` is allowed), or None.

    ``loop_names``: the module's names bound to ``asyncio``/``anyio``/``trio`` or imported from them (their calls
    need the running loop, which a worker thread does not have)."""
    for node in (n for stmt in stmts for n in ast.walk(stmt)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FRAME_BUILTINS \
                and not (node.func.id == "super" and node.args):
            return f"{node.func.id}() needs the function's own frame"
        if isinstance(node, ast.Name) and node.id in loop_names:
            return f"{node.id} needs the running event loop"
    for k, stmt in enumerate(stmts):
        tail_return = k == len(stmts) - 1 and isinstance(stmt, ast.Return)
        stack: list[tuple[ast.AST, int]] = [(stmt, 0)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
                return "it is part of an awaited statement"
            if isinstance(node, (ast.Yield, ast.YieldFrom)):
                return "the statements yield"
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                return "the statements declare global/nonlocal names"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return "the statements define a function or class"
            if isinstance(node, ast.Return) and not (tail_return and node is stmt):
                return "a return inside the blocking statements"
            if isinstance(node, (ast.Break, ast.Continue)) and depth == 0:
                return "a break/continue of a loop outside the blocking statements"
            if isinstance(node, ast.Lambda):
                continue
            inner = depth + 1 if isinstance(node, (ast.For, ast.While)) else depth
            for child in ast.iter_child_nodes(node):
                # a loop's else runs outside the loop: its break/continue are the enclosing loop's
                stack.append((child, depth if isinstance(node, (ast.For, ast.While)) and child in node.orelse
                              else inner))
    return None


def _unconditionally_bound(stmts: Sequence[ast.stmt]) -> set[str]:
    out: set[str] = set()
    for stmt in stmts:
        if isinstance(stmt, ast.Assign):
            out |= {n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
            out.add(stmt.target.id)
        elif isinstance(stmt, (ast.With,)):
            out |= {n.id for item in stmt.items if item.optional_vars is not None
                    for n in ast.walk(item.optional_vars) if isinstance(n, ast.Name)}
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
    return out


class OffloadToThreadpool(ScopedTransformer):
    DESCRIPTION = "blocking statements of a coroutine -> await run_in_threadpool(local def)"
    METADATA_DEPENDENCIES = (PositionProvider,)
    fixes = ("ASM110", "ASM120", "ASM130", "ASM301")

    def visit_Module(self, node: cst.Module) -> Optional[bool]:
        self._tree = ast.parse(node.code)
        self._taken = {n.id for n in ast.walk(self._tree) if isinstance(n, ast.Name)} | {
            n.name for n in ast.walk(self._tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self._loop_names = frozenset(
            (a.asname or a.name).split(".")[0] for n in ast.walk(self._tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names
            if ((n.module if isinstance(n, ast.ImportFrom) else a.name) or "").split(".")[0] in _LOOP_LIBRARIES)
        self._ast_functions: dict[int, ast.AST] = {
            n.lineno: n for n in ast.walk(self._tree) if isinstance(n, ast.AsyncFunctionDef)}
        return True

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        """The bridge module's import goes right after the last import from its package: a script that puts
        the project on ``sys.path`` first (``sys.path.insert(...)`` then ``from app.database import ...``) can
        only import it there."""
        module = getattr(self, "_bridge_import", None)
        if module is None:
            return updated_node
        package = module.rpartition(".")[0]
        at = None
        for k, stmt in enumerate(updated_node.body):
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.ImportFrom) and small.module is not None and not small.relative:
                        name = dotted(small.module) or ""
                        if name == module and not isinstance(small.names, cst.ImportStar) and any(
                                isinstance(a.name, cst.Name) and a.name.value == "run_in_db_thread"
                                for a in small.names):
                            return updated_node
                        if package and (name == package or name.startswith(package + ".")):
                            at = k
        if at is None:
            AddImportsVisitor.add_needed_import(self.context, module, "run_in_db_thread")
            return updated_node
        line = cst.parse_statement(f"from {module} import run_in_db_thread\n")
        anchor = updated_node.body[at]
        trailing = anchor.trailing_whitespace.comment if isinstance(anchor, cst.SimpleStatementLine) else None
        if trailing is not None and "noqa" in trailing.value:
            line = line.with_changes(trailing_whitespace=anchor.trailing_whitespace)
        body = list(updated_node.body)
        body.insert(at + 1, line)
        return updated_node.with_changes(body=body)

    def _line(self, node: cst.CSTNode) -> tuple[int, int]:
        pos = self.get_metadata(PositionProvider, node)
        return pos.start.line, pos.end.line

    def _fresh_name(self) -> str:
        name, k = _PART, 1
        while name in self._taken:
            k += 1
            name = f"{_PART}_{k}"
        self._taken.add(name)
        return name

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        scope = self.scope
        super().leave_FunctionDef(original_node, updated_node)
        lines = self.plan.offload.get(scope)
        if not lines or original_node.asynchronous is None or not isinstance(original_node.body, cst.IndentedBlock):
            return updated_node
        fn = self._ast_functions.get(self._line(original_node.name)[0])
        if fn is None:
            return updated_node
        self._fn = fn
        self._by_line: dict[int, list[ast.stmt]] = {}
        for node in _walk_own(fn.body):
            if isinstance(node, ast.stmt):
                self._by_line.setdefault(node.lineno, []).append(node)
        self._params = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
        self._left = set(lines)
        self._reasons: dict[int, str] = {}
        body = self._rewrite_block(original_node.body, lines)
        for line in sorted(self._left):
            why = self._reasons.get(line)
            self.warn(f"line {line}: {scope}: blocking call left on the loop (not movable into the threadpool"
                      + (f": {why})" if why else ")"))
        if body is original_node.body:
            return updated_node
        return updated_node.with_changes(body=body)

    # ------------------------------------------------------------------ statement lists
    def _ast_of(self, stmt: cst.BaseStatement) -> list[ast.stmt]:
        start, _end = self._line(stmt)
        return list(self._by_line.get(start, []))

    def _rewrite_block(self, block, lines):
        new_body = self._rewrite_list(list(block.body), lines)
        if new_body is None:
            return block
        return block.with_changes(body=new_body)

    def _rewrite_list(self, stmts: list, lines) -> Optional[list]:
        info = []
        for stmt in stmts:
            start, end = self._line(stmt)
            blocking = any(start <= line <= end for line in lines)
            nodes = self._ast_of(stmt)
            info.append((stmt, start, end, blocking, nodes))
        out: list = []
        changed = False
        i = 0
        while i < len(info):
            stmt, start, end, blocking, nodes = info[i]
            if not blocking:
                out.append(stmt)
                i += 1
                continue
            # the longest run from here whose statements are movable, ending at its last blocking statement
            j, last = i, None
            while j < len(info) and info[j][4] and _why_not_movable([n for x in info[i:j + 1] for n in x[4]],
                                                                   self._loop_names) is None:
                if info[j][3]:
                    last = j
                j += 1
            if last is None:
                why = _why_not_movable(nodes, self._loop_names) if nodes else "a statement this rewrite does not take"
                for line in self._left:
                    if start <= line <= end:
                        self._reasons.setdefault(line, why or "")
                inner = self._rewrite_compound(stmt, lines)
                if inner is not None:
                    out.append(inner)
                    changed = True
                else:
                    out.append(stmt)
                i += 1
                continue
            moved = self._move(info[i:last + 1], first_in_block=not out)
            if moved is None:
                out.append(stmt)
                i += 1
                continue
            out.extend(moved)
            changed = True
            for x in info[i:last + 1]:
                self._left -= {line for line in self._left if x[1] <= line <= x[2]}
            i = last + 1
        return out if changed else None

    def _rewrite_compound(self, stmt, lines):
        """A blocking statement that cannot move as a whole (it awaits): its blocks, one by one."""
        if not isinstance(stmt, (cst.If, cst.For, cst.While, cst.With, cst.Try)):
            return None
        changes = {}
        for attr in ("body", "orelse", "finalbody"):
            part = getattr(stmt, attr, None)
            if isinstance(part, cst.Else):
                new = self._rewrite_block(part.body, lines)
                if new is not part.body:
                    changes[attr] = part.with_changes(body=new)
            elif isinstance(part, cst.If):
                new_if = self._rewrite_compound(part, lines)
                if new_if is not None:
                    changes[attr] = new_if
            elif isinstance(part, cst.IndentedBlock):
                new = self._rewrite_block(part, lines)
                if new is not part:
                    changes[attr] = new
        if isinstance(stmt, cst.Try):
            handlers = []
            for h in stmt.handlers:
                new = self._rewrite_block(h.body, lines)
                handlers.append(h.with_changes(body=new) if new is not h.body else h)
            if any(a is not b for a, b in zip(handlers, stmt.handlers)):
                changes["handlers"] = handlers
        return stmt.with_changes(**changes) if changes else None

    # ------------------------------------------------------------------ one run
    def _move(self, run, first_in_block: bool) -> Optional[list]:
        nodes = [n for x in run for n in x[4]]
        first, last = run[0][1], run[-1][2]
        outside = [n for n in _walk_own(self._fn.body, into_scopes=True)
                   if isinstance(n, ast.Name) and not (first <= n.lineno <= last)]
        stored = _stores(nodes)
        before: set[str] = set(self._params)
        for node in _walk_own(self._fn.body):
            if not isinstance(node, ast.stmt) or node.end_lineno is None:
                continue
            if node.end_lineno < first:  # bound before the run (maybe conditionally: passed in, returned)
                before |= _stores([node])
            elif node.lineno < first and hasattr(node, "body"):  # a statement the run is inside: its header
                before |= _stores([n for n in ast.iter_child_nodes(node) if not isinstance(n, ast.stmt)])
        read_after = {n.id for n in outside if isinstance(n.ctx, ast.Load)}
        tail_return = isinstance(nodes[-1], ast.Return)
        params = sorted(stored & before & (_loads(nodes) | read_after))
        returns = [] if tail_return else sorted(stored & read_after)
        unsure = [r for r in returns if r not in params and r not in _unconditionally_bound(nodes)]
        if unsure:
            return None
        name = self._fresh_name()
        stmts = [x[0] for x in run]
        lead = list(stmts[0].leading_lines)
        if not first_in_block and not any(line.comment is None for line in lead[:1]):
            lead.insert(0, cst.EmptyLine(indent=False))  # a blank line before a nested definition (PEP 8)
        stmts[0] = stmts[0].with_changes(leading_lines=[])
        if returns:
            stmts.append(cst.parse_statement(f"return {', '.join(returns)}\n"))
        fdef = cst.parse_statement(f"def {name}({', '.join(params)}):\n    pass\n")
        fdef = fdef.with_changes(body=fdef.body.with_changes(body=stmts), leading_lines=lead)
        if self.plan.thread_runner.startswith("bridge:"):  # the generated db_bridge.py (bridge_module.py)
            self._bridge_import = self.plan.thread_runner[len("bridge:"):]
            runner = "run_in_db_thread"
        elif self.plan.thread_runner == "asyncio":
            AddImportsVisitor.add_needed_import(self.context, "asyncio")
            runner = "asyncio.to_thread"
        else:
            AddImportsVisitor.add_needed_import(self.context, "starlette.concurrency", "run_in_threadpool")
            runner = "run_in_threadpool"
        call = f"await {runner}({', '.join([name, *params])})"
        if tail_return:
            line = f"return {call}\n"
        elif returns:
            line = f"{', '.join(returns)} = {call}\n"
        else:
            line = f"{call}\n"
        return [fdef, cst.parse_statement(line)]
