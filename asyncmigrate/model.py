"""Plain, frozen, picklable data shared by every stage.

The per-file pass turns one source file into a :class:`FileSummary` (no
project knowledge, cacheable by content hash).  The project pass turns the
summaries into :class:`Finding` objects.  Reporters, the baseline and ``fix``
consume findings and the project index; nothing here does work.

Expressions are encoded as small nested tuples (``Expr``) so that summaries
pickle cheaply and compare by value:

* ``("n", name)``            a bare name
* ``("a", expr, attr)``      ``expr.attr``
* ``("c", expr)``            the result of calling ``expr(...)``; ``("c", expr, cls)`` when the call names the
  class it makes (``sessionmaker(..., class_=AsyncSession)``)
* ``("next", expr)``         ``next(expr)``
* ``("aw", expr)``           ``await expr``
* ``("yfrom", expr)``        what ``yield from expr`` hands out (in ``FunctionSummary.returns``)
* ``("s", "Class")``         ``self`` inside methods of ``Class`` (module-relative qualname)
* ``None``                   anything else (unknown)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Tuple, Union

Expr = Optional[tuple]

Severity = Literal["blocks-loop", "debt"]
BLOCKS_LOOP: Severity = "blocks-loop"
DEBT: Severity = "debt"


@dataclass(frozen=True, slots=True)
class Span:
    """1-based lines, 1-based columns counted in characters (end exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    index: int  # position among positional parameters, -1 for keyword-only / *args / **kwargs
    annotation: Expr = None  # the annotation, unwrapped from Optional[...] / X | None
    depends: Expr = None  # ``Depends(target)`` target, from the default or from ``Annotated[..., Depends(x)]``
    span: Optional[Span] = None
    has_default: bool = False


@dataclass(frozen=True, slots=True)
class CallSite:
    """One call expression inside a function (or at module level)."""

    func: Expr
    span: Span
    awaited: bool
    args: Tuple[Expr, ...] = ()
    kwargs: Tuple[Tuple[str, Expr], ...] = ()
    #: normalised source of the call (``ast.unparse``), hashed into fingerprints
    snippet: str = ""
    #: method names chained onto this call's result, innermost first (``db.query(X).filter().first()``
    #: gives ``("filter", "first")`` on the ``query`` call)
    chain: Tuple[str, ...] = ()
    #: True when this call is the receiver of another call in the same chain (not the outermost)
    inner: bool = False
    #: the call is inside ``with``/``async with`` items (``with SessionLocal() as db``)
    context_manager: Optional[Literal["with", "async with"]] = None
    #: module-level call under ``if __name__ == "__main__":`` (a sync entry point)
    main_guard: bool = False
    #: the call is inside a ``lambda`` (runs later, wherever the lambda is called)
    in_lambda: bool = False
    #: keyword arguments whose value is a literal (str, bytes, int, float, bool, None), in source order:
    #: ``async_sessionmaker(e, expire_on_commit=False)`` gives ``(("expire_on_commit", False),)``
    kw_constants: Tuple[Tuple[str, object], ...] = ()
    #: the call passes ``**mapping`` (its keyword arguments are not all visible)
    star_kwargs: bool = False
    #: what the statement does with the call's value when the call (or ``await`` of it) is the statement's
    #: whole expression: ``"discard"`` (an expression statement), ``"return"``; None otherwise
    use: Optional[Literal["discard", "return"]] = None
    #: ``==`` / ``!=`` comparisons passed as positional arguments (``.filter(User.id == token.id)``,
    #: ``.where(...)``): (left, right, span of the comparison)
    compares: Tuple[Tuple[Expr, Expr, "Span"], ...] = ()


@dataclass(frozen=True, slots=True)
class Binding:
    """A local name bound to a value, with positions (what ``assigns`` keeps, plus where and how).

    ``kind`` is ``assign`` (``x = v``, ``x: T = v``, ``x := v``; names unpacked from a tuple get
    ``value=None``), ``with`` (``with v as x``), ``for`` (``for x in v``: ``value`` is the iterable)
    or ``comp`` (``[... for x in v]``).  ``value_span`` is where the value expression is (the calls
    inside it are the calls of the value); ``scope`` is the whole statement (``for``/``with``: body
    included) or, for ``comp``, the whole comprehension.
    """

    name: str
    kind: Literal["assign", "with", "for", "comp"]
    value: Expr
    value_span: Span
    scope: Span


@dataclass(frozen=True, slots=True)
class FunctionSummary:
    qualname: str  # module-relative: "helper", "Service.run", "outer.<locals>.inner"
    name: str
    class_qualname: Optional[str]  # enclosing class (methods only)
    is_async: bool
    span: Span
    decorators: Tuple[Expr, ...] = ()
    #: for each decorator that is a call: its func Expr (``@router.get("/x")`` -> ("a", ("n","router"), "get"))
    decorator_calls: Tuple[Expr, ...] = ()
    params: Tuple[Param, ...] = ()
    #: local name -> value expressions assigned to it (``x = e``, ``with e as x``, ``for x in e`` is not tracked)
    assigns: Tuple[Tuple[str, Expr], ...] = ()
    #: local name -> annotation (``x: Session = ...``)
    annotations: Tuple[Tuple[str, Expr], ...] = ()
    #: ``self.attr = expr`` (methods only), ``self.attr: T = ...`` recorded with ("annot", T)
    self_assigns: Tuple[Tuple[str, Expr], ...] = ()
    returns: Tuple[Expr, ...] = ()
    is_generator: bool = False
    calls: Tuple[CallSite, ...] = ()
    #: receivers whose methods are awaited somewhere in this function (``await db.commit()`` -> ("n","db"))
    awaited_receivers: Tuple[Expr, ...] = ()
    #: attribute reads on local names (relationship access, for eager loading): (name, attr, line)
    attribute_reads: Tuple[Tuple[str, str, int], ...] = ()
    #: True when the function is a staticmethod / classmethod / property
    kind: Literal["function", "method", "staticmethod", "classmethod", "property"] = "function"
    #: ``response_model=`` of a route decorator (what FastAPI serialises the return value with)
    response_model: Expr = None
    #: the return annotation (``-> Generator[Session, None, None]`` names what a dependency yields)
    return_annotation: Expr = None
    #: every name binding with its positions, in source order (see :class:`Binding`)
    bindings: Tuple[Binding, ...] = ()
    #: the span of each entry of ``attribute_reads``, in the same order
    attribute_read_spans: Tuple[Span, ...] = ()
    #: names declared ``global`` here: their entries in ``assigns`` are module variables' sources
    #: (``global SessionLocal; SessionLocal = sessionmaker(...)`` in an init function)
    global_names: Tuple[str, ...] = ()
    #: ``container["key"] = expr`` with a literal string key: ``(container, key, expr)``
    #: (a wrapper that hands a session on through ``kwargs["db_session"]``)
    item_assigns: Tuple[Tuple[str, str, Expr], ...] = ()
    #: ``a.b.c = expr`` on something that is not ``self`` (at least two attributes deep, rooted at a name):
    #: ``(target, expr)`` (``request.state.db = SessionLocal()`` in a middleware)
    attr_assigns: Tuple[Tuple[Expr, Expr], ...] = ()


@dataclass(frozen=True, slots=True)
class ClassSummary:
    qualname: str
    name: str
    bases: Tuple[Expr, ...]
    span: Span
    methods: Tuple[str, ...] = ()
    #: class-body annotations and assignments: attr -> annotation / value
    annotations: Tuple[Tuple[str, Expr], ...] = ()
    assigns: Tuple[Tuple[str, Expr], ...] = ()
    #: class-body ``attr = f(...)`` / ``attr: T = f(...)``: the span of the call.  Class bodies run in the
    #: enclosing scope, so the :class:`CallSite` itself (arguments, ``kw_constants``) is in that scope's
    #: ``calls``, with exactly this span.
    attribute_calls: Tuple[Tuple[str, Span], ...] = ()


@dataclass(frozen=True, slots=True)
class Suppression:
    line: int
    codes: Tuple[str, ...]
    reason: str
    column: int = 1


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that could not be analysed; reported in every output format."""

    path: str
    kind: Literal["syntax", "decode", "read", "internal", "too-large"]
    message: str
    line: int = 0
    column: int = 0


@dataclass(frozen=True, slots=True)
class FileSummary:
    path: str  # posix path as given/discovered (relative to the working directory when possible)
    module: str  # dotted module name ("app.routers.users")
    is_package: bool
    digest: str  # sha256 of the bytes
    imports: Tuple[Tuple[str, str], ...]  # local alias -> qualified name
    functions: Tuple[FunctionSummary, ...]
    classes: Tuple[ClassSummary, ...]
    module_scope: FunctionSummary  # module-level statements, as a pseudo-function "<module>"
    suppressions: Tuple[Suppression, ...] = ()
    #: ``if __name__ == "__main__":`` calls, ``asyncio.run(...)`` targets live in module_scope.calls
    has_main_guard: bool = False
    line_count: int = 0
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    span: Span
    code: str
    category: str
    severity: Severity
    message: str
    #: enclosing qualified function name (module-relative) or "<module>"
    scope: str
    #: the call path that puts this code on the event loop, outermost first (qualified names)
    chain: Tuple[str, ...] = ()
    #: what the session identification rests on: "annotation", "dependency", "factory", "self-attribute",
    #: "attribute" (``request.state.db`` stored elsewhere), "call-site", "provider", "fixture" (pytest),
    #: "name-only", or "" for non-session rules
    evidence: str = ""
    snippet: str = ""
    fingerprint: str = ""
    name: str = ""  # the rule's kebab name

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def via(self) -> str:
        """How the chain reads: it puts the code on the loop, or (debt) hands it to a worker thread."""
        return "on the loop via" if self.severity == BLOCKS_LOOP else "runs in a thread pool via"

    @property
    def column(self) -> int:
        return self.span.column

    def sort_key(self) -> tuple:
        return (self.path, self.span.line, self.span.column, self.code)


Summary = Union[FileSummary, FileError]


@dataclass
class ScanResult:
    """Everything a scan produces: findings, per-file errors, and the files looked at."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    #: suppressed findings (kept for ``--show-suppressed`` and for the baseline's honesty)
    suppressed: list[Finding] = field(default_factory=list)
