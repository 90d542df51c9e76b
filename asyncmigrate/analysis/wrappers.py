"""Decorators that replace a function with a wrapper that calls it (issue 12, class 2).

``@with_session`` / ``@db_query(...)`` style decorators open a session in a nested wrapper and call the
decorated function with it::

    def with_session(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            session = SessionLocal()
            return func(session, *args, **kwargs)
        return wrapper

A call of the decorated function runs the wrapper, which runs the function.  The decorator is found by
following its code, never by its name: it (or, for ``@factory(...)``, what the factory returns) is a project
function whose first parameter is the function, and which returns a function nested in it that calls that
parameter.  A decorator that returns its argument (route registration) or something else is not a wrapper.

What this gives the project pass:

* ``wrapped_by[F] = W``: the decorated function ``F`` runs inside wrapper ``W``;
* ``calls[W]``: the call sites in ``W`` that call the wrapped function (``func(session, ...)``), each of
  which calls every function ``W`` wraps; session provenance flows through their arguments
  (``Project.solve``), also through ``kwargs["db_session"] = session`` before ``func(*args, **kwargs)``,
  and the call graph has the edge ``W -> F`` (for ``fix``'s session components);
* where code runs: ``W`` runs on the loop when some function it wraps is called from the loop, and each
  decorated function's place follows *its own* callers (``CallGraph``), not the other functions ``W``
  wraps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Optional

from ..model import CallSite, Expr
from .index import MODULE_SCOPE

if TYPE_CHECKING:
    from .sessions import Project


@dataclass
class Wrappers:
    #: decorated function -> the wrapper that runs it
    wrapped_by: dict[str, str] = field(default_factory=dict)
    #: wrapper -> the functions it wraps
    wraps: dict[str, list[str]] = field(default_factory=dict)
    #: wrapper -> its call sites of the wrapped function
    calls: dict[str, list[CallSite]] = field(default_factory=dict)
    #: wrapper -> keyword arguments it adds through ``kwargs["name"] = value`` before ``func(**kwargs)``
    injected: dict[str, tuple[tuple[str, Expr], ...]] = field(default_factory=dict)

    def rebinds(self, fid: str) -> bool:
        """The wrapper of ``fid`` passes positional arguments of its own (``func(session, *args)``): the caller's
        arguments do not land where the caller wrote them.  (``func(*args, **kwargs)`` passes them through.)"""
        wrapper = self.wrapped_by.get(fid)
        return wrapper is not None and any(a is not None for call in self.calls[wrapper] for a in call.args)

    def edges(self, wrapper: str) -> list[tuple[str, CallSite]]:
        """``(decorated function, call site)`` for every function ``wrapper`` calls through its parameter."""
        return [(f, call) for call in self.calls.get(wrapper, ()) for f in self.wraps.get(wrapper, ())]

    def flows(self, wrapper: str) -> list[tuple[str, CallSite]]:
        """Like :meth:`edges`, with the keywords the wrapper adds to ``**kwargs`` as the call's own (for binding
        parameters only: these call sites are not in any source)."""
        extra = self.injected.get(wrapper, ())
        return [(f, replace(call, kwargs=call.kwargs + extra) if extra and call.star_kwargs else call)
                for f, call in self.edges(wrapper)]


def _decorator_scope(project: "Project", fid: str) -> str:
    """Decorators run in the scope enclosing the definition: the outer function, or the module."""
    qual = project.functions[fid].summary.qualname
    mod = project.module_of(fid)
    if ".<locals>." in qual:
        outer = f"{mod}:{qual.rsplit('.<locals>.', 1)[0]}"
        if outer in project.functions:
            return outer
    return f"{mod}:{MODULE_SCOPE}"


def _wrapper_of(project: "Project", decorator: str) -> Optional[tuple[str, list[CallSite]]]:
    """The nested function ``decorator`` returns, and its calls of ``decorator``'s first parameter."""
    fn = project.functions[decorator].summary
    positional = [p for p in fn.params if p.index >= 0]
    if not positional:
        return None
    param = positional[0].name
    prefix = f"{decorator}.<locals>."
    for ret in fn.returns:
        v = project.value(ret, decorator)
        if not (v and v[0] == "func" and v[1].startswith(prefix)):
            continue
        wrapper = v[1]
        inner = project.functions[wrapper].summary
        if any(p.name == param for p in inner.params) or param in dict(inner.assigns):
            continue  # the name is rebound in the wrapper: its calls are not of the decorated function
        calls = [c for c in inner.calls if c.func == ("n", param)]
        if calls:
            return wrapper, calls
    return None


def _injected(project: "Project", wrapper: str) -> tuple[tuple[str, Expr], ...]:
    """``kwargs["db_session"] = session`` in the wrapper, where ``kwargs`` is its ``**`` parameter."""
    fn = project.functions[wrapper].summary
    rest = {p.name for p in fn.params if p.index < 0}
    return tuple((key, value) for container, key, value in fn.item_assigns if container in rest)


def find_wrappers(project: "Project") -> Wrappers:
    out = Wrappers()
    for fid, fn in project.functions.items():
        decorators = fn.summary.decorators
        if not decorators:
            continue
        scope = _decorator_scope(project, fid)
        for dec in reversed(decorators):  # innermost first
            v = project.value(dec, scope) if dec is not None else None
            if not (v and v[0] == "func"):
                continue
            target = v[1]
            if dec in fn.summary.decorator_calls:  # ``@db_query(readonly=True)``: the factory returns the decorator
                made = project.returns_value(target)
                if not (made and made[0] == "func"):
                    continue
                target = made[1]
            found = _wrapper_of(project, target)
            if found is None:
                continue
            wrapper, calls = found
            out.wrapped_by[fid] = wrapper
            out.wraps.setdefault(wrapper, []).append(fid)
            out.calls[wrapper] = calls
            out.injected[wrapper] = _injected(project, wrapper)
            break  # the innermost wrapping decorator calls the function itself
    return out
