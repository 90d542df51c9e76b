"""Per-file pass: source bytes -> :class:`~asyncmigrate.model.FileSummary`.

This is the only stage that reads syntax for ``scan`` and ``check``; it knows
nothing about other files, so its result depends on the bytes alone and is
cached by content hash (``runner.py``) and computed in worker processes.

It uses the standard library's ``ast`` (a C parser with positions built in):
the analysis then costs a fraction of a libcst parse, which ``fix`` still
uses, with full fidelity, on the files it rewrites.  Columns are converted
from ast's UTF-8 byte offsets to characters so that they match editors,
SARIF and libcst.

What is recorded is deliberately small: imports, definitions, parameters
with their annotations and ``Depends(...)`` targets, local assignments (the
provenance of each name; inside functions also as positioned ``Binding``s,
``for`` targets and comprehension variables included), ``self.x = ...``
assignments, returned values and every call with its callee expression, its
literal keyword arguments and whether its statement drops or returns it.  The project pass
(``analysis/project.py``) resolves all of it across modules.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import sys
import tokenize
import warnings
from typing import Optional

from ..model import (
    Binding,
    CallSite,
    ClassSummary,
    Expr,
    FileError,
    FileSummary,
    FunctionSummary,
    Param,
    Span,
    Suppression,
)

MODULE_SCOPE = "<module>"

#: ``# asyncmigrate: ignore[ASM110,ASM120] reason`` (a bare ``ignore`` applies to every code)
_SUPPRESSION_RE = re.compile(
    r"#\s*asyncmigrate\s*:\s*ignore(?:\[(?P<codes>[A-Za-z0-9_,\s]*)\])?(?P<reason>[^#]*)", re.IGNORECASE
)
_WS_RE = re.compile(r"\s+")
_TRAILING_COMMA_RE = re.compile(r",(?=[)\]}])")
_MAX_SNIPPET = 240
#: literal types kept in ``CallSite.kw_constants`` (``bool`` is an ``int``)
_LITERALS = (str, bytes, int, float, type(None))
#: one source line with its terminator, as the tokenizer (and ``ast.get_source_segment``) splits lines
_PARSER_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def decode_source(data: bytes) -> tuple[str, str]:
    """Decode Python source bytes honouring a BOM and a PEP 263 coding cookie."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, encoding


_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)


def decode_problem(data: bytes, exc: Exception) -> str:
    """Why ``decode_source`` failed, saying where: ``tokenize``'s own message for a file that is
    not UTF-8 and has no coding declaration is only "invalid or missing encoding declaration"."""
    head = b"\n".join(data.split(b"\n", 2)[:2])
    cookie = _CODING_RE.search(head)
    declared = cookie.group(1).decode("ascii", "replace").lower().replace("_", "-") if cookie else None
    if declared in (None, "utf-8", "utf8") and not isinstance(exc, LookupError):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = data.count(b"\n", 0, bad.start) + 1
            column = bad.start - (data.rfind(b"\n", 0, bad.start) + 1) + 1
            text = f"byte 0x{data[bad.start]:02x} at line {line}, column {column} is not valid UTF-8"
            if declared is None:
                text += " and no coding declaration (PEP 263, e.g. '# -*- coding: latin-1 -*-') names another encoding"
            return text
    return exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)


def normalise_snippet(segment: str) -> str:
    """Code with layout removed: reformatting a call leaves this unchanged."""
    out = _WS_RE.sub("", segment)
    out = _TRAILING_COMMA_RE.sub("", out)
    return out[:_MAX_SNIPPET]


#: while a file is summarised: one object per distinct value (expressions, spans, argument tuples).
#: A file names the same ``db``, ``self.session`` or ``Depends`` a thousand times; sharing one tuple
#: per value lets the summary's pickle (and so the cache, the pipe from the workers and the main
#: process's copy) hold it once.  Values never change: sharing is invisible to every reader.
_cons: Optional[dict] = None


def _shared(value):
    table = _cons
    if table is None or value is None:
        return value
    return table.setdefault(value, value)


def expr_of(node: Optional[ast.AST]) -> Expr:
    """Encode the shape of an expression that matters for provenance (see ``model.py``)."""
    if node is None:
        return None
    return _shared(_expr_of(node))


def _expr_of(node: ast.AST) -> Expr:
    if isinstance(node, ast.Name):
        return ("n", node.id)
    if isinstance(node, ast.Attribute):
        base = expr_of(node.value)
        return ("a", base, node.attr) if base is not None else None
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "next" and node.args:
            inner = expr_of(node.args[0])
            return ("next", inner) if inner is not None else None
        if (isinstance(func, ast.Name) and func.id == "NewType"
                or isinstance(func, ast.Attribute) and func.attr == "NewType") and len(node.args) == 2:
            # ``AsyncSession = NewType("AsyncSession", _AsyncSession)``: for provenance it is the type itself
            return expr_of(node.args[1])
        base = expr_of(func)
        if base is None:
            return None
        made = _class_argument(node)
        return ("c", base, made) if made is not None else ("c", base)
    if isinstance(node, ast.Await):
        inner = expr_of(node.value)
        return ("aw", inner) if inner is not None else None
    if isinstance(node, ast.Subscript):
        head = node.value
        head_name = head.id if isinstance(head, ast.Name) else head.attr if isinstance(head, ast.Attribute) else None
        if head_name in ("Annotated", "Optional", "Union"):
            # ``SessionDep = Annotated[Session, Depends(get_db)]``: keep type and dependency
            ann, dep = unwrap_annotation(node)
            return ("annotated", ann, dep)
        # X[...]: keep the container
        base = expr_of(node.value)
        return ("sub", base, tuple(_subscript_items(node))) if base is not None else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        # ``X | None`` annotations: keep the non-None side
        left, right = node.left, node.right
        if isinstance(right, ast.Constant) and right.value is None:
            return expr_of(left)
        if isinstance(left, ast.Constant) and left.value is None:
            return expr_of(right)
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        # string annotations ("Session"): parse them as expressions
        try:
            parsed = ast.parse(node.value, mode="eval")
        except (SyntaxError, ValueError):
            return None
        return expr_of(parsed.body)
    if isinstance(node, ast.NamedExpr):
        return expr_of(node.value)
    return None


def _class_argument(node: ast.Call) -> Expr:
    """``sessionmaker(bind=e, class_=AsyncSession)`` / ``sessionmaker(e, AsyncSession)``: the class the factory
    makes, kept in the call's encoding (``("c", func, class)``) so that a factory of async sessions built with
    the sync ``sessionmaker`` is known as one (the project pass decides whether ``func`` is SQLAlchemy's; an
    aliased import, ``from sqlalchemy.orm import sessionmaker as sm``, is not seen here)."""
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name != "sessionmaker":
        return None  # every other call keeps the plain ``("c", func)`` shape that rules compare against
    for k in node.keywords:
        if k.arg == "class_":
            return expr_of(k.value)
    if len(node.args) >= 2:
        return expr_of(node.args[1])
    return None


def attribute_path(expr: Expr) -> Optional[tuple[str, ...]]:
    """``request.state.db`` -> ``("state", "db")``: the attribute names of a chain rooted at a bare name, when
    there are at least two of them (a bag of state reached through an object); else None."""
    names: list[str] = []
    while expr is not None and expr[0] == "a":
        names.append(expr[2])
        expr = expr[1]
    if expr is None or expr[0] != "n" or len(names) < 2:
        return None
    return tuple(reversed(names))


def expr_text(expr: Expr) -> Optional[str]:
    """Source-like text of an encoded expression: ``a.b``, ``Repo().names`` (call arguments dropped).

    The codemods compute the same text from libcst nodes (``codemods.base.callee_text``), which is how a
    plan made from these summaries finds its call sites again.
    """
    if expr is None:
        return None
    kind = expr[0]
    if kind == "n":
        return expr[1]
    if kind == "a":
        base = expr_text(expr[1])
        return f"{base}.{expr[2]}" if base is not None else None
    if kind == "c":
        base = expr_text(expr[1])
        return f"{base}()" if base is not None else None
    return None


def _subscript_items(node: ast.Subscript) -> list[Expr]:
    sl = node.slice
    elts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
    return [expr_of(e) for e in elts]


def _depends_target(node: ast.AST) -> Expr:
    """``Depends(get_db)`` / ``Depends(dependency=get_db)`` -> ("n","get_db"); else None.

    Whether the callee really is ``fastapi.Depends`` is checked by the project pass through
    the file's imports; here we only keep the shape ``("dep", func, target)``.
    """
    if isinstance(node, ast.Call) and (node.args or node.keywords):
        target = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg == "dependency"), None
        )
        func = expr_of(node.func)
        if func is not None and target is not None:
            return ("dep", func, expr_of(target))
    return None


def unwrap_annotation(node: Optional[ast.AST]) -> tuple[Expr, Expr]:
    """(annotation, depends) with ``Optional``/``Annotated``/``X | None`` unwrapped."""
    if node is None:
        return None, None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except (SyntaxError, ValueError):
            return None, None
    if isinstance(node, ast.Subscript):
        head = expr_of(node.value)
        name = head[-1] if head and head[0] in ("n", "a") else None
        sl = node.slice
        elts = list(sl.elts) if isinstance(sl, ast.Tuple) else [sl]
        if name == "Annotated" and elts:
            inner, _ = unwrap_annotation(elts[0])
            dep = None
            for extra in elts[1:]:
                dep = _depends_target(extra) or dep
            return inner, dep
        if name == "Optional" and elts:
            return unwrap_annotation(elts[0])
        if name == "Union" and elts:
            non_none = [e for e in elts if not (isinstance(e, ast.Constant) and e.value is None)]
            if len(non_none) == 1:
                return unwrap_annotation(non_none[0])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        if isinstance(node.right, ast.Constant) and node.right.value is None:
            return unwrap_annotation(node.left)
        if isinstance(node.left, ast.Constant) and node.left.value is None:
            return unwrap_annotation(node.right)
    if isinstance(node, ast.Subscript):
        # not ``expr_of(node)``: for ``Union[A, B]`` (and other Annotated/Optional/Union forms not
        # unwrapped above) expr_of would call back here, recursing until RecursionError
        base = expr_of(node.value)
        return (("sub", base, tuple(_subscript_items(node))) if base is not None else None), None
    return expr_of(node), None


class _Frame:
    __slots__ = (
        "qualname", "name", "class_qualname", "is_async", "span", "decorators", "decorator_calls", "params",
        "assigns", "annotations", "self_assigns", "returns", "is_generator", "calls", "awaited_receivers",
        "attribute_reads", "kind", "self_name", "response_model", "return_annotation", "bindings", "attribute_read_spans",
        "global_names", "item_assigns", "attr_assigns",
    )

    def __init__(self, qualname: str, name: str, class_qualname: Optional[str], is_async: bool, span: Span):
        self.qualname = qualname
        self.name = name
        self.class_qualname = class_qualname
        self.is_async = is_async
        self.span = span
        self.decorators: list[Expr] = []
        self.decorator_calls: list[Expr] = []
        self.params: list[Param] = []
        self.assigns: list[tuple[str, Expr]] = []
        self.annotations: list[tuple[str, Expr]] = []
        self.self_assigns: list[tuple[str, Expr]] = []
        self.returns: list[Expr] = []
        self.is_generator = False
        self.calls: list[CallSite] = []
        self.awaited_receivers: list[Expr] = []
        self.attribute_reads: list[tuple[str, str, int]] = []
        self.attribute_read_spans: list[Span] = []
        self.bindings: list[Binding] = []
        self.kind = "function"
        self.self_name: Optional[str] = None
        self.response_model: Expr = None
        self.return_annotation: Expr = None
        self.global_names: list[str] = []
        self.item_assigns: list[tuple[str, str, Expr]] = []
        self.attr_assigns: list[tuple[Expr, Expr]] = []

    def freeze(self) -> FunctionSummary:
        return FunctionSummary(
            qualname=self.qualname,
            name=self.name,
            class_qualname=self.class_qualname,
            is_async=self.is_async,
            span=self.span,
            decorators=tuple(self.decorators),
            decorator_calls=tuple(self.decorator_calls),
            params=tuple(self.params),
            assigns=tuple(self.assigns),
            annotations=tuple(self.annotations),
            self_assigns=tuple(self.self_assigns),
            returns=tuple(self.returns),
            is_generator=self.is_generator,
            calls=tuple(self.calls),
            awaited_receivers=tuple(dict.fromkeys(self.awaited_receivers)),
            attribute_reads=tuple(self.attribute_reads),
            kind=self.kind,  # type: ignore[arg-type]
            response_model=self.response_model,
            return_annotation=self.return_annotation,
            bindings=tuple(self.bindings),
            attribute_read_spans=tuple(self.attribute_read_spans),
            global_names=tuple(dict.fromkeys(self.global_names)),
            item_assigns=tuple(self.item_assigns),
            attr_assigns=tuple(self.attr_assigns),
        )


class _Indexer(ast.NodeVisitor):
    def __init__(self, text: str, module: str, is_package: bool):
        self.text = text
        self._ascii = text.isascii()
        #: the source split as the parser splits it (``\r\n``, ``\r``, ``\n``; not form feeds), on first use
        self._parser_lines: Optional[list[str]] = None
        self.module = module
        self.is_package = is_package
        self.imports: dict[str, str] = {}
        self.functions: list[FunctionSummary] = []
        self.classes: list[ClassSummary] = []
        self.module_frame = _Frame(MODULE_SCOPE, MODULE_SCOPE, None, False, Span(1, 1, 1, 1))
        self.frames: list[_Frame] = [self.module_frame]
        #: (kind, name): the lexical scope stack for qualnames
        self.scopes: list[tuple[str, str]] = []
        self.class_stack: list[dict] = []
        self._awaited: set[int] = set()
        self._inner: set[int] = set()
        self._chains: dict[int, tuple[str, ...]] = {}
        self._with_items: dict[int, str] = {}
        #: id(call) -> "discard" / "return": the call is its statement's whole expression
        self._uses: dict[int, str] = {}
        self.has_main_guard = False
        self._in_main_guard = False
        self._lambda_depth = 0
        #: one Span per distinct position (a call's span is also its binding's value span, ...)
        self._spans: dict[tuple[int, int, int, int], Span] = {}

    # ---- positions -------------------------------------------------------------
    def _col(self, line: int, byte_col: int) -> int:
        """1-based character column of a UTF-8 byte offset, on the line as the parser counts lines."""
        if self._ascii:
            return byte_col + 1
        lines = self._parser_lines
        if lines is None:
            lines = self._parser_lines = _PARSER_LINE_RE.findall(self.text)
        if line < 1 or line > len(lines):
            return byte_col + 1
        raw = lines[line - 1].encode("utf-8")
        return len(raw[:byte_col].decode("utf-8", errors="replace")) + 1

    def span(self, node: ast.AST) -> Span:
        line = getattr(node, "lineno", 1)
        end_line = getattr(node, "end_lineno", None) or line
        col = self._col(line, getattr(node, "col_offset", 0))
        end_col = self._col(end_line, getattr(node, "end_col_offset", None) or 0)
        key = (line, col, end_line, end_col)
        span = self._spans.get(key)
        if span is None:
            span = self._spans[key] = Span(line, col, end_line, end_col)
        return span

    def segment(self, node: ast.AST) -> str:
        try:
            seg = self._source_segment(node)
        except Exception:  # pragma: no cover - defensive: odd positions in generated code
            seg = None
        return normalise_snippet(seg) if seg else ""

    def _source_segment(self, node: ast.AST) -> Optional[str]:
        """``ast.get_source_segment(self.text, node)``, without re-splitting the whole source per call.

        (On Python 3.11 the stdlib version splits the file character by character on every call,
        which made the per-file pass quadratic in the file's size.)
        """
        end_lineno = getattr(node, "end_lineno", None)
        end_col = getattr(node, "end_col_offset", None)
        if end_lineno is None or end_col is None:
            return None
        lines = self._parser_lines
        if lines is None:
            lines = self._parser_lines = _PARSER_LINE_RE.findall(self.text)
        lineno, end_lineno, col = node.lineno - 1, end_lineno - 1, node.col_offset  # type: ignore[attr-defined]
        if end_lineno == lineno:
            return lines[lineno].encode()[col:end_col].decode()
        first = lines[lineno].encode()[col:].decode()
        last = lines[end_lineno].encode()[:end_col].decode()
        return first + "".join(lines[lineno + 1:end_lineno]) + last

    # ---- scopes ---------------------------------------------------------------
    def qualname(self, name: str) -> str:
        parts: list[str] = []
        for kind, n in self.scopes:
            parts.append(n)
            if kind == "def":
                parts.append("<locals>")
        parts.append(name)
        return ".".join(parts)

    @property
    def frame(self) -> _Frame:
        return self.frames[-1]

    def _enclosing_class(self) -> Optional[str]:
        if self.scopes and self.scopes[-1][0] == "class":
            parts: list[str] = []
            for kind, n in self.scopes:
                parts.append(n)
                if kind == "def":
                    parts.append("<locals>")
            return ".".join(parts)
        return None

    # ---- traversal: ast.NodeVisitor's order and methods, without its per-node costs ----
    def visit(self, node: ast.AST) -> None:
        cls = node.__class__
        method = _DISPATCH.get((type(self), cls))
        if method is None:
            method = _DISPATCH[(type(self), cls)] = _dispatch_for(type(self), cls)
        method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    # ---- imports --------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.imports[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.imports.setdefault(top, top)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            pkg_parts = self.module.split(".") if self.module else []
            if not self.is_package:
                pkg_parts = pkg_parts[:-1]
            if node.level > 1:
                pkg_parts = pkg_parts[: len(pkg_parts) - (node.level - 1)] if node.level - 1 <= len(pkg_parts) else []
            base = ".".join([p for p in pkg_parts + ([node.module] if node.module else []) if p])
        for alias in node.names:
            if alias.name == "*":
                continue
            self.imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name

    # ---- definitions ----------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for dec in node.decorator_list:
            self.visit(dec)
        for b in node.bases:
            self.visit(b)
        for kw in node.keywords:
            self.visit(kw.value)
        qual = self.qualname(node.name)
        info = {"annotations": [], "assigns": [], "methods": [], "calls": []}
        self.scopes.append(("class", node.name))
        self.class_stack.append(info)
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                ann, _ = unwrap_annotation(stmt.annotation)
                info["annotations"].append((stmt.target.id, ann))
                if stmt.value is not None:
                    info["assigns"].append((stmt.target.id, expr_of(stmt.value)))
                    if isinstance(stmt.value, ast.Call):
                        info["calls"].append((stmt.target.id, self.span(stmt.value)))
            elif isinstance(stmt, ast.Assign):
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        info["assigns"].append((t.id, expr_of(stmt.value)))
                        if isinstance(stmt.value, ast.Call):
                            info["calls"].append((t.id, self.span(stmt.value)))
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info["methods"].append(stmt.name)
            self.visit(stmt)
        self.class_stack.pop()
        self.scopes.pop()
        self.classes.append(
            ClassSummary(
                qualname=qual,
                name=node.name,
                bases=tuple(expr_of(b) for b in node.bases),
                span=self.span(node),
                methods=tuple(info["methods"]),
                annotations=tuple(info["annotations"]),
                assigns=tuple(info["assigns"]),
                attribute_calls=tuple(info["calls"]),
            )
        )

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, False)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node, True)

    def _function(self, node, is_async: bool) -> None:
        outer = self.frame
        for dec in node.decorator_list:
            # decorators run in the enclosing scope
            self.visit(dec)
        class_q = self._enclosing_class()
        qual = self.qualname(node.name)
        line = node.lineno
        frame = _Frame(qual, node.name, class_q, is_async,
                       Span(line, self._col(line, node.col_offset), node.end_lineno or line,
                            self._col(node.end_lineno or line, node.end_col_offset or 0)))
        for dec in node.decorator_list:
            frame.decorators.append(expr_of(dec.func if isinstance(dec, ast.Call) else dec))
            if isinstance(dec, ast.Call):
                frame.decorator_calls.append(expr_of(dec.func))
                for kw in dec.keywords:
                    if kw.arg == "response_model":
                        frame.response_model = expr_of(kw.value)
            name = dec.id if isinstance(dec, ast.Name) else dec.attr if isinstance(dec, ast.Attribute) else None
            if name in ("staticmethod", "classmethod", "property"):
                frame.kind = name
        if class_q is not None and frame.kind == "function":
            frame.kind = "method"
        self._params(node.args, frame)
        if node.returns is not None:
            frame.return_annotation = unwrap_annotation(node.returns)[0]
        if class_q is not None and frame.kind in ("method", "property", "classmethod") and frame.params:
            frame.self_name = frame.params[0].name
        # defaults and annotations are evaluated in the enclosing scope
        for d in list(node.args.defaults) + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(d)
        self.scopes.append(("def", node.name))
        self.frames.append(frame)
        for stmt in node.body:
            self.visit(stmt)
        self.frames.pop()
        self.scopes.pop()
        self.functions.append(frame.freeze())
        del outer

    def _params(self, args: ast.arguments, frame: _Frame) -> None:
        positional = list(args.posonlyargs) + list(args.args)
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for i, (a, d) in enumerate(zip(positional, defaults)):
            ann, dep = unwrap_annotation(a.annotation)
            if d is not None:
                dep = _depends_target(d) or dep
            frame.params.append(Param(a.arg, i, ann, dep, self.span(a), d is not None))
        for a, d in zip(args.kwonlyargs, args.kw_defaults):
            ann, dep = unwrap_annotation(a.annotation)
            if d is not None:
                dep = _depends_target(d) or dep
            frame.params.append(Param(a.arg, -1, ann, dep, self.span(a), d is not None))
        for a in (args.vararg, args.kwarg):
            if a is not None:
                frame.params.append(Param(a.arg, -1, None, None, self.span(a), True))

    def visit_Lambda(self, node: ast.Lambda) -> None:
        # lambda bodies run later; their calls are recorded in the enclosing function, marked
        self._lambda_depth += 1
        self.visit(node.body)
        self._lambda_depth -= 1

    # ---- statements that give names their provenance ---------------------------
    def _is_self(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and self.frame.self_name is not None and node.id == self.frame.self_name

    def _record_target(self, target: ast.AST, value: Expr, annotation: Expr = None) -> None:
        frame = self.frame
        if isinstance(target, ast.Name):
            frame.assigns.append((target.id, value))
            if annotation is not None:
                frame.annotations.append((target.id, annotation))
        elif isinstance(target, ast.Attribute) and self._is_self(target.value):
            frame.self_assigns.append((target.attr, value))
            if annotation is not None:
                frame.self_assigns.append((target.attr, ("annot", annotation)))
        elif isinstance(target, ast.Attribute) and value is not None and isinstance(target.value, ast.Attribute) \
                and attribute_path(expr_of(target)) is not None:
            frame.attr_assigns.append((expr_of(target), value))
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                and isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str) and value is not None:
            frame.item_assigns.append((target.value.id, target.slice.value, value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._record_target(elt.value if isinstance(elt, ast.Starred) else elt, None)

    def _bind(self, target: ast.AST, kind: str, value: Expr, value_node: ast.AST, scope: Optional[ast.AST] = None) -> None:
        """Record a :class:`Binding` for every name ``target`` binds inside a function (unpacked names get no value)."""
        if len(self.frames) == 1:
            return  # module level (and class bodies there): not needed, and most of a models file
        if isinstance(target, ast.Name):
            self.frame.bindings.append(Binding(target.id, kind, value, self.span(value_node),  # type: ignore[arg-type]
                                               self.span(scope) if scope is not None else None))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._bind(elt.value if isinstance(elt, ast.Starred) else elt, kind, None, value_node, scope)

    def visit_Assign(self, node: ast.Assign) -> None:
        value = expr_of(node.value)
        for t in node.targets:
            self._bind(t, "assign", value, node.value)
        for t in node.targets:
            self._record_target(t, value)
        self.visit(node.value)
        for t in node.targets:
            self.visit(t)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        ann, _ = unwrap_annotation(node.annotation)
        if node.value is not None:
            self._bind(node.target, "assign", expr_of(node.value), node.value)
        self._record_target(node.target, expr_of(node.value) if node.value is not None else None, ann)
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._bind(node.target, "assign", expr_of(node.value), node.value)
        self._record_target(node.target, expr_of(node.value))
        self.visit(node.value)

    def _with(self, node, kind: str) -> None:
        for item in node.items:
            ctx = item.context_expr
            if isinstance(ctx, ast.Call):
                self._with_items[id(ctx)] = kind
            if item.optional_vars is not None:
                self._bind(item.optional_vars, "with", expr_of(ctx), ctx)
                self._record_target(item.optional_vars, ("with", expr_of(ctx), kind))
            self.visit(ctx)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    def visit_With(self, node: ast.With) -> None:
        self._with(node, "with")

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self._with(node, "async with")

    def _mark_use(self, value: Optional[ast.AST], use: str) -> None:
        if isinstance(value, ast.Await):
            value = value.value
        if isinstance(value, ast.Call):
            self._uses[id(value)] = use

    def visit_Expr(self, node: ast.Expr) -> None:
        self._mark_use(node.value, "discard")
        self.visit(node.value)

    def _for(self, node) -> None:
        self._bind(node.target, "for", expr_of(node.iter), node.iter, node)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._for(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self._for(node)

    def _comprehension(self, node) -> None:
        for gen in node.generators:
            self._bind(gen.target, "comp", expr_of(gen.iter), gen.iter, node)
        self.generic_visit(node)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None:
            self._mark_use(node.value, "return")
            self.frame.returns.append(expr_of(node.value))
            self.visit(node.value)

    def visit_Yield(self, node: ast.Yield) -> None:
        self.frame.is_generator = True
        if node.value is not None:
            self.frame.returns.append(expr_of(node.value))
            self.visit(node.value)

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self.frame.is_generator = True
        inner = expr_of(node.value)
        if inner is not None:
            self.frame.returns.append(("yfrom", inner))
        self.visit(node.value)

    def visit_Global(self, node: ast.Global) -> None:
        if len(self.frames) > 1:
            self.frame.global_names.extend(node.names)

    def visit_If(self, node: ast.If) -> None:
        if (
            len(self.frames) == 1
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            self.has_main_guard = True
            self.visit(node.test)
            self._in_main_guard = True
            for stmt in node.body:
                self.visit(stmt)
            self._in_main_guard = False
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    # ---- expressions ------------------------------------------------------------
    def visit_Await(self, node: ast.Await) -> None:
        value = node.value
        if isinstance(value, ast.Call):
            self._awaited.add(id(value))
            if isinstance(value.func, ast.Attribute):
                recv = expr_of(value.func.value)
                if recv is not None:
                    self.frame.awaited_receivers.append(recv)
        self.visit(value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and isinstance(node.ctx, ast.Load) and len(self.frames) > 1:
            self.frame.attribute_reads.append((node.value.id, node.attr, node.lineno))
            self.frame.attribute_read_spans.append(self.span(node))
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        # method chains: db.query(X).filter(...).first() -> the root call gets ("filter", "first")
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and id(node) not in self._inner:
            names = [func.attr]
            cur = func.value
            while True:
                self._inner.add(id(cur))
                if isinstance(cur.func, ast.Attribute) and isinstance(cur.func.value, ast.Call):
                    names.append(cur.func.attr)
                    cur = cur.func.value
                    continue
                break
            self._chains[id(cur)] = tuple(reversed(names))
        fexpr = expr_of(func)
        if fexpr is not None:
            self.frame.calls.append(
                CallSite(
                    func=fexpr,
                    span=self.span(node),
                    awaited=id(node) in self._awaited,
                    args=_shared(tuple(expr_of(a) for a in node.args)),
                    kwargs=_shared(tuple((k.arg, expr_of(k.value)) for k in node.keywords if k.arg)),
                    snippet=self.segment(node),
                    chain=self._chains.pop(id(node), ()),
                    inner=id(node) in self._inner,
                    context_manager=self._with_items.pop(id(node), None),  # type: ignore[arg-type]
                    main_guard=self._in_main_guard and len(self.frames) == 1,
                    in_lambda=self._lambda_depth > 0,
                    kw_constants=tuple((k.arg, k.value.value) for k in node.keywords
                                       if k.arg and isinstance(k.value, ast.Constant)
                                       and isinstance(k.value.value, _LITERALS)),
                    star_kwargs=any(k.arg is None for k in node.keywords),
                    use=self._uses.pop(id(node), None),  # type: ignore[arg-type]
                    compares=tuple((expr_of(a.left), expr_of(a.comparators[0]), self.span(a)) for a in node.args
                                   if isinstance(a, ast.Compare) and len(a.ops) == 1
                                   and isinstance(a.ops[0], (ast.Eq, ast.NotEq))),
                )
            )
        # a method call is not an attribute read: visit the receiver, not ``recv.method``
        self.visit(func.value if isinstance(func, ast.Attribute) else func)
        for a in node.args:
            self.visit(a)
        for k in node.keywords:
            self.visit(k.value)


#: node classes with nothing below them that the index records (no calls, attributes or definitions):
#: visiting them is a no-op unless the indexer defines a ``visit_<Class>`` method for them
_LEAVES = (ast.Constant, ast.Name, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.Pass,
           ast.Break, ast.Continue, ast.Global, ast.Nonlocal)
#: (indexer class, node class) -> the function ``visit`` calls
_DISPATCH: dict = {}


def _skip(self, node: ast.AST) -> None:
    return None


def _dispatch_for(indexer: type, cls: type):
    method = getattr(indexer, "visit_" + cls.__name__, None)
    # ast.NodeVisitor.visit_Constant only looks for the deprecated visit_Num/visit_Str/... methods
    if method is not None and method is not getattr(ast.NodeVisitor, "visit_" + cls.__name__, None):
        return method
    return _skip if issubclass(cls, _LEAVES) else indexer.generic_visit


def _suppressions(text: str) -> tuple[Suppression, ...]:
    if "asyncmigrate" not in text:
        return ()
    out: list[Suppression] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return ()
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        m = _SUPPRESSION_RE.search(tok.string)
        if not m:
            continue
        codes = tuple(c.strip().upper() for c in (m.group("codes") or "").split(",") if c.strip())
        out.append(Suppression(tok.start[0], codes, m.group("reason").strip(), tok.start[1] + 1))
    return tuple(out)


def backport_syntax(text: str) -> Optional[str]:
    """Newer syntax rewritten for this interpreter's parser, keeping every line and most columns.

    Only what the analysis can ignore: PEP 695 type parameters (``def f[T](...)``, ``class C[T]:``,
    ``type X[T] = ...``) and PEP 758 unparenthesised ``except A, B:``.  Type-parameter lists and
    the extra exception types are replaced by spaces (columns unchanged); ``type X = v`` becomes
    ``X = v`` padded to the same length.  None when nothing applies or the text does not tokenize.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    lines = text.splitlines(keepends=True)
    edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []  # (start, end, replacement) in (row, col)

    def matching(i: int) -> int:
        depth = 0
        for j in range(i, len(tokens)):
            if tokens[j].type == tokenize.OP and tokens[j].string in "([{":
                depth += 1
            elif tokens[j].type == tokenize.OP and tokens[j].string in ")]}":
                depth -= 1
                if depth == 0:
                    return j
        return -1

    significant = [t for t in tokens if t.type not in (tokenize.NL, tokenize.COMMENT)]
    tokens = significant
    for i, tok in enumerate(tokens[:-2]):
        nxt, third = tokens[i + 1], tokens[i + 2]
        if tok.type == tokenize.NAME and tok.string in ("def", "class") and nxt.type == tokenize.NAME \
                and third.string == "[":
            j = matching(i + 2)
            if j > 0:
                edits.append((third.start, tokens[j].end, ""))
        elif tok.type == tokenize.NAME and tok.string == "type" and nxt.type == tokenize.NAME \
                and (i == 0 or tokens[i - 1].type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)) \
                and third.string in ("=", "["):
            end = nxt.end
            if third.string == "[":
                j = matching(i + 2)
                if j < 0:
                    continue
                end = tokens[j].end
            edits.append((tok.start, end, nxt.string))
        elif tok.type == tokenize.NAME and tok.string == "except":
            k = i + 1
            if tokens[k].string == "*":
                k += 1
            depth, comma = 0, None
            while k < len(tokens) and not (depth == 0 and tokens[k].string in (":", "as")):
                if tokens[k].string in "([{":
                    depth += 1
                elif tokens[k].string in ")]}":
                    depth -= 1
                elif tokens[k].string == "," and depth == 0 and comma is None:
                    comma = k
                k += 1
            if comma is not None and k < len(tokens) and tokens[k].string == ":":
                edits.append((tokens[comma].start, tokens[k].start, ""))
    if not edits:
        return None
    for (r1, c1), (r2, c2), repl in sorted(edits, reverse=True):
        if r1 != r2:
            # type parameters over several lines: what follows the closing bracket moves up to the first
            # line (``class X[\n T,\n]:`` -> ``class X:``); the lines in between stay, empty, so every
            # later line keeps its number
            first, last = lines[r1 - 1], lines[r2 - 1]
            lines[r1 - 1] = first[:c1] + repl + last[c2:]
            for r in range(r1, r2):
                body = lines[r].rstrip("\r\n")
                lines[r] = lines[r][len(body):] or "\n"
            continue
        line = lines[r1 - 1]
        span = c2 - c1
        lines[r1 - 1] = line[:c1] + repl + " " * (span - len(repl)) + line[c2:]
    return "".join(lines)


def _misplaced_future_import(tree: ast.Module) -> Optional[ast.ImportFrom]:
    """A ``from __future__ import`` after anything but the docstring and other future imports."""
    body = tree.body
    start = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str) else 0
    seen_other = False
    for stmt in body[start:]:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__" and not stmt.level:
            if seen_other:
                return stmt
        else:
            seen_other = True
    return None


def summarize(path: str, data: bytes, module: str, is_package: bool = False) -> FileSummary | FileError:
    """Analyse one file.  Never raises for bad input: returns a :class:`FileError` instead."""
    with warnings.catch_warnings():
        # the file's own warnings (invalid escape sequences...) are not the user's run's: never print
        # them, and never let ``-W error`` turn them into a syntax error of valid code
        warnings.simplefilter("ignore")
        return _summarize(path, data, module, is_package)


def _summarize(path: str, data: bytes, module: str, is_package: bool) -> FileSummary | FileError:
    digest = hashlib.sha256(data).hexdigest()
    try:
        text, encoding = decode_source(data)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return FileError(path, "decode", f"cannot decode: {decode_problem(data, exc)}")
    try:
        try:
            tree = ast.parse(text, filename=path, type_comments=False)
        except SyntaxError:
            backported = backport_syntax(text)
            if backported is None:
                raise
            tree = ast.parse(backported, filename=path, type_comments=False)
    except SyntaxError:
        # report the error of the source as written, not of the backport
        try:
            ast.parse(text, filename=path, type_comments=False)
        except SyntaxError as original:
            exc = original
        else:  # pragma: no cover - the backport failed where the original parses
            exc = SyntaxError("invalid syntax")
        hint = ""
        if sys.version_info < (3, 14):
            hint = f" (parsed as Python {sys.version_info.major}.{sys.version_info.minor})"
        return FileError(path, "syntax", f"syntax error: {exc.msg}{hint}", exc.lineno or 0, exc.offset or 0)
    except (ValueError, RecursionError, MemoryError) as exc:
        return FileError(path, "syntax", f"cannot parse: {type(exc).__name__}: {exc}")
    misplaced = _misplaced_future_import(tree)
    if misplaced is not None:
        # ``ast.parse`` accepts it; ``compile()`` (and so Python) does not
        return FileError(path, "syntax", "syntax error: from __future__ imports must occur at the beginning of the "
                         "file", misplaced.lineno, misplaced.col_offset + 1)
    indexer = _Indexer(text, module, is_package)
    global _cons
    outer, _cons = _cons, {}
    try:
        for stmt in tree.body:
            indexer.visit(stmt)
    except RecursionError:
        return FileError(path, "internal", "expression nesting too deep to analyse")
    finally:
        _cons = outer
    module_frame = indexer.module_frame
    return FileSummary(
        path=path,
        module=module,
        is_package=is_package,
        digest=digest,
        imports=tuple(indexer.imports.items()),
        functions=tuple(indexer.functions),
        classes=tuple(indexer.classes),
        module_scope=module_frame.freeze(),
        suppressions=_suppressions(text),
        has_main_guard=indexer.has_main_guard,
        line_count=text.count("\n") + 1,
        encoding=encoding,
    )
