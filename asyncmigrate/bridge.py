"""The thread-pool bridge: plan how each coroutine that blocks the loop gets its blocking work off it.

``fix --strategy threadpool`` keeps the sync ORM code and moves it off the loop; ``--strategy auto`` does the
same on what the native rewrite leaves (issue 10).  From an :class:`~asyncmigrate.analysis.findings.Analysis`
of the code as it stands (the original, or the native rewrite's output) and the source text of each file, this
module finds the *roots*: ``async def`` functions outside tests that block the loop, through a blocks-loop
finding of their own or a call of a sync function that blocks.  Each root gets the cheapest correct bridge:

1. **demote** (``codemods/demote_to_def.py``): an ``async def`` that awaits nothing (no ``await``,
   ``async for``, ``async with``) becomes ``def``.  Only where the framework is the only caller and runs a
   ``def`` in its threadpool: a FastAPI/Starlette path operation (route decorator and no other decorator), a
   dependency (only ever named in ``Depends``/``Security``) or a background task (``add_task``); never a
   function any code calls or names elsewhere (someone may await it), and never one that calls ``asyncio``,
   ``anyio`` or ``trio`` (those need the running loop) or makes a coroutine of a project function;
2. **offload** (``codemods/offload_to_threadpool.py``): every other root keeps its ``async def``; its blocking
   statements move, one run of statements per call, into a local ``def`` awaited through
   ``run_in_threadpool`` (Starlette's, bounded by AnyIO's 40-token limiter) or ``asyncio.to_thread`` in a
   project without Starlette.  The runs are awaited one after the other, so a sync session the function holds
   is used by one thread at a time, never by two concurrently.  Where the project has a sync session factory,
   the runner is ``run_in_db_thread`` of a generated ``db_bridge.py`` beside its database module
   (``codemods/bridge_module.py``): an executor sized to the engine's pool.

What neither can take (a blocking call inside an ``await`` expression, a ``return`` in the middle of the
blocking statements...) is reported by the codemod with the reason.  Sync startup/shutdown handlers run on the
loop once, before requests; they are reported, not bridged.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from . import facts
from .analysis.findings import Analysis
from .analysis.index import MODULE_SCOPE
from .analysis.paths import is_test_file
from .codemods.base import FilePlan
from .migration import LeftForHuman
from .model import BLOCKS_LOOP

#: callables that hand a function to the framework, which runs a ``def`` in its threadpool
_FRAMEWORK_SINKS = frozenset({"Depends", "Security", facts.BACKGROUND_ADD_TASK, "add_api_route", "add_route"})
#: route decorators whose endpoint may be a ``def`` (websocket endpoints must be coroutines)
_SYNC_OK_ROUTES = facts.ROUTE_DECORATORS - {"websocket", "websocket_route"}
#: libraries whose calls need the running event loop
_LOOP_LIBRARIES = ("asyncio", "anyio", "trio")

DEMOTED = "async def → def (runs in the framework's threadpool)"
OFFLOADED = "blocking part awaited in the threadpool"


@dataclass
class BridgePlan:
    #: path -> the plan the bridge codemods read (``demote``, ``offload``, ``thread_runner``)
    files: dict[str, FilePlan] = field(default_factory=dict)
    #: (path, line, qualname, what it gets): one entry per root, for the summary
    components: list[tuple[str, int, str, str]] = field(default_factory=list)
    left: list[LeftForHuman] = field(default_factory=list)
    #: (path, text) of the generated bridge module (``codemods/bridge_module.py``) when offloaded code uses it
    module: Optional[tuple[str, str]] = None


def _function_nodes(tree: ast.Module) -> dict[str, ast.AST]:
    """qualname (as ``analysis/index.py`` spells it) -> function node."""
    out: dict[str, ast.AST] = {}

    def walk(body: Iterable[ast.stmt], prefix: str, in_def: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + node.name
                out[qual] = node
                walk(node.body, qual + ".<locals>.", True)
            elif isinstance(node, ast.ClassDef):
                walk(node.body, prefix + node.name + ".", in_def)
            else:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        walk([child], prefix, in_def)
    walk(tree.body, "", False)
    return out


def own_nodes(fn: ast.AST) -> Iterable[ast.AST]:
    """The nodes of ``fn``'s body that run in its own frame (not in nested functions, lambdas or classes)."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if node in getattr(fn, "decorator_list", ()) or node is getattr(fn, "args", None) \
                or node is getattr(fn, "returns", None):
            continue
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def awaits_anything(fn: ast.AST) -> bool:
    return any(isinstance(n, (ast.Await, ast.AsyncFor, ast.AsyncWith)) for n in own_nodes(fn))


def _call_name(node: ast.AST) -> Optional[str]:
    while isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _dotted(node: ast.AST) -> Optional[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _references(trees: Mapping[str, ast.Module], imports: Mapping[str, Mapping[str, str]], own_path: str,
                module: str, name: str, find_module) -> list[tuple[str, str]]:
    """Every place the function ``module.name`` is read in the project: (path, "sink" | "other").

    A bare name refers to it in its own file, or where it is imported from ``module``; ``x.name`` where ``x`` is
    imported as ``module``.  ``x.name`` on anything else (another module, an instance, a call's result) is
    another object's attribute: ``order_service.create_order`` is not the route ``create_order``.
    """
    out: list[tuple[str, str]] = []
    for path, tree in trees.items():
        names = imports.get(path, {})
        sinks: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node.func) in _FRAMEWORK_SINKS:
                for arg in list(node.args[:1]) + [k.value for k in node.keywords if k.arg in ("dependency",
                                                                                             "endpoint", "func")]:
                    sinks.add(id(arg))
        def project_module(dotted: str) -> Optional[str]:
            head, _, rest = dotted.partition(".")
            full = names.get(head)
            return find_module(f"{full}.{rest}" if rest else full) if full else None

        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
                full = names.get(name)
                hit = (path == own_path and full is None) or (
                    full is not None and full.endswith("." + name) and find_module(full.rpartition(".")[0]) == module)
            elif isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.ctx, ast.Load):
                receiver = _dotted(node.value)
                hit = receiver is not None and project_module(receiver) == module
            else:
                continue
            if hit:
                out.append((path, "sink" if id(node) in sinks else "other"))
    return out


class _Planner:
    def __init__(self, analysis: Analysis, contents: Mapping[str, bytes], scope: Optional[set[str]],
                 database=None):
        self.analysis = analysis
        self.database = database
        self.project = analysis.project
        self.graph = analysis.graph
        self.scope = scope
        self.trees: dict[str, ast.Module] = {}
        for path, data in contents.items():
            try:
                self.trees[path] = ast.parse(data)
            except (SyntaxError, ValueError):
                continue
        self.imports = {fs.path: dict(fs.imports) for fs in self.project.files}
        self._nodes: dict[str, dict[str, ast.AST]] = {}
        self._blocking_memo: dict[str, bool] = {}
        self.plan = BridgePlan()
        self.uses_starlette = any(
            isinstance(n, (ast.Import, ast.ImportFrom)) and any(
                (getattr(n, "module", None) or a.name).split(".")[0] in ("fastapi", "starlette") for a in n.names)
            for tree in self.trees.values() for n in ast.walk(tree))

    def node(self, fid: str) -> Optional[ast.AST]:
        fn = self.project.functions[fid]
        path = fn.file.path
        if path not in self._nodes:
            tree = self.trees.get(path)
            self._nodes[path] = _function_nodes(tree) if tree is not None else {}
        return self._nodes[path].get(fn.summary.qualname)

    def own_blocking_lines(self, fid: str) -> set[int]:
        return {f.span.line for f in self.analysis.by_function.get(fid, ()) if f.severity == BLOCKS_LOOP}

    def blocks(self, fid: str, depth: int = 0) -> bool:
        """A sync function that blocks when called: a blocks-loop finding of its own or in what it calls."""
        if fid in self._blocking_memo:
            return self._blocking_memo[fid]
        self._blocking_memo[fid] = False  # cycles
        hit = bool(self.own_blocking_lines(fid)) or (depth < 50 and any(
            not call.in_lambda and not self.project.functions[callee].summary.is_async and self.blocks(callee, depth + 1)
            for callee, call in self.graph.edges.get(fid, ())))
        self._blocking_memo[fid] = hit
        return hit

    def blocking_lines(self, fid: str) -> set[int]:
        """Lines of the coroutine ``fid`` that block: its own findings and calls of sync functions that block."""
        lines = self.own_blocking_lines(fid)
        for callee, call in self.graph.edges.get(fid, ()):
            if call.awaited or call.in_lambda:
                continue
            if not self.project.functions[callee].summary.is_async and self.blocks(callee):
                lines.add(call.span.line)
        return lines

    # ------------------------------------------------------------- demotion
    def why_not_demote(self, fid: str, node: ast.AST) -> Optional[str]:
        fn = self.project.functions[fid]
        s = fn.summary
        if s.class_qualname or "." in s.qualname:
            return "a method or nested function"
        if awaits_anything(node):
            return "it awaits"
        for callee, call in self.graph.edges.get(fid, ()):
            if self.project.functions[callee].summary.is_async:
                return f"it calls the coroutine function {self.project.functions[callee].display}"
        for call in s.calls:
            target = self.project.call_target(call, fid)
            if target is not None and target[0] == "ext" and target[1].split(".")[0] in _LOOP_LIBRARIES:
                return f"it calls {target[1]}, which needs the running event loop"
        if self.graph.callers.get(fid):
            return "project code calls it (it may be awaited)"
        route = False
        for deco in node.decorator_list:
            name = _call_name(deco) if isinstance(deco, ast.Call) else None
            if name in _SYNC_OK_ROUTES:
                route = True
            else:
                return f"decorated with @{ast.unparse(deco)}, which may need a coroutine function"
        refs = _references(self.trees, self.imports, fn.file.path, fn.file.module, s.name, self.project.find_module)
        if any(kind == "other" for _, kind in refs):
            return "it is named outside Depends()/add_task() (it may be awaited)"
        if not route and not refs:
            return "nothing runs it through the framework"
        if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own_nodes(node)) and route:
            return "a route that yields"
        return None

    # ------------------------------------------------------------- the plan
    def run(self) -> BridgePlan:
        per_file: dict[str, dict] = {}
        roots = []
        for fid, fn in self.project.functions.items():
            path = fn.file.path
            if fn.summary.qualname == MODULE_SCOPE or is_test_file(path):
                continue
            if self.scope is not None and path not in self.scope:
                continue
            if not fn.summary.is_async:
                if self.graph.loop_chain.get(fid) == (fid,) and self.own_blocking_lines(fid):
                    self.plan.left.append(LeftForHuman(path, fn.summary.span.line,
                                                       f"{fn.summary.qualname}: a sync startup/shutdown handler "
                                                       "runs on the loop once, before requests; not bridged"))
                continue
            lines = self.blocking_lines(fid)
            if lines:
                roots.append((fid, lines))
        for fid, lines in sorted(roots):
            fn = self.project.functions[fid]
            path, qual = fn.file.path, fn.summary.qualname
            node = self.node(fid)
            if node is None or not isinstance(node, ast.AsyncFunctionDef):
                continue
            # a finding on the signature (``db: Session = Depends(get_db)``) is the session the body uses: with
            # nothing in the body that blocks, the coroutine only hands the session on (to coroutines)
            lines = {line for line in lines if line >= node.body[0].lineno}
            if not lines:
                continue
            entry = per_file.setdefault(path, {"module": fn.file.module, "demote": set(), "offload": {}})
            if self.why_not_demote(fid, node) is None:
                entry["demote"].add(qual)
                self.plan.components.append((path, node.lineno, qual, DEMOTED))
            else:
                entry["offload"][qual] = frozenset(lines)
                self.plan.components.append((path, node.lineno, qual, OFFLOADED))
        runner = "starlette" if self.uses_starlette else "asyncio"
        db = self.database
        if db is not None and db.factory and any(e["offload"] for e in per_file.values()):
            import os

            from .codemods.bridge_module import render

            package = db.dotted.rpartition(".")[0]
            module = f"{package}.db_bridge" if package else "db_bridge"
            self.plan.module = (os.path.join(os.path.dirname(db.path), "db_bridge.py"),
                                render(db.dotted, db.factory, db.engine))
            runner = f"bridge:{module}"
        for path, entry in per_file.items():
            self.plan.files[path] = FilePlan(module=entry["module"], demote=frozenset(entry["demote"]),
                                             offload=dict(entry["offload"]), thread_runner=runner)
        return self.plan


def plan_bridges(analysis: Analysis, contents: Mapping[str, bytes], scope: Optional[set[str]] = None,
                 database=None) -> BridgePlan:
    """The bridge for every coroutine that blocks the loop in ``analysis`` (of the code in ``contents``);
    ``database`` (``migration.DatabaseModule``): where the generated bridge module goes, on whose factory."""
    return _Planner(analysis, contents, scope, database).run()
