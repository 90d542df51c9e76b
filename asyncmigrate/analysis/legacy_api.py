"""SQLAlchemy 1.4-only API anywhere in the project: what a migration to 2.0 must rewrite, or cannot.

The rewrite needs SQLAlchemy 2.0 (``async_sessionmaker``), so ``fix`` raises a 1.4 pin; then every use of
API that 2.0 removed would break the migrated project at run time, in code the migration never touched as
much as in converted code.  This pass finds them from the summaries (``facts`` names each one and
tests/facts checks it against both versions):

* plain-string SQL given to ``execute``/``scalar``... of ANY session, async or sync, converted or not, and
  of a ``Connection`` (``engine.connect()``/``begin()``, ``session.connection()``): rewritable, the
  ``textual_sql`` codemod wraps it in ``text()`` on the receivers listed in ``FilePlan.sql_receivers``;
* ``select([a, b])`` and ``case([(cond, v)])``: rewritable (``list_arguments``);
* ``Engine.execute``/``scalar``/``table_names``..., ``sessionmaker(autocommit=True)``, ``MetaData(bind=)``:
  no codemod rewrites them, so they block the pin (``fix`` keeps it and converts nothing, reported).

Only call sites are looked at; the string is recognised on the call's normalised snippet, the receiver by
the session tracking ``scan`` uses (a receiver of unknown kind is never touched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .. import facts
from ..model import CallSite, Expr
from .index import expr_text
from .sessions import ASESSION, SESSION, Project

#: a string literal (any prefix but bytes: those are refused as well, and ``text()`` would not take them)
_STRING_START = re.compile(r"""^(?:[rRuU]|[fF][rR]?|[rR][fF])?["']""")

TEXTUAL_SQL = "textual-sql"
LIST_ARGUMENT = "list-argument"
ENGINE_METHOD = "engine-method"
AUTOCOMMIT = "autocommit"
METADATA_BIND = "metadata-bind"
#: kinds a codemod rewrites (``codemods/textual_sql.py``, ``codemods/list_arguments.py``)
REWRITABLE = frozenset({TEXTUAL_SQL, LIST_ARGUMENT})


@dataclass(frozen=True)
class LegacyUse:
    """One use of 1.4-only API: where, what, and for ``textual-sql`` the receiver's source text."""

    fid: str
    path: str
    scope: str  # the function's qualname, ``<module>`` at module level
    line: int
    kind: str
    message: str
    receiver: Optional[str] = None
    #: the callee's source text (``select``, ``sa.case``) for ``list-argument``
    callee: Optional[str] = None

    @property
    def rewritable(self) -> bool:
        return self.kind in REWRITABLE


def _first_argument(call: CallSite) -> Optional[str]:
    """The normalised source of the call's arguments (after ``func(``), or None when it cannot be told."""
    text = expr_text(call.func)
    if text is None or not call.snippet.startswith(text + "("):
        return None
    return call.snippet[len(text) + 1:]


def _connection(project: Project, expr: Expr, fid: str, depth: int = 0) -> bool:
    """Whether ``expr`` is a SQLAlchemy ``Connection``: made by ``engine.connect()``/``begin()`` or
    ``session.connection()`` (directly, bound to a local, or entered with ``with``), or annotated as one."""
    if expr is None or depth > 4:
        return False
    kind = expr[0]
    if kind == "with":
        return _connection(project, expr[1], fid, depth + 1)
    if kind == "c":
        func = expr[1]
        if func is not None and func[0] == "a" and func[2] in facts.CONNECTION_MAKERS:
            made_by = project.receiver(func[1], fid)
            return made_by is not None and made_by[0] in ("engine", SESSION)
        return False
    if kind == "n":
        fn = project.functions[fid].summary
        for p in fn.params:
            if p.name == expr[1] and p.annotation is not None:
                t = project.value(p.annotation, fid)
                return bool(t and t[0] == "ext" and t[1].startswith("sqlalchemy") and t[1].endswith(".Connection"))
        sources = [value for name, value in fn.assigns if name == expr[1]]
        return bool(sources) and all(_connection(project, v, fid, depth + 1) for v in sources)
    return False


def _kind_of_receiver(project: Project, receiver: Expr, fid: str) -> Optional[str]:
    value = project.receiver(receiver, fid)
    if value is not None and value[0] in (SESSION, ASESSION):
        return "session"
    if value is not None and value[0] == "engine":
        return "engine"
    if _connection(project, receiver, fid):
        return "connection"
    return None


def legacy_uses(project: Project) -> list[LegacyUse]:
    """Every use of 1.4-only API in the project, in file and line order."""
    out: list[LegacyUse] = []
    for fid, fn in project.functions.items():
        summary, path = fn.summary, fn.file.path
        for call in summary.calls:
            use = _classify(project, fid, call)
            if use is not None:
                kind, message, receiver, callee = use
                out.append(LegacyUse(fid, path, summary.qualname, call.span.line, kind, message, receiver, callee))
    return sorted(out, key=lambda u: (u.path, u.line, u.kind))


def _classify(project: Project, fid: str, call: CallSite) -> Optional[tuple[str, str, Optional[str], Optional[str]]]:
    func = call.func
    if func is None:
        return None
    if func[0] == "a":
        method, receiver = func[2], func[1]
        kind = None
        if method in facts.LEGACY_ENGINE_METHODS or method in facts.TEXTUAL_SQL_METHODS:
            kind = _kind_of_receiver(project, receiver, fid)
        if kind == "engine" and method in facts.LEGACY_ENGINE_METHODS:
            return (ENGINE_METHOD, f"`{expr_text(func)}()`: SQLAlchemy 2.0 has no `Engine.{method}` (connectionless "
                                   "execution was removed); run it on a connection (`with engine.begin() as conn:`)",
                    None, None)
        if kind in ("session", "connection") and method in facts.TEXTUAL_SQL_METHODS:
            args = _first_argument(call)
            text = expr_text(receiver)
            if args is not None and text is not None and _STRING_START.match(args):
                return (TEXTUAL_SQL, f"`{expr_text(func)}()` is given plain-string SQL, which SQLAlchemy 2.0 refuses "
                                     "(wrap it in sqlalchemy.text())", text, None)
    target = project.call_target(call, fid)
    if target is None or target[0] not in ("ext", "factory"):
        return None
    qualname = target[1] if target[0] == "ext" else None
    if qualname in facts.LEGACY_LIST_ARGUMENT_CONSTRUCTS:
        args = _first_argument(call)
        if args is not None and args.startswith("["):
            name = qualname.rsplit(".", 1)[-1]
            return (LIST_ARGUMENT, f"`{name}([...])`: SQLAlchemy 2.0 takes the elements as positional arguments, "
                                   f"not a list", None, expr_text(func))
    if qualname in facts.METADATA_TYPES and any(k == "bind" for k, _ in call.kwargs):
        return (METADATA_BIND, "`MetaData(bind=...)`: SQLAlchemy 2.0 has no bound metadata; pass the engine "
                               "where it is used (`create_all(engine)`, `reflect(engine)`)", None, None)
    if qualname in facts.SYNC_SESSIONMAKERS | facts.SYNC_SESSION_TYPES and any(
            (k, v) in facts.LEGACY_SESSION_KWARGS for k, v in call.kw_constants):
        return (AUTOCOMMIT, f"`{expr_text(func)}(autocommit=True)`: SQLAlchemy 2.0 has no autocommit mode; "
                            "commit explicitly (or begin a transaction per unit of work)", None, None)
    return None


def pin_blockers(uses: list[LegacyUse]) -> list[LegacyUse]:
    """The uses no codemod rewrites: while they stay, the project cannot run on SQLAlchemy 2.0."""
    return [u for u in uses if not u.rewritable]
