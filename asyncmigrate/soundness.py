"""The soundness invariant of ``fix``: what the rewritten project must satisfy before anything is written.

``fix`` analyses the project as the rewrite leaves it with the same session
analysis ``scan`` uses (:func:`~asyncmigrate.analysis.findings.analyze`) and
compares it with the original.  Each check below looks at *one* analysed
project; :func:`check` keeps what the rewritten project has and the original
did not (counted per function, so pre-existing code is never blamed), plus the
checks that are relative by nature (added imports, new blocks-loop findings).
A check works on the analysed result, not on what a rewrite meant to do, so a
rewrite with a bug is caught too (``tests/fix/test_soundness.py`` plants each
class into a correct rewrite).

* ``await-sync``: ``await`` on something that is not awaitable: a method of a
  *sync* session, a sync method of an ``AsyncSession`` (``add``), a project
  function that is a plain ``def``;
* ``async-session-sync-use``: an ``AsyncSession`` used synchronously: a
  coroutine method not awaited (ASM201), a method only the sync ``Session`` has
  (``query``), plain-string SQL given to ``execute`` (``ArgumentError``), a
  session from an awaited call or an async factory entered with a plain ``with``;
* ``coroutine-unawaited``: a project coroutine function called without
  ``await`` from code that cannot await it (module level, a ``def`` left sync,
  ``super().m()``, a test) or dropped; handing the coroutine to a loop scheduler
  (``asyncio.run``, ``create_task``...) is fine;
* ``unknown-receiver``: a call, not awaited, of a method that is a coroutine
  function somewhere in the project, on a receiver the analysis cannot type
  (``conf.remove(db)``, ``super().save(db)``), when it is given a session or is
  made through ``super()``: it may be the converted class (issue 9, class 17);
* ``post-migration``: any other ASM2xx finding the original did not have;
* ``blocks-loop``: a blocks-loop finding the original did not have (thread-pool
  work moved onto the loop, class 16);
* ``import``: an import the rewrite adds that does not resolve in the project
  (a project module spelled from the wrong root, a relative import past the
  package, a name the target module does not define).

Each :class:`Violation` names the functions whose conversion causes it
(``causes``): ``fix`` leaves their session component, closed under calls,
for a human and plans again (``migration.Planner`` ``exclude``).
"""

from __future__ import annotations

import ast
import difflib
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from . import facts
from .analysis.findings import Analysis
from .analysis.index import MODULE_SCOPE, expr_text
from .analysis.orm import within
from .analysis.paths import is_test_file
from .analysis.sessions import is_async_session, is_session
from .model import BLOCKS_LOOP, CallSite

#: methods of a callee whose argument a coroutine may be handed to (it is then run, not dropped)
_SCHEDULER_METHODS = frozenset({"run", "create_task", "ensure_future", "gather", "wait_for", "shield",
                                "run_until_complete", "run_coroutine_threadsafe", "start_soon", "start"})
#: SQL-taking coroutine methods: a plain ``str`` first argument raises ``ArgumentError`` (SQLALCHEMY_ASYNC.md §2)
_SQL_METHODS = frozenset({"execute", "scalar", "scalars", "stream", "stream_scalars"})
#: packages the rewrites import from that a migrated project depends on (the project's own requirements, or
#: those ``fix`` adds): they need not be installed where ``fix`` runs
_DEPENDENCY_PACKAGES = frozenset({"fastapi", "starlette", "anyio", "pytest", "pytest_asyncio", "httpx", "greenlet",
                                  "aiosqlite", "asyncpg", "aiomysql", "asyncmy", "psycopg"}) | facts.SQLALCHEMY_PACKAGES


@dataclass(frozen=True)
class Violation:
    kind: str
    path: str
    #: line in the analysed (rewritten) file
    line: int
    #: ``module:qualname`` of the function where it shows ("" when it is not inside one)
    fid: str
    #: ``module:qualname`` of the functions whose conversion causes it (their components are left sync)
    causes: tuple[str, ...]
    message: str
    #: what identifies it regardless of line numbers (compared between the original and the rewrite)
    key: tuple = ()

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


# ------------------------------------------------------------------------------------------ one project
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
            recv = p.receiver(func[1], fid) if method else None
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
                shown = f"{expr_text(base) or 'super()'}.{method}()"
                if not (via_super or p.value(base, fid) is None):
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
        if "name-only" in (av and av[1], pv and pv[1]):
            continue
        if (is_session(av) and is_async_session(pv)) or (is_async_session(av) and is_session(pv)):
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
        memo = analysis.__dict__["_soundness_display"] = {fn.display: fid for fid, fn in analysis.project.functions.items()}
    return memo


# ------------------------------------------------------------------------------------------ imports
def _top_level_names(fs) -> set[str]:
    names = {n for n, _ in fs.module_scope.assigns} | {a for a, _ in fs.imports}
    names |= {f.qualname for f in fs.functions if "." not in f.qualname}
    names |= {c.qualname for c in fs.classes if "." not in c.qualname}
    return names


def _imports(data: bytes) -> Optional[set[tuple[int, str, str]]]:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return None
    out: set[tuple[int, str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.update((node.level, node.module or "", a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            out.update((0, a.name, "") for a in node.names)
    return out


def import_violations(analysis: Analysis, changes: Mapping[str, tuple[bytes, bytes]]) -> list[Violation]:
    """Imports in the rewritten files (``changes``: path -> (old, new)) that the original did not have and that
    do not resolve in the project as the rewrite leaves it."""
    p = analysis.project
    by_path = {fs.path: fs for fs in p.files}
    suffixes = {fs.module.rsplit(".", 1)[-1] for fs in p.files}
    tops = {fs.module.split(".", 1)[0] for fs in p.files}
    out: list[Violation] = []
    for path, (old, new) in sorted(changes.items()):
        fs = by_path.get(path)
        added = (_imports(new) or set()) - (_imports(old) or set())
        if fs is None or not added:
            continue
        causes = tuple(sorted(f"{fs.module}:{f.qualname}" for f in fs.functions))
        package = fs.module if fs.is_package else fs.module.rpartition(".")[0]
        for level, module, name in sorted(added):
            problem = None
            if level:
                parts = package.split(".") if package else []
                if level - 1 > len(parts) or (level - 1 == len(parts) and not module):
                    problem = "goes beyond the top-level package"
                else:
                    base = ".".join(parts[: len(parts) - (level - 1)])
                    target = ".".join(x for x in (base, module) if x)
                    problem = _missing(p, target, name, relative=True)
                spelled = "." * level + module
            else:
                spelled = module
                target = p.find_module(module)  # also under another package root (``backend.app.database``)
                if target is not None:
                    problem = _missing(p, target, name, relative=False)
                elif module.split(".", 1)[0] in tops:
                    problem = _missing(p, module, name, relative=False)
                elif module.rsplit(".", 1)[-1] in suffixes or module.split(".", 1)[0] in suffixes:
                    problem = "is a project module imported from the wrong package root (ModuleNotFoundError)"
                elif not _importable(module.split(".", 1)[0]):
                    problem = "names a module that is neither in the project nor installed"
            if problem:
                what = f"from {spelled} import {name}" if name else f"import {spelled}"
                out.append(Violation("import", path, _import_line(new, level, module, name), "", causes,
                                     f"the rewrite adds `{what}`, which {problem}", ("import", path, what)))
    return out


def _missing(p, target: str, name: str, relative: bool) -> Optional[str]:
    if target not in p.modules:
        # a name imported from a package may be a submodule; a missing module is a ModuleNotFoundError
        return f"resolves to `{target}`, which is not a module of the project"
    if not name or name == "*" or f"{target}.{name}" in p.modules:
        return None
    if name not in _top_level_names(p.modules[target]):
        return f"names `{name}`, which `{target}` does not define (ImportError)"
    return None


def _importable(top: str) -> bool:
    if top in sys.stdlib_module_names or top in _DEPENDENCY_PACKAGES:
        return True
    import importlib.util

    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _import_line(data: bytes, level: int, module: str, name: str) -> int:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return 1
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == level and (node.module or "") == module \
                and any(a.name == name for a in node.names):
            return node.lineno
        if isinstance(node, ast.Import) and not level and any(a.name == module for a in node.names):
            return node.lineno
    return 1


# ------------------------------------------------------------------------------------------ the comparison
def check(before: Analysis, after: Analysis, changes: Mapping[str, tuple[bytes, bytes]]) -> list[Violation]:
    """What the rewritten project (``after``) breaks that the original (``before``) did not."""
    allowed = Counter(v.key for v in raw_violations(before))
    out: list[Violation] = []
    for v in raw_violations(after):
        if allowed[v.key] > 0:
            allowed[v.key] -= 1
            continue
        out.append(v)
    out += import_violations(after, changes)
    return out


def original_line(old: bytes, new: bytes, line: int) -> int:
    """A line of the rewritten file as a line of the original (a changed line: the original it replaced)."""
    a, b = old.decode("utf-8", "replace").splitlines(), new.decode("utf-8", "replace").splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if j1 < line <= j2 or (j1 == j2 == line - 1):
            if tag == "equal":
                return i1 + (line - 1 - j1) + 1
            return min(i1 + min(line - 1 - j1, max(i2 - i1 - 1, 0)) + 1, max(len(a), 1))
    return line
