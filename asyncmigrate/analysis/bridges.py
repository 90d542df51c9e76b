"""Thread-pool bridges: code handed to a worker thread runs off the event loop (issue 10).

A *runner* takes a callable and runs it in a worker thread; the awaiting coroutine waits without blocking
the loop::

    await run_in_threadpool(crud.get_user, db, 1)            # starlette / fastapi.concurrency
    await asyncio.to_thread(crud.get_user, db, 1)
    await anyio.to_thread.run_sync(crud.get_user, db, 1)
    await loop.run_in_executor(executor, partial(crud.get_user, db, 1))
    await loop.run_in_executor(None, lambda: db.query(User).all())
    background_tasks.add_task(crud.get_user, db, 1)          # Starlette runs a sync task in its threadpool

The runners of the standard library and Starlette/AnyIO are facts (``facts.THREADPOOL_RUNNERS``,
``run_in_executor`` on an event loop).  A *project* runner is found by following its code, never by its name:
a function one of whose parameters reaches a runner's callable argument (directly, through
``functools.partial``, a lambda that calls it, or a nested function handed to a runner that calls it) runs
that parameter in a thread, and so is a runner for the argument at that position::

    async def run_in_db_thread(fn, *args):                   # a project runner: ``fn`` reaches run_in_executor
        return await loop.run_in_executor(_pool, partial(fn, *args))

A *bridging decorator* is a decorator whose first parameter (the decorated function) is run in a thread by
the wrapper it returns (``async_db_operation``; ``to_async_db_oper``'s methods are found the same way where
they can be, and are at least never put on the loop).  Calling the decorated function runs the wrapper on the
caller's side and the function in the pool.

What this gives the call graph (``CallGraph``):

* ``handoffs[fid]``: the runner calls written in ``fid``, with the project functions each runs in the pool
  (``Handoff.targets``) and the span whose lambdas run there;
* ``bridged_by[F] = W``: calling ``F`` runs wrapper ``W`` here and ``F`` in the pool, so a call of ``F``
  never puts ``F`` on the loop;
* ``passes[fid]``: the opposite case, a function handed to a project helper that *calls* it
  (``async def run_in_thread(fn, *a): return fn(*a)``, whatever its name): it runs where the helper runs,
  on the loop when the caller is on it.

Functions reached only through a bridge are off the loop: their findings are debt, and their chain names the
bridge (``caller → run_in_threadpool → function``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterator, Optional

from .. import facts
from ..model import CallSite, Expr, Span
from .index import MODULE_SCOPE
from .wrappers import _decorator_scope

if TYPE_CHECKING:
    from .sessions import Project

#: ``loop.run_in_executor(executor, fn, *args)``: an event loop's method (``asyncio.AbstractEventLoop``)
_RUN_IN_EXECUTOR = "run_in_executor"
#: runners whose callable is their first positional argument
_FIRST_ARG_RUNNERS = facts.THREADPOOL_RUNNERS - {"asyncio.loop.run_in_executor", "threading.Thread"}
_PARTIAL = frozenset({"functools.partial"})
#: pools whose ``submit(fn, *args)`` runs ``fn`` in another thread or process; only ``await
#: asyncio.wrap_future(pool.submit(fn))`` leaves the loop free meanwhile (``.result()`` or ``pool.map`` wait on
#: the calling thread, which may be the loop's)
_EXECUTORS = {"concurrent.futures.ThreadPoolExecutor": "ThreadPoolExecutor",
              "concurrent.futures.thread.ThreadPoolExecutor": "ThreadPoolExecutor",
              "concurrent.futures.ProcessPoolExecutor": "ProcessPoolExecutor",
              "concurrent.futures.process.ProcessPoolExecutor": "ProcessPoolExecutor"}
_WRAP_FUTURE = frozenset({"asyncio.wrap_future", "asyncio.futures.wrap_future"})
#: runners whose keyword arguments are their own (``limiter=``, ``cancellable=``; ``run_in_executor`` takes none)
_OWN_KEYWORDS = frozenset({"anyio.to_thread.run_sync", "loop.run_in_executor", "threading.Thread"})
_MAX_ROUNDS = 8


@dataclass(frozen=True)
class Handoff:
    """A runner call: ``call`` in the function that writes it runs ``targets`` (and its lambdas) in a thread."""

    call: CallSite
    #: what runs the callable: a qualified name (``starlette.concurrency.run_in_threadpool``) or a project
    #: function's display name (``app.db_bridge.run_in_db_thread``)
    runner: str
    #: project functions it runs in the worker thread
    targets: tuple[str, ...] = ()


@dataclass
class Bridges:
    #: project runner -> names of its parameters that it runs in a worker thread
    thread_params: dict[str, frozenset[str]] = field(default_factory=dict)
    #: decorated function -> the wrapper that runs it in a worker thread
    bridged_by: dict[str, str] = field(default_factory=dict)
    #: function -> its runner calls
    handoffs: dict[str, list[Handoff]] = field(default_factory=dict)
    #: function -> ``(helper, function it hands the helper, call)`` for helpers that call that parameter
    passes: dict[str, list[tuple[str, str, CallSite]]] = field(default_factory=dict)
    #: ``(function, call, target)``: the call the worker thread makes, as if written in ``function``:
    #: ``run_in_threadpool(get_user, db, 1)`` is ``get_user(db, 1)`` (session provenance flows through it)
    flows: list[tuple[str, CallSite, str]] = field(default_factory=list)

    def at(self, fid: str, span: Span) -> Optional[Handoff]:
        """The runner call in ``fid`` whose callable argument contains ``span`` (a lambda's call), if any."""
        for h in self.handoffs.get(fid, ()):
            if _inside(span, h.call.span):
                return h
        return None


def _inside(inner: Span, outer: Span) -> bool:
    return inner != outer and (outer.line, outer.column) <= (inner.line, inner.column) \
        and (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column)


class _Finder:
    def __init__(self, project: "Project"):
        self.project = project
        self.thread_params: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ runners
    def callable_arg(self, call: CallSite, fid: str) -> Optional[tuple[Expr, str, int]]:
        """``(callable argument, runner name, index of the first argument passed on)`` when ``call`` runs a
        callable in a worker thread.  The index is -1 when no positional arguments are passed on."""
        project = self.project
        target = project.call_target(call, fid)
        func = call.func
        if target is not None and target[0] == "ext":
            qn = target[1]
            if qn in _FIRST_ARG_RUNNERS and call.args:
                return call.args[0], qn, 1
            if qn == "threading.Thread":
                kw = dict(call.kwargs)
                return (kw["target"], qn, -1) if "target" in kw else None
        if func is not None and func[0] == "a" and func[2] == _RUN_IN_EXECUTOR and len(call.args) >= 2 \
                and (target is None or target[0] == "ext"):
            # an event loop's method; a project class's own ``run_in_executor`` is followed as project code
            return call.args[1], "loop.run_in_executor", 2
        if func is not None and func[0] == "a" and func[2] == facts.BACKGROUND_ADD_TASK and call.args \
                and (target is None or target[0] == "ext"):
            return call.args[0], "BackgroundTasks.add_task", 1
        if func is not None and func[0] == "a" and func[2] == "submit" and call.args \
                and (target is None or target[0] == "ext") and self._wrapped(fid, call):
            pool = self._executor(fid, func[1])
            if pool is not None:
                return call.args[0], f"{pool}.submit", 1
        callee = project.callee(call, fid)
        if callee is not None and callee in self.thread_params:
            names = self.thread_params[callee]
            fn = project.functions[callee].summary
            offset = project._bound_offset(call, fid, callee)
            for p in fn.params:
                if p.name not in names:
                    continue
                if p.index >= 0 and p.index - offset >= 0 and p.index - offset < len(call.args) \
                        and call.args[p.index - offset] is not None:
                    return call.args[p.index - offset], project.functions[callee].display, p.index - offset + 1
                for k, v in call.kwargs:
                    if k == p.name:
                        return v, project.functions[callee].display, -1
        return None

    def _wrapped(self, fid: str, call: CallSite) -> bool:
        """``call`` is the argument of ``asyncio.wrap_future(...)``."""
        for c in self.project.functions[fid].summary.calls:
            if c.args and c.args[0] == ("c", call.func) and _inside(call.span, c.span):
                v = self.project.call_target(c, fid)
                if v is not None and v[0] == "ext" and v[1] in _WRAP_FUTURE:
                    return True
        return False

    def _executor(self, fid: str, expr: Expr) -> Optional[str]:
        """``"ThreadPoolExecutor"`` when ``expr`` names a pool made by ``concurrent.futures`` (a local, a module
        variable or ``self.attr``, assigned or bound by ``with``)."""
        project = self.project
        if expr is None:
            return None
        sources: list[tuple[Expr, str]] = []
        if expr[0] == "n":
            name, scope = expr[1], fid
            while True:
                fn = project.functions[scope].summary
                if name in project._fn_locals.get(scope, {}):
                    sources = [(s, scope) for s in project._fn_locals[scope][name]]
                    break
                if any(p.name == name for p in fn.params) or ".<locals>." not in fn.qualname:
                    break
                outer = f"{project.module_of(scope)}:{fn.qualname.rsplit('.<locals>.', 1)[0]}"
                if outer not in project.functions:
                    break
                scope = outer
            if not sources:
                mod = project.module_of(fid)
                sources = [(s, f"{mod}:{MODULE_SCOPE}") for s in project._module_vars.get(mod, {}).get(name, ())]
        elif expr[0] == "a":
            base = project.value(expr[1], fid)
            if base is not None and base[0] == "instance":
                for c in project.mro(base[1]):
                    sources.extend((s, "") for a, s in project._class_attr_sources.get(c, ()) if a == expr[2])
        for src, scope in sources:
            while src is not None and src[0] in ("in", "with"):
                if src[0] == "in":
                    scope, src = src[1], src[2]
                else:
                    src = src[1]
            if src is None or src[0] != "c" or not scope:
                continue
            v = project.value(src[1], scope)
            if v is not None and v[0] == "ext" and v[1] in _EXECUTORS:
                return _EXECUTORS[v[1]]
        return None

    # ------------------------------------------------------------------ what a callable argument runs
    def _inner_call(self, fid: str, outer: CallSite, expr: Expr) -> Optional[CallSite]:
        if expr is None or expr[0] != "c":
            return None
        for c in self.project.functions[fid].summary.calls:
            if c is not outer and ("c", c.func) == expr and _inside(c.span, outer.span):
                return c
        return None

    def callables(self, fid: str, call: CallSite, arg: Expr) -> Iterator[Expr]:
        """The expressions that name what runs: the argument, or what ``partial(...)`` binds, repeatedly."""
        seen = 0
        while arg is not None and seen < 4:
            seen += 1
            yield arg
            inner = self._inner_call(fid, call, arg)
            if inner is None or not inner.args:
                return
            v = self.project.call_target(inner, fid)
            if not (v is not None and v[0] == "ext" and v[1] in _PARTIAL):
                return
            call, arg = inner, inner.args[0]

    def flow(self, fid: str, call: CallSite, found: tuple[Expr, str, int]) -> Optional[tuple[CallSite, str]]:
        """The call the worker thread makes: the callable (through ``partial``) with the arguments bound to it."""
        arg, runner, rest = found
        args: tuple = tuple(call.args[rest:]) if rest >= 0 else ()
        kwargs: tuple = () if runner in _OWN_KEYWORDS else tuple(kw for kw in call.kwargs if kw[0] != "target")
        star = call.star_kwargs
        outer = call
        for _ in range(4):
            inner = self._inner_call(fid, outer, arg)
            v = self.project.call_target(inner, fid) if inner is not None and inner.args else None
            if not (v is not None and v[0] == "ext" and v[1] in _PARTIAL):
                break
            args = tuple(inner.args[1:]) + args
            kwargs = tuple(inner.kwargs) + kwargs
            star = star or inner.star_kwargs
            outer, arg = inner, inner.args[0]
        target = _function_of(self.project, self.project.value(arg, fid))
        if target is None:
            return None
        return replace(call, func=arg, args=args, kwargs=kwargs, star_kwargs=star, in_lambda=False), target

    def targets(self, fid: str, call: CallSite, arg: Expr) -> list[str]:
        """Project functions a runner call runs: the callable's function, and what its lambdas call.

        A class handed to a project runner that makes its instances in the worker (``to_async_db_oper(UserOper)``
        derives a class whose methods build a ``UserOper`` and call the method asked for in a thread) has all its
        methods run there; a standard runner given a class only runs its constructor."""
        project = self.project
        out: list[str] = []
        helper = project.callee(call, fid)
        for expr in self.callables(fid, call, arg):
            v = project.value(expr, fid)
            f = _function_of(project, v)
            if f is not None:
                out.append(f)
            if v is not None and v[0] == "class" and helper is not None and helper in self.thread_params:
                for c in project.mro(v[1]):
                    out.extend(f"{c}.{m}" for m in project.classes[c][1].methods if f"{c}.{m}" in project.functions)
        for c in project.functions[fid].summary.calls:
            if c.in_lambda and _inside(c.span, call.span):
                f = project.callee(c, fid)
                if f is not None:
                    out.append(f)
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ project runners (fixed point)
    def _owner(self, fid: str, name: str) -> Optional[str]:
        """The function whose parameter ``name`` is, seen from ``fid`` (itself or an enclosing function)."""
        project = self.project
        while True:
            fn = project.functions[fid].summary
            if fn.qualname == MODULE_SCOPE:
                return None
            if any(p.name == name for p in fn.params):
                return fid
            if name in dict(fn.assigns) or name in dict(fn.annotations):
                return None
            if ".<locals>." not in fn.qualname:
                return None
            outer = f"{project.module_of(fid)}:{fn.qualname.rsplit('.<locals>.', 1)[0]}"
            if outer not in project.functions:
                return None
            fid = outer

    def _nested(self, fid: str) -> list[str]:
        return nested_functions(self.project, fid)

    def _runs(self, fid: str, call: CallSite, arg: Expr) -> set[tuple[str, str]]:
        """``(owner, parameter)`` pairs a runner call runs in the thread: the parameter itself, or a lambda or a
        nested function that calls it."""
        project = self.project
        out: set[tuple[str, str]] = set()

        def called_params(f: str, calls) -> None:
            for c in calls:
                if c.func is not None and c.func[0] == "n":
                    owner = self._owner(f, c.func[1])
                    if owner is not None:
                        out.add((owner, c.func[1]))

        for expr in self.callables(fid, call, arg):
            if expr[0] == "n":
                owner = self._owner(fid, expr[1])
                if owner is not None:
                    out.add((owner, expr[1]))
                    continue
            v = project.value(expr, fid)
            if v is not None and v[0] == "func" and ".<locals>." in project.functions[v[1]].summary.qualname:
                for f in (v[1], *self._nested(v[1])):
                    called_params(f, project.functions[f].summary.calls)
        called_params(fid, [c for c in project.functions[fid].summary.calls
                            if c.in_lambda and _inside(c.span, call.span)])
        return out

    def solve(self) -> None:
        project = self.project
        candidates = [fid for fid, fn in project.functions.items() if fn.summary.calls]
        for _ in range(_MAX_ROUNDS):
            changed = False
            for fid in candidates:
                for call in project.functions[fid].summary.calls:
                    if not call.args and not call.kwargs:
                        continue
                    found = self.callable_arg(call, fid)
                    if found is None:
                        continue
                    for owner, name in self._runs(fid, call, found[0]):
                        names = self.thread_params.setdefault(owner, set())
                        if name not in names:
                            names.add(name)
                            changed = True
            if not changed:
                return


def _function_of(project: "Project", v) -> Optional[str]:
    if v is None:
        return None
    if v[0] == "func":
        return v[1]
    if v[0] == "method":
        return v[2]
    if v[0] == "class":
        return project.find_method(v[1], "__init__")
    if v[0] == "instance":
        return project.find_method(v[1], "__call__")
    return None


def _param_callers(project: "Project") -> dict[str, frozenset[str]]:
    """Functions that call one of their own parameters in their own body: ``fn(*args)``."""
    out: dict[str, frozenset[str]] = {}
    for fid, fn in project.functions.items():
        params = {p.name for p in fn.summary.params}
        if not params:
            continue
        rebound = dict(fn.summary.assigns)
        called = frozenset(c.func[1] for c in fn.summary.calls if not c.in_lambda and c.func is not None
                           and c.func[0] == "n" and c.func[1] in params and c.func[1] not in rebound)
        if called:
            out[fid] = called
    return out


def _arguments(project: "Project", call: CallSite, fid: str, callee: str, names: frozenset[str]) -> list[Expr]:
    """The arguments of ``call`` that land on ``callee``'s parameters named ``names``."""
    offset = project._bound_offset(call, fid, callee)
    out: list[Expr] = []
    for p in project.functions[callee].summary.params:
        if p.name not in names:
            continue
        i = p.index - offset
        if p.index >= 0 and 0 <= i < len(call.args) and call.args[i] is not None:
            out.append(call.args[i])
        out.extend(v for k, v in call.kwargs if k == p.name and v is not None)
    return out


def _bridging_wrapper(project: "Project", finder: _Finder, decorator: str) -> Optional[str]:
    """The nested function ``decorator`` returns, when it runs ``decorator``'s first parameter in a thread."""
    fn = project.functions[decorator].summary
    positional = [p for p in fn.params if p.index >= 0]
    if not positional or positional[0].name not in finder.thread_params.get(decorator, ()):
        return None
    prefix = f"{decorator}.<locals>."
    for ret in fn.returns:
        v = project.value(ret, decorator)
        if v and v[0] == "func" and v[1].startswith(prefix):
            return v[1]
    return None


def find_bridges(project: "Project") -> Bridges:
    finder = _Finder(project)
    finder.solve()
    out = Bridges(thread_params={f: frozenset(n) for f, n in finder.thread_params.items()})
    for fid, fn in project.functions.items():
        for call in fn.summary.calls:
            if not call.args and not call.kwargs:
                continue
            found = finder.callable_arg(call, fid)
            if found is None:
                continue
            out.handoffs.setdefault(fid, []).append(
                Handoff(call, found[1], tuple(finder.targets(fid, call, found[0]))))
            flow = finder.flow(fid, call, found)
            if flow is not None and (flow[0].args or flow[0].kwargs):
                out.flows.append((fid, *flow))
    callers_of_params = _param_callers(project)
    for fid, fn in project.functions.items():
        for call in fn.summary.calls:
            if call.in_lambda or not call.args and not call.kwargs:
                continue
            helper = project.callee(call, fid)
            names = callers_of_params.get(helper) if helper is not None else None
            if not names:
                continue
            for arg in _arguments(project, call, fid, helper, names):
                target = _function_of(project, project.value(arg, fid))
                if target is not None:
                    out.passes.setdefault(fid, []).append((helper, target, call))
    wrapped_by = project.wrappers.wrapped_by
    for fid, fn in project.functions.items():
        decorators = fn.summary.decorators
        if not decorators or fid in wrapped_by:
            continue  # a wrapper that calls the function itself runs it where it is called
        scope = _decorator_scope(project, fid)
        for dec in reversed(decorators):  # innermost first
            v = project.value(dec, scope) if dec is not None else None
            if not (v and v[0] == "func"):
                continue
            target = v[1]
            if dec in fn.summary.decorator_calls:
                made = project.returns_value(target)
                if not (made and made[0] == "func"):
                    continue
                target = made[1]
            wrapper = _bridging_wrapper(project, finder, target)
            if wrapper is not None:
                out.bridged_by[fid] = wrapper
                break
    return out


def _mentions(expr, name: str) -> bool:
    """``expr`` reads the bare name ``name`` (``db``, ``db.info``, ``f(db)``'s callee expression...)."""
    if not isinstance(expr, tuple) or not expr:
        return False
    if expr[0] == "n":
        return expr[1] == name
    if expr[0] == "in":
        return False  # evaluated in another function's scope
    return any(_mentions(e, name) for e in expr[1:] if isinstance(e, tuple))


def _uses(call: CallSite, name: str) -> bool:
    return _mentions(call.func, name) or any(_mentions(a, name) for a in call.args) \
        or any(_mentions(v, name) for _k, v in call.kwargs)


def nested_functions(project: "Project", fid: str) -> list[str]:
    """Functions defined inside ``fid``, at any depth."""
    index = project.__dict__.get("_nested_index")
    if index is None:
        index = {}
        for f, fn in project.functions.items():
            q = fn.summary.qualname
            while ".<locals>." in q:
                q = q.rsplit(".<locals>.", 1)[0]
                index.setdefault(f"{project.module_of(f)}:{q}", []).append(f)
        project.__dict__["_nested_index"] = index
    return index.get(fid, [])


def _is_partial(project: "Project", call: CallSite, fid: str) -> bool:
    v = project.call_target(call, fid)
    return v is not None and v[0] == "ext" and v[1] in _PARTIAL


def bridged_only(project: "Project", graph, fid: str, name: str) -> Optional[str]:
    """When every use of parameter ``name`` of ``fid`` (on the loop) is inside a bridge, the first such bridge's
    runner; None when some use runs on the loop, or nothing uses it through a bridge.

    Uses are the calls that read the name, the values bound from it, what is returned, attribute reads, and the
    same in the functions nested in ``fid`` that close over it.  A use in a runner's call (``run_in_threadpool(fn,
    db)``), in a lambda handed to a runner, or in a nested function that runs in a worker thread is bridged; a
    call evaluated in a runner's argument list (``run_in_threadpool(load(db))``) runs on the loop.
    """
    project_bridges = project.bridges
    handoffs = project_bridges.handoffs.get(fid, ())
    fn = project.functions[fid].summary
    runner: Optional[str] = None
    for call in fn.calls:
        if not _uses(call, name):
            continue
        own = next((h for h in handoffs if h.call is call), None)
        if own is not None:
            if _mentions(call.func, name):
                return None  # ``db.run(...)``: a method of the session itself
            runner = runner or own.runner
            continue
        around = next((h for h in handoffs if _inside(call.span, h.call.span)), None)
        if around is not None and (call.in_lambda or _is_partial(project, call, fid)):
            runner = runner or around.runner  # a lambda the worker runs, or ``partial(fn, db)`` that binds it
            continue
        callee = project.callee(call, fid) if not call.in_lambda else None
        wrapper = project_bridges.bridged_by.get(callee) if callee is not None else None
        if wrapper is not None and not _mentions(call.func, name):
            runner = runner or project.functions[wrapper].display  # a function a bridging decorator runs
            continue
        return None
    if any(_mentions(b.value, name) for b in fn.bindings) or any(_mentions(r, name) for r in fn.returns) \
            or any(n == name for n, _attr, _line in fn.attribute_reads):
        return None
    finder = _Finder(project)
    for nested in nested_functions(project, fid):
        s = project.functions[nested].summary
        if not (any(_uses(c, name) for c in s.calls) or any(_mentions(b.value, name) for b in s.bindings)
                or any(_mentions(r, name) for r in s.returns) or any(n == name for n, _a, _l in s.attribute_reads)):
            continue
        if finder._owner(nested, name) != fid:
            continue  # its own parameter or local of that name
        if graph.on_loop(nested):
            return None
        if nested in graph.thread_chain:
            chain = graph.thread_chain[nested]
            runner = runner or next((h.runner for h in handoffs if nested in h.targets), chain[-2] if len(chain) > 1
                                    else None)
    return runner
