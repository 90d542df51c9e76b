"""The soundness checks on one analysed project: awaits, sessions, coroutine calls, post-migration and
blocks-loop findings (``asyncmigrate/soundness/__init__.py`` says what each kind means).

Applied to the original and to the rewrite alike; :func:`~asyncmigrate.soundness.check` keeps what only the
rewrite has.
"""

from __future__ import annotations

import ast
from typing import Iterable, Optional

from .. import facts
from ..analysis.findings import Analysis
from ..analysis.index import MODULE_SCOPE, expr_text
from ..analysis.orm import within
from ..analysis.paths import is_test_file
from ..analysis.sessions import is_async_session, is_session
from ..model import BLOCKS_LOOP, CallSite
from .model import Violation

#: methods of a callee whose argument a coroutine may be handed to (it is then run, not dropped)
_SCHEDULER_METHODS = frozenset({"run", "create_task", "ensure_future", "gather", "wait_for", "shield",
                                "run_until_complete", "run_coroutine_threadsafe", "start_soon", "start"})
#: SQL-taking coroutine methods: a plain ``str`` first argument raises ``ArgumentError`` (SQLALCHEMY_ASYNC.md §2)
_SQL_METHODS = frozenset({"execute", "scalar", "scalars", "stream", "stream_scalars"})


def _handed_over(call: CallSite, calls: Iterable[CallSite], analysis: Analysis, fid: str) -> bool:
    """``call`` is an argument of a call that runs it later (``asyncio.run(main())``, ``loop.create_task(...)``)."""
    mine = ("c", call.func)
    for other in calls:
        if other is call or not within(call.span, other.span):
            continue
        if mine not in other.args and mine not in (v for _, v in other.kwargs):
            continue
        target = analysis.project.call_target(other, fid)
        if target is not None and target[0] == "ext" and target[1] in facts.LOOP_SCHEDULERS:
            return True
        if other.func and other.func[0] == "a" and other.func[2] in _SCHEDULER_METHODS:
            return True
        if other.awaited:  # ``await asyncio.wait_for(coro(), 5)``-like: an awaited call consumes its awaitables
            return True
    return False


def _string_sql(call: CallSite) -> bool:
    """``db.execute("SELECT 1")``: the first argument is a string literal (CallSite keeps only its source)."""
    try:
        node = ast.parse(call.snippet, mode="eval").body
    except (SyntaxError, ValueError):
        return False
    if not isinstance(node, ast.Call) or not node.args:
        return False
    first = node.args[0]
    return isinstance(first, ast.JoinedStr) or (isinstance(first, ast.Constant) and isinstance(first.value, str))


def _where(analysis: Analysis, fid: str) -> str:
    fn = analysis.project.functions[fid]
    if fn.summary.qualname == MODULE_SCOPE:
        return "at import time"
    if is_test_file(fn.file.path):
        return f"from test `{fn.summary.qualname}`"
    return f"from `{fn.summary.qualname}`, a plain def"


def raw_violations(analysis: Analysis, paths: Optional[set[str]] = None) -> list[Violation]:
    """What breaks the invariant in one analysed project (in the files ``paths``, or everywhere).

    Applied to the original too: :func:`check` keeps only what the rewrite adds.
    """
    p = analysis.project
    out: list[Violation] = []
    async_methods: dict[str, list[str]] = {}
    sync_functions: set[str] = set()
    for fid, fn in p.functions.items():
        s = fn.summary
        if s.is_async and s.class_qualname and s.kind in ("method", "classmethod", "staticmethod"):
            async_methods.setdefault(s.name, []).append(fid)
        elif not s.is_async:
            sync_functions.add(s.name)
    for fid, fn in p.functions.items():
        if paths is not None and fn.file.path not in paths:
            continue
        s = fn.summary
        path = fn.file.path
        sync_code = not s.is_async
        for call in s.calls:
            func = call.func
            line = call.span.line
            method = func[2] if func and func[0] == "a" else None
            recv = p.receiver(func[1], fid, call.in_lambda) if method else None
            callee = p.callee(call, fid)
            callee_fn = p.functions[callee].summary if callee in p.functions else None
            if callee_fn is not None and (call.args or call.kwargs):
                for prm, av, pv in _session_pairs(analysis, call, fid, callee):
                    out.append(Violation("session-mismatch", path, line, fid, (fid, callee),
                                         f"`{expr_text(func)}()` is given {_kind(av)} for `{prm}`, which is "
                                         f"{_kind(pv)} in `{callee_fn.qualname}`", ("mismatch", fid, callee, prm)))
            if method in _SQL_METHODS and is_async_session(recv) and _string_sql(call) \
                    and (recv[1] != "name-only" or s.is_async):
                out.append(Violation("async-session-sync-use", path, line, fid, (fid,),
                                     f"`{expr_text(func)}()` is given plain-string SQL, which an AsyncSession "
                                     "rejects (ArgumentError: wrap it in text())",
                                     ("string-sql", fid, method)))
            if call.awaited:
                if method and is_session(recv):
                    out.append(Violation("await-sync", path, line, fid, (fid,),
                                         f"`{call.snippet}` is awaited, but `{expr_text(func[1])}` is a sync Session",
                                         ("await-sync", fid, method)))
                elif callee_fn is not None and not callee_fn.is_async and not callee_fn.is_generator \
                        and p.call_target(call, fid) and p.call_target(call, fid)[0] in ("func", "method"):
                    out.append(Violation("await-sync", path, line, fid, (fid, callee),
                                         f"`{call.snippet}` is awaited, but `{callee_fn.qualname}` is a plain def",
                                         ("await-callee", fid, callee)))
                continue
            if method and is_async_session(recv) and (recv[1] != "name-only" or s.is_async):
                if method in facts.SYNC_ONLY_SESSION_METHODS:
                    out.append(Violation("async-session-sync-use", path, line, fid, (fid,),
                                         f"`{expr_text(func[1])}.{method}()` does not exist on the AsyncSession "
                                         f"`{expr_text(func[1])}` becomes", ("sync-only", fid, method)))
            if call.context_manager == "with":
                value = p.value(("c", func), fid) if func else None
                if value == ("afactory",) or is_async_session(value):
                    out.append(Violation("async-session-sync-use", path, line, fid, (fid,),
                                         f"`with {call.snippet}` enters an AsyncSession with a plain `with`",
                                         ("with-async", fid, call.snippet)))
            if callee_fn is not None and callee_fn.is_async and not call.in_lambda \
                    and (sync_code or call.use == "discard") \
                    and not (call.use == "return" and sync_code and s.qualname != MODULE_SCOPE) \
                    and not _handed_over(call, s.calls, analysis, fid):
                where = _where(analysis, fid) if sync_code else f"in `{s.qualname}`, whose result is dropped"
                out.append(Violation("coroutine-unawaited", path, line, fid, (callee,),
                                     f"`{expr_text(func) or callee_fn.qualname}()` is a coroutine function, called "
                                     f"without await {where}", ("unawaited", fid, callee)))
            elif callee is None and method and not _handed_over(call, s.calls, analysis, fid):
                base = func[1]
                via_super = base is not None and base[0] == "c" and base[1] == ("n", "super")
                shown = f"{expr_text(base) or ('super()' if via_super else '(...)')}.{method}()"
                if not (via_super or _untyped(analysis, base, method, fid)):
                    continue
                if method in async_methods and (via_super or _session_argument(analysis, call, fid)):
                    out.append(Violation("unknown-receiver", path, line, fid, tuple(sorted(async_methods[method])),
                                         f"`{shown}` is not awaited, and its receiver, whose type is not known, may "
                                         f"be an instance of a class whose `{method}` is a coroutine function",
                                         ("unknown-receiver", fid, method)))
                elif method in sync_functions and _session_argument(analysis, call, fid, only_async=True):
                    out.append(Violation("unknown-receiver", path, line, fid, (fid,),
                                         f"an AsyncSession is handed to `{shown}`, whose receiver's type is not known: "
                                         f"it may be a project method `{method}` that uses the session synchronously",
                                         ("async-session-to-unknown", fid, method)))
        for b in s.bindings:
            # ``with await new_session() as s``: what a coroutine returns (an AsyncSession) entered with a plain
            # ``with`` (class 15: an AsyncSession has no ``__enter__``)
            if b.kind == "with" and b.value and b.value[0] == "aw" and b.value[1] and b.value[1][0] == "c":
                callee = _callee_of(analysis, b.value[1][1], fid)
                out.append(Violation("async-session-sync-use", path, b.value_span.line, fid,
                                     (fid, *([callee] if callee else [])),
                                     f"`with await {expr_text(b.value[1][1]) or '...'}()` enters what a coroutine "
                                     "returns with a plain `with`", ("with-await", fid, b.name)))
    for finding in analysis.result.findings:
        if paths is not None and finding.path not in paths:
            continue
        fid = _fid_of(analysis, finding.path, finding.scope)
        if finding.code.startswith("ASM2"):
            out.append(Violation("post-migration", finding.path, finding.span.line, fid, (fid,) if fid else (),
                                 f"{finding.code} {finding.message}", ("asm2", fid, finding.code)))
        elif finding.severity == BLOCKS_LOOP and not finding.code.startswith("ASM0"):
            chain = tuple(_display_fids(analysis).get(d, "") for d in finding.chain)
            if chain and chain[0] and _own_loop(analysis, chain[0]):
                continue  # a script's ``asyncio.run(main())``: nothing else runs on that loop to be blocked
            out.append(Violation("blocks-loop", finding.path, finding.span.line, fid, tuple(c for c in chain if c)
                                 or ((fid,) if fid else ()), f"{finding.code} {finding.message} (blocks the loop)",
                                 ("loop", fid, finding.code)))
    return out


#: what starts a loop of its own for the coroutine handed to it
_LOOP_RUNNERS = frozenset({"asyncio.run", "anyio.run", "asyncio.runners.run"})


def _own_loop(analysis: Analysis, fid: str) -> bool:
    """``fid`` is only ever run by ``asyncio.run(fid())`` (a script's entry point): it has a loop to itself."""
    p = analysis.project
    callers = analysis.graph.callers.get(fid, ())
    if not callers:
        return False
    for caller, call in callers:
        calls = p.functions[caller].summary.calls
        if not any(other is not call and within(call.span, other.span) and ("c", call.func) in other.args
                   and (p.call_target(other, caller) or ("", ""))[1] in _LOOP_RUNNERS for other in calls):
            return False
    return True


def _untyped(analysis: Analysis, base, method: str, fid: str) -> bool:
    """The receiver's type is not known, or is a project class in which ``method`` is not found (a base class the
    analysis cannot follow, such as ``CRUDBase[User, UserCreate, UserUpdate]``): the call may reach any
    project method of that name."""
    p = analysis.project
    v = p.value(base, fid)
    if v is None:
        return True
    if v[0] in ("instance", "class") and v[1] in p.classes:
        return p.find_method(v[1], method) is None
    return False


def _kind(v) -> str:
    return "an AsyncSession" if is_async_session(v) else "a sync Session"


def _session_pairs(analysis: Analysis, call: CallSite, fid: str, callee: str):
    """``(parameter, argument value, parameter value)`` where a session of one kind is handed to a parameter that
    holds the other kind (a sync session given to converted code, an AsyncSession to code that stays sync)."""
    p = analysis.project
    params = p.functions[callee].summary.params
    positional = [prm for prm in params if prm.index >= 0]
    offset = p._bound_offset(call, fid, callee)
    by_name = {prm.name: prm for prm in params}
    pairs = [(positional[i + offset], arg) for i, arg in enumerate(call.args) if i + offset < len(positional)]
    pairs += [(by_name[name], arg) for name, arg in call.kwargs if name in by_name]
    for prm, arg in pairs:
        if arg is None:
            continue
        av, pv = p.value(arg, fid), p.param_value(callee, prm)
        if not ((is_session(av) and is_async_session(pv)) or (is_async_session(av) and is_session(pv))):
            continue
        if "name-only" not in (av[1], pv[1]):
            yield prm.name, av, pv


def _callee_of(analysis: Analysis, func, fid: str) -> Optional[str]:
    v = analysis.project.value(func, fid)
    return v[1] if v and v[0] == "func" else v[2] if v and v[0] == "method" else None


def _session_argument(analysis: Analysis, call: CallSite, fid: str, only_async: bool = False) -> bool:
    for arg in (*call.args, *(v for _, v in call.kwargs)):
        v = analysis.project.value(arg, fid) if arg is not None else None
        if is_async_session(v) or (is_session(v) and not only_async):
            return True
    return False


def _fid_of(analysis: Analysis, path: str, scope: str) -> str:
    memo = analysis.__dict__.setdefault("_soundness_modules", {})
    if not memo:
        memo.update({fs.path: fs.module for fs in analysis.project.files})
    module = memo.get(path)
    fid = f"{module}:{scope}"
    return fid if module is not None and fid in analysis.project.functions else ""


def _display_fids(analysis: Analysis) -> dict[str, str]:
    memo = analysis.__dict__.get("_soundness_display")
    if memo is None:
        # the names call chains use (``Project.display``: full module names in folders without ``__init__.py``)
        project = analysis.project
        memo = analysis.__dict__["_soundness_display"] = {project.display(fid): fid for fid in project.functions}
    return memo
