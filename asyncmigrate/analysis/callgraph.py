"""Call graph and async context: which code runs on the event loop, and why.

An ``async def`` always runs on the loop.  A sync function runs on the loop
when an ``async def`` calls it directly, or through other sync functions,
across modules (``Project.callee`` resolves each call).  Calls are edges;
*references* are not: ``BackgroundTasks.add_task(fn)``,
``run_in_threadpool(fn)``, ``asyncio.to_thread(fn)``, ``Depends(fn)`` hand a
function to something that runs it elsewhere (a worker thread for sync
code), so they never put ``fn`` on the loop.  That is exactly FastAPI's rule
(SQLALCHEMY_ASYNC.md §5): ``def`` routes and sync dependencies run in a
threadpool.

:class:`CallGraph` computes, once per scan:

* ``edges[fid]``: project functions ``fid`` calls, with the call site;
* ``loop_chain[fid]``: for every function that runs on the loop, the shortest
  chain of calls from an ``async def`` to it (the finding's ``chain``);
* ``callers[fid]``: the reverse edges (for async propagation in ``fix``).

A function replaced by a decorator's wrapper (``analysis/wrappers.py``) is called through it: a caller on
the loop puts the wrapper and that function on the loop (chain ``caller → wrapper → function``), and the
wrapper's own calls of the functions it wraps never do, so each decorated function's place follows its own
callers.

A function handed to a thread-pool runner, or decorated by a bridging decorator (``analysis/bridges.py``),
runs in a worker thread: a call of it never puts it on the loop.  ``thread_chain[fid]`` is, for every function
off the loop that such a hand-off reaches (directly or through the sync functions it calls), the shortest
chain that gets there: ``async caller → runner → function → ...`` (the chain of its debt findings).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional

from .. import facts
from ..model import CallSite
from .paths import is_test_file
from .sessions import Project


@dataclass
class CallGraph:
    project: Project
    edges: dict[str, list[tuple[str, CallSite]]] = field(default_factory=dict)
    callers: dict[str, list[tuple[str, CallSite]]] = field(default_factory=dict)
    loop_chain: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: functions off the loop that run in a worker thread -> display chain, outermost first
    thread_chain: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, project: Project) -> "CallGraph":
        graph = cls(project)
        for fid, fn in project.functions.items():
            out: list[tuple[str, CallSite]] = []
            for call in fn.summary.calls:
                callee = project.callee(call, fid)
                if callee is not None and callee != fid:
                    out.append((callee, call))
                    graph.callers.setdefault(callee, []).append((fid, call))
            graph.edges[fid] = out
        # a wrapper calls the functions it wraps through its parameter (``func(session, *args)``)
        for wrapper, _ in project.wrappers.calls.items():
            for callee, call in project.wrappers.edges(wrapper):
                graph.edges.setdefault(wrapper, []).append((callee, call))
                graph.callers.setdefault(callee, []).append((wrapper, call))
        graph._propagate_loop()
        graph._propagate_threads()
        return graph

    def _propagate_loop(self) -> None:
        fns = self.project.functions
        wrapped_by = self.project.wrappers.wrapped_by
        bridged_by = self.project.bridges.bridged_by
        passes = self.project.bridges.passes
        queue: deque[str] = deque()
        for fid, fn in fns.items():
            if fn.summary.is_async or self._loop_hook(fn.summary):
                self.loop_chain[fid] = (fid,)
                queue.append(fid)
        while queue:
            fid = queue.popleft()
            chain = self.loop_chain[fid]
            from_test = self._is_test(fid)
            for callee, call in self.edges.get(fid, ()):
                if call.in_lambda or callee in self.loop_chain and callee not in wrapped_by:
                    continue
                if fid == wrapped_by.get(callee):
                    continue  # a wrapper runs each function it wraps only when *that* function is called
                if callee in bridged_by:
                    continue  # its wrapper (async, on the loop already) runs it in a worker thread
                if from_test and not self._is_test(callee):
                    # an async test calling production code runs it on the *test's* loop: that says nothing
                    # about production, where severity must come from production callers
                    continue
                wrapper = wrapped_by.get(callee)
                if wrapper is not None and wrapper not in self.loop_chain:
                    # calling a decorated function runs its wrapper first, on the caller's side
                    self.loop_chain[wrapper] = chain + (wrapper,)
                    queue.append(wrapper)
                if callee in self.loop_chain or fns[callee].summary.is_async:
                    continue  # already reached, or a root
                self.loop_chain[callee] = chain + ((wrapper,) if wrapper else ()) + (callee,)
                queue.append(callee)
            for helper, target, call in passes.get(fid, ()):
                # a function handed to a helper that calls it runs where the helper runs: here, on the loop
                if target in self.loop_chain or fns[target].summary.is_async or helper in bridged_by:
                    continue
                if from_test and not self._is_test(target):
                    continue
                self.loop_chain[target] = chain + (helper, target)
                queue.append(target)

    def _propagate_threads(self) -> None:
        """Breadth first from every hand-off to a worker thread, through sync calls, staying off the loop."""
        project = self.project
        fns = project.functions
        bridges = project.bridges
        queue: deque[str] = deque()

        def base(fid: str) -> tuple[str, ...]:
            if fid in self.loop_chain:
                return self.display_chain(fid)
            return self.thread_chain.get(fid) or (fns[fid].display,)

        def reach(fid: str, target: str, via: tuple[str, ...]) -> None:
            if target in self.loop_chain or target in self.thread_chain or fns[target].summary.is_async:
                return
            self.thread_chain[target] = base(fid) + via + (fns[target].display,)
            queue.append(target)

        def hand_offs(fid: str) -> None:
            for handoff in bridges.handoffs.get(fid, ()):
                for target in handoff.targets:
                    reach(fid, target, (handoff.runner,))
            for callee, call in self.edges.get(fid, ()):
                wrapper = bridges.bridged_by.get(callee)
                if wrapper is not None and not call.in_lambda:
                    reach(fid, callee, (fns[wrapper].display,))

        def drain() -> None:
            while queue:
                fid = queue.popleft()
                for callee, call in self.edges.get(fid, ()):
                    if call.in_lambda or callee in bridges.bridged_by or fid == wrapped_by.get(callee):
                        continue
                    wrapper = wrapped_by.get(callee)
                    reach(fid, callee, (fns[wrapper].display,) if wrapper is not None else ())
                for helper, target, _call in bridges.passes.get(fid, ()):
                    reach(fid, target, (fns[helper].display,))
                hand_offs(fid)

        wrapped_by = project.wrappers.wrapped_by
        for fid in sorted(self.loop_chain, key=lambda f: len(self.loop_chain[f])):
            hand_offs(fid)
        drain()
        for fid in fns:
            if fid not in self.loop_chain and fid not in self.thread_chain:
                hand_offs(fid)  # a sync caller reached from nowhere known (a script, a ``def`` route)
                drain()

    def in_thread(self, fid: str) -> bool:
        """``fid`` runs off the loop, in a worker thread that a hand-off to a runner reaches."""
        return fid in self.thread_chain and fid not in self.loop_chain

    def _is_test(self, fid: str) -> bool:
        return is_test_file(self.project.functions[fid].file.path)

    @staticmethod
    def _loop_hook(fn) -> bool:
        """Sync ``@app.on_event(...)`` handlers: FastAPI's async startup calls them directly, on the loop."""
        return any(d is not None and d[0] == "a" and d[2] in facts.LOOP_HOOK_DECORATORS for d in fn.decorator_calls)

    def on_loop(self, fid: str) -> bool:
        return fid in self.loop_chain

    def chain(self, fid: str) -> tuple[str, ...]:
        return self.loop_chain.get(fid, ())

    def display_chain(self, fid: str) -> tuple[str, ...]:
        return tuple(self.project.display(f) for f in self.chain(fid))

    def transitive_callers(self, targets: set[str], stop: Optional[set[str]] = None) -> set[str]:
        """Every function that reaches one of ``targets`` through direct calls."""
        seen = set(targets)
        queue = deque(targets)
        while queue:
            fid = queue.popleft()
            for caller, _call in self.callers.get(fid, ()):
                if caller in seen or (stop and caller in stop):
                    continue
                seen.add(caller)
                queue.append(caller)
        return seen
