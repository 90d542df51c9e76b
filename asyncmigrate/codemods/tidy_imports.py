"""Leave the rewritten file as lint-clean as the original (Ruff/flake8 F401, isort/Ruff I001, E501): last step.

Runs after every other rewrite, its scheduled imports and the await parentheses, and only on a file something
else changed.  Three tidy-ups, each confined to what the rewrite did: (1) an import the rewrite made unused
(``Session`` after the annotations became ``AsyncSession``, ``time`` after ``asyncio.sleep``) is removed,
never one that was unused already, one another project module imports, patches or names as a module attribute
(``FilePlan.imported_by_others``), a name in ``__all__``, ``from x import *``, ``__future__`` or a dotted
``import app.models`` of the project (which may register a submodule); (2) an import statement the rewrite added is moved to the section
the project's isort/Ruff settings give it (future, stdlib, third party, first party, local; ``import x`` before
``from x import``, sorted by module; ``force-single-line`` honoured), names added to an existing ``from`` import
are sorted as isort sorts them (constants, classes, functions), and one longer than the line length is wrapped in
parentheses; (3) a statement the rewrite created that runs past the project's line length (``line-length`` of
Ruff or Black, ``line_length`` of isort, default 88) has its calls' arguments split Black's way: all on one
indented line when they fit there, else one per line with a trailing comma, recursively.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, Iterable, Mapping, Optional, Sequence

import libcst as cst
from libcst.codemod import Codemod
from libcst.codemod.visitors import RemoveImportsVisitor

_EMPTY = cst.Module(body=[])


@dataclass(frozen=True)
class ImportStyle:
    """The project's own lint settings that decide where an import goes and how long a line may be."""

    line_length: int = 88
    #: top-level names of the project's own packages (``known-first-party`` plus what lies in the project)
    first_party: FrozenSet[str] = frozenset()
    force_single_line: bool = False


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def read_style(root: Path, project_modules: Iterable[str] = ()) -> ImportStyle:
    """The project's settings: ``pyproject.toml`` ([tool.ruff], [tool.ruff.lint.isort], [tool.isort],
    [tool.black]) and ``ruff.toml``/``.ruff.toml``; a setting not given keeps Ruff's default."""
    line_length: Optional[int] = None
    first_party: set[str] = {m.split(".")[0] for m in project_modules if m}
    single = False
    ruff: dict = {}
    for name in ("ruff.toml", ".ruff.toml"):
        if (root / name).is_file():
            ruff = _toml(root / name)
            break
    pyproject = _toml(root / "pyproject.toml") if (root / "pyproject.toml").is_file() else {}
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    ruff = ruff or tool.get("ruff", {}) or {}
    isort_ruff = (ruff.get("lint", {}) or {}).get("isort") or ruff.get("isort") or {}
    isort = tool.get("isort", {}) or {}
    for value in (ruff.get("line-length"), (tool.get("black") or {}).get("line-length"), isort.get("line_length")):
        if isinstance(value, int) and value > 0 and line_length is None:
            line_length = value
    for value in (isort_ruff.get("known-first-party"), isort.get("known_first_party")):
        if isinstance(value, list):
            first_party |= {str(v).split(".")[0] for v in value}
    if isort_ruff.get("force-single-line") is True or isort.get("force_single_line") is True \
            or isort.get("profile") in ("google", "open_stack"):
        single = True
    return ImportStyle(line_length or 88, frozenset(first_party), single)


def imported_by_others(modules: Mapping[str, bytes]) -> dict[str, FrozenSet[str]]:
    """module -> the names other project modules take from it: ``from M import n``, ``M.n`` through an import
    of ``M``, and ``"M.n"`` in a string (``mock.patch``, ``monkeypatch.setattr``).  ``"*"`` for a star import.

    A module imported whole and then passed on (``setattr(tasks, "SessionLocal", ...)``) counts every string
    argument next to it as a name taken, so a patched attribute is never removed.
    """
    names: dict[str, set[str]] = {m: set() for m in modules}
    for importer, data in modules.items():
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        bound: dict[str, str] = {}  # local name -> project module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = importer.split(".")
                    up = parts[: len(parts) - node.level] if len(parts) >= node.level else []
                    base = ".".join([*up, *([node.module] if node.module else [])])
                for alias in node.names:
                    if base in names and base != importer:
                        names[base].add(alias.name)
                    full = f"{base}.{alias.name}" if base else alias.name
                    if full in modules:
                        bound[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                            alias.name.split(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                dotted = _dotted(node)
                if dotted is None:
                    continue
                head, _, rest = dotted.partition(".")
                target = bound.get(head)
                if target is None:
                    continue
                full = f"{target}.{rest}"
                # the longest project module that prefixes the chain owns the next component
                parts = full.split(".")
                for i in range(len(parts) - 1, 0, -1):
                    mod = ".".join(parts[:i])
                    if mod in names and mod != importer:
                        names[mod].add(parts[i])
                        break
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
                mod, _, attr = node.value.rpartition(".")
                if mod in names and attr.isidentifier():
                    names[mod].add(attr)
            elif isinstance(node, ast.Call) and any(isinstance(a, ast.Name) and a.id in bound for a in node.args):
                for a in node.args:
                    if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.isidentifier():
                        for arg in node.args:
                            if isinstance(arg, ast.Name) and arg.id in bound:
                                names[bound[arg.id]].add(a.value)
    return {m: frozenset(v) for m, v in names.items() if v}


def _dotted(node: ast.expr) -> Optional[str]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


# --------------------------------------------------------------------------------------------- unused imports


def _unused(code: str) -> Optional[set[str]]:
    """pyflakes' "imported but unused" bindings, as it names them (``sqlalchemy.orm.Session``, ``time``)."""
    from pyflakes import checker, messages

    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    found = checker.Checker(tree, filename="<tidy>")
    return {m.message_args[0] for m in found.messages if isinstance(m, messages.UnusedImport)}


def _dunder_all(module: cst.Module) -> set[str]:
    out: set[str] = set()
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else \
                    [small.target] if isinstance(small, (cst.AugAssign, cst.AnnAssign)) else []
                if any(isinstance(t, cst.Name) and t.value == "__all__" for t in targets) and small.value is not None:
                    for node in _walk(small.value):
                        if isinstance(node, cst.SimpleString):
                            out.add(node.evaluated_value)
    return out


def _walk(node: cst.CSTNode) -> Iterable[cst.CSTNode]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _flake_name(module: str, alias: cst.ImportAlias, relative: str = "") -> str:
    name = _EMPTY.code_for_node(alias.name)
    asname = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None
    if module or relative:
        full = f"{relative}{module}.{name}" if module else f"{relative}{name}"
    else:
        full = name
    return f"{full} as {asname}" if asname and asname != name else full


# --------------------------------------------------------------------------------------------- import placement


_FUTURE, _STDLIB, _THIRD, _FIRST, _LOCAL = range(5)


def _section(module: str, relative: bool, style: ImportStyle) -> int:
    if relative:
        return _LOCAL
    top = module.split(".")[0]
    if top == "__future__":
        return _FUTURE
    if top in style.first_party:
        return _FIRST
    if top in sys.stdlib_module_names:
        return _STDLIB
    return _THIRD


def _import_of(stmt: cst.CSTNode) -> Optional[cst.BaseSmallStatement]:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(
            stmt.body[0], (cst.Import, cst.ImportFrom)):
        return stmt.body[0]
    return None


def _key(stmt: cst.SimpleStatementLine, style: ImportStyle) -> tuple:
    node = _import_of(stmt)
    if isinstance(node, cst.Import):
        module = _EMPTY.code_for_node(node.names[0].name)
        return (_section(module, False, style), 0, module.lower(), module)
    assert isinstance(node, cst.ImportFrom)
    dots = "".join("." for _ in node.relative)
    module = _EMPTY.code_for_node(node.module) if node.module is not None else ""
    # isort/Ruff: ``from . import`` after ``from .x import`` (fewer dots last among relatives)
    return (_section(module, bool(dots), style), 1, -len(dots) if dots else 0, module.lower(), module)


def _member_key(alias: cst.ImportAlias) -> tuple:
    name = _EMPTY.code_for_node(alias.name)
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2  # isort's order-by-type
    return (kind, name.lower(), name)


def _stripped(stmt: cst.CSTNode) -> str:
    return " ".join(_EMPTY.code_for_node(stmt.with_changes(leading_lines=())).split())


def _sorted_members(node: cst.ImportFrom) -> cst.ImportFrom:
    if isinstance(node.names, cst.ImportStar):
        return node
    members = sorted(node.names, key=_member_key)
    if [id(a) for a in members] == [id(a) for a in node.names]:
        return node
    last = node.names[-1].comma
    fixed = [a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))) for a in members]
    fixed[-1] = fixed[-1].with_changes(comma=last if node.lpar else cst.MaybeSentinel.DEFAULT)
    if node.lpar and any(isinstance(a.comma, cst.Comma) and not isinstance(a.comma.whitespace_after,
                                                                          cst.SimpleWhitespace) for a in node.names):
        return node  # a hand-wrapped list: not ours to reflow
    return node.with_changes(names=fixed)


def _wrapped_import(node: cst.ImportFrom, indent: str) -> cst.ImportFrom:
    """``from m import (\\n    a,\\n    b,\\n)``: Ruff's isort layout for an import past the line length."""
    if isinstance(node.names, cst.ImportStar):
        return node
    inner = cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True,
                                        last_line=cst.SimpleWhitespace(indent))
    outer = cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True,
                                        last_line=cst.SimpleWhitespace(""))
    names = [a.with_changes(comma=cst.Comma(whitespace_after=inner)) for a in node.names]
    names[-1] = names[-1].with_changes(comma=cst.Comma(whitespace_after=outer))
    return node.with_changes(names=names, lpar=cst.LeftParen(whitespace_after=inner), rpar=cst.RightParen())


def _single_lines(stmt: cst.SimpleStatementLine) -> list[cst.SimpleStatementLine]:
    node = _import_of(stmt)
    if not isinstance(node, cst.ImportFrom) or isinstance(node.names, cst.ImportStar) or len(node.names) == 1:
        return [stmt]
    out = []
    for i, alias in enumerate(sorted(node.names, key=_member_key)):
        one = node.with_changes(names=[alias.with_changes(comma=cst.MaybeSentinel.DEFAULT)], lpar=None, rpar=None)
        out.append(stmt.with_changes(body=[one], leading_lines=stmt.leading_lines if i == 0 else ()))
    return out


def _place_imports(module: cst.Module, original: cst.Module, style: ImportStyle) -> cst.Module:
    """Move import statements the rewrite added into their isort section, sorted; sort and wrap the members of
    ``from`` imports the rewrite extended."""
    old_stmts = {_stripped(s) for s in original.body if _import_of(s) is not None}
    old_from = {_EMPTY.code_for_node(n.module) for s in original.body
                if isinstance(n := _import_of(s), cst.ImportFrom) and n.module is not None and not n.relative}
    body = list(module.body)
    start = next((i for i, s in enumerate(body) if _import_of(s) is not None), None)
    if start is None:
        return module
    end = start
    while end < len(body) and _import_of(body[end]) is not None:
        end += 1
    block = body[start:end]
    new: list[cst.SimpleStatementLine] = []
    kept: list[cst.SimpleStatementLine] = []
    for stmt in block:
        node = _import_of(stmt)
        text = _stripped(stmt)
        if text in old_stmts:
            kept.append(stmt)
            continue
        module_name = _EMPTY.code_for_node(node.module) if isinstance(node, cst.ImportFrom) and node.module else ""
        if isinstance(node, cst.ImportFrom) and module_name in old_from and not node.relative:
            kept.append(stmt.with_changes(body=[_sorted_members(node)]))  # an import the user had, extended
            continue
        for one in (_single_lines(stmt) if style.force_single_line else [stmt]):
            n = _import_of(one)
            new.append(one.with_changes(body=[_sorted_members(n) if isinstance(n, cst.ImportFrom) else n],
                                        leading_lines=()))
    if not new or not kept:
        result = kept + new
    else:
        result = list(kept)
        for stmt in sorted(new, key=lambda s: _key(s, style)):
            result = _insert(result, stmt, style)
    if not kept:
        result[0] = result[0].with_changes(leading_lines=block[0].leading_lines)
    result = [_fit_import(s, style) for s in result]
    # a ``from`` import the rewrite extended further down (after ``sys.path.insert``): its members sorted
    rest = [_fit_import(s.with_changes(body=[_sorted_members(n)]), style)
            if isinstance(n := _import_of(s), cst.ImportFrom) and n.module is not None and not n.relative
            and _EMPTY.code_for_node(n.module) in old_from and _stripped(s) not in old_stmts else s
            for s in body[end:]]
    return module.with_changes(body=[*body[:start], *result, *rest])


def _fit_import(stmt: cst.SimpleStatementLine, style: ImportStyle) -> cst.SimpleStatementLine:
    node = _import_of(stmt)
    if not isinstance(node, cst.ImportFrom) or node.lpar:
        return stmt
    line = _EMPTY.code_for_node(stmt.with_changes(leading_lines=())).rstrip("\n")
    if len(line) <= style.line_length or "\n" in line:
        return stmt
    return stmt.with_changes(body=[_wrapped_import(node, "    ")])


_BLANK = (cst.EmptyLine(),)


def _insert(block: list[cst.SimpleStatementLine], stmt: cst.SimpleStatementLine,
            style: ImportStyle) -> list[cst.SimpleStatementLine]:
    key = _key(stmt, style)
    section = key[0]
    same = [i for i, s in enumerate(block) if _key(s, style)[0] == section]
    if same:
        after = [i for i in same if _key(block[i], style) > key]
        if after and after[0] == same[0]:  # first of its section: it takes over the section's blank line
            i = same[0]
            first = block[i]
            return [*block[:i], stmt.with_changes(leading_lines=first.leading_lines),
                    first.with_changes(leading_lines=()), *block[i + 1:]]
        i = after[0] if after else same[-1] + 1
        return [*block[:i], stmt.with_changes(leading_lines=()), *block[i:]]
    # a section of its own, between the ones around it
    before = [i for i, s in enumerate(block) if _key(s, style)[0] < section]
    i = before[-1] + 1 if before else 0
    if i == 0:
        first = block[0]
        return [stmt.with_changes(leading_lines=first.leading_lines), first.with_changes(leading_lines=_BLANK),
                *block[1:]]
    rest = block[i:]
    if rest and not any(isinstance(line, cst.EmptyLine) and line.comment is None for line in rest[0].leading_lines):
        rest = [rest[0].with_changes(leading_lines=(*_BLANK, *rest[0].leading_lines)), *rest[1:]]
    return [*block[:i], stmt.with_changes(leading_lines=_BLANK), *rest]


# --------------------------------------------------------------------------------------------- long lines


class _FirstCall(cst.CSTVisitor):
    """The call whose arguments are the longest text (splitting it shortens the line the most); on a tie, the
    first in source order.  Calls already split, and strings, are not looked into."""

    def __init__(self) -> None:
        self.found: Optional[cst.Call] = None
        self._best = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return False
        if isinstance(node, cst.Call) and node.args:
            if isinstance(node.whitespace_before_args, cst.ParenthesizedWhitespace):
                return False
            size = sum(len(_one_line(a)) for a in node.args)
            if size > self._best:
                self.found, self._best = node, size
        return True


def _one_line(node: cst.CSTNode) -> str:
    return _EMPTY.code_for_node(node)


def _pw(indent: str) -> cst.ParenthesizedWhitespace:
    return cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True,
                                       last_line=cst.SimpleWhitespace(indent))


def _split(node: cst.CSTNode, rel: str, unit: str, width: int) -> cst.CSTNode:
    """``node`` (on one line starting ``rel`` deeper than its block, ``width`` columns left for it) with its
    first call's arguments split: hugged on one line when they fit, else one per line, each split again."""
    finder = _FirstCall()
    node.visit(finder)
    call = finder.found
    if call is None:
        return node
    inner = rel + unit
    args_text = ", ".join(_one_line(a.with_changes(comma=cst.MaybeSentinel.DEFAULT)) for a in call.args)
    if "\n" not in args_text and len(inner) + len(args_text) <= width:
        args = [a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))) for a in call.args]
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=_pw(rel))
    else:
        args = []
        for i, a in enumerate(call.args):
            a = a.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=cst.SimpleWhitespace(""))
            if len(inner) + len(_one_line(a)) + 1 > width:
                a = a.with_changes(value=_split(a.value, inner, unit, width))
            last = i == len(call.args) - 1
            # no trailing comma after ``*args``/``**kwargs`` (a syntax error before Python 3.6 style; Black omits it)
            comma_ok = not last or not a.star
            comma = cst.Comma(whitespace_after=_pw(rel if last else inner)) if comma_ok else cst.MaybeSentinel.DEFAULT
            if not comma_ok:
                a = a.with_changes(whitespace_after_arg=_pw(rel))
            args.append(a.with_changes(comma=comma))
    new_call = call.with_changes(whitespace_before_args=_pw(inner), args=args)
    return node.deep_replace(call, new_call)


def _split_params(fn: cst.FunctionDef, unit: str, width: int, hug_allowed: bool = True) -> cst.FunctionDef:
    params = fn.params
    order = [*params.posonly_params, *params.params,
             *([params.star_arg] if isinstance(params.star_arg, cst.Param) else []),
             *params.kwonly_params, *([params.star_kwarg] if params.star_kwarg else [])]
    if not order or isinstance(params.star_arg, cst.ParamStar) or params.posonly_params:
        return fn  # a bare ``*`` or ``/`` separator: leave the header as it is
    text = ", ".join(_one_line(p.with_changes(comma=cst.MaybeSentinel.DEFAULT)) for p in order)

    def fix(p: cst.Param, last: bool, hug: bool) -> cst.Param:
        if hug:
            if last:
                return p.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_param=_pw(""))
            return p.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
                                  whitespace_after_param=cst.SimpleWhitespace(""))
        return p.with_changes(comma=cst.Comma(whitespace_after=_pw("" if last else unit)),
                              whitespace_after_param=cst.SimpleWhitespace(""))

    hug = hug_allowed and len(unit) + len(text) <= width
    last = order[-1]
    # a trailing comma after ``**kwargs``/``*args`` is fine on Python 3.6+, but keep Black's habit: none there
    if not hug and (last is params.star_kwarg or last is params.star_arg):
        hug_last = True
    else:
        hug_last = False
    mapping = {id(p): fix(p, p is last, hug or (hug_last and p is last)) for p in order}
    if hug_last and not hug:
        mapping[id(last)] = last.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_param=_pw(""))
    new = params.with_changes(
        params=[mapping[id(p)] for p in params.params],
        kwonly_params=[mapping[id(p)] for p in params.kwonly_params],
        star_arg=mapping[id(params.star_arg)] if isinstance(params.star_arg, cst.Param) else params.star_arg,
        star_kwarg=mapping[id(params.star_kwarg)] if params.star_kwarg else None,
    )
    return fn.with_changes(params=new, whitespace_before_params=_pw(unit))


class _WrapLongLines(cst.CSTTransformer):
    """Split the statements the rewrite created that run past the line length (see the module docstring)."""

    def __init__(self, module: cst.Module, old_lines: set[str], width: int) -> None:
        super().__init__()
        self.unit = module.default_indent
        self.old_lines = old_lines
        self.width = width
        self.indents: list[str] = [""]

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.indents.append(self.indents[-1] + (node.indent if node.indent is not None else self.unit))

    def leave_IndentedBlock(self, original_node, updated_node):
        self.indents.pop()
        return updated_node

    def _too_long(self, first_line: str) -> bool:
        return (len(self.indents[-1]) + len(first_line) > self.width
                and " ".join(first_line.split()) not in self.old_lines)

    def leave_SimpleStatementLine(self, original_node, updated_node):
        text = _one_line(updated_node.with_changes(leading_lines=())).rstrip("\n")
        if "\n" in text or not self._too_long(text):
            return updated_node
        width = self.width - len(self.indents[-1])
        return _split(updated_node, "", self.unit, width)

    def _header(self, node: cst.CSTNode) -> str:
        changes = {"leading_lines": ()}
        if isinstance(node, cst.FunctionDef):
            changes["decorators"] = ()
        return _one_line(node.with_changes(**changes)).split("\n", 1)[0]

    def _compound(self, updated_node, field: str):
        header = self._header(updated_node)
        if not header.rstrip().endswith(":") or not self._too_long(header):
            return updated_node
        width = self.width - len(self.indents[-1])
        part = getattr(updated_node, field)
        return updated_node.with_changes(**{field: _split(part, "", self.unit, width)})

    def leave_If(self, original_node, updated_node):
        return self._compound(updated_node, "test")

    def leave_While(self, original_node, updated_node):
        return self._compound(updated_node, "test")

    def leave_For(self, original_node, updated_node):
        return self._compound(updated_node, "iter")

    def leave_FunctionDef(self, original_node, updated_node):
        header = _one_line(updated_node.with_changes(decorators=(), leading_lines=(), body=cst.SimpleStatementSuite(
            [cst.Pass()]))).rstrip("\n")
        if "#" in header or not any(self._too_long(line) for line in header.splitlines()):
            return updated_node
        # a header the user split already (parameters hugged on one line) is split one per line
        return _split_params(updated_node, self.unit, self.width - len(self.indents[-1]),
                             hug_allowed="\n" not in header)


# --------------------------------------------------------------------------------------------- the codemod


class TidyImports(Codemod):
    """See the module docstring.  ``final``: ``fix`` runs it after the scheduled imports and the await
    parentheses, and only on a file another rewrite changed; ``context.scratch["original"]`` is the file's code
    before any rewrite."""

    DESCRIPTION = "remove imports the rewrite made unused, sort added imports, wrap long generated lines"
    fixes: Sequence[str] = ()
    final = True

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        plan = self.context.scratch.get("plan")
        original_code = self.context.scratch.get("original")
        if original_code is None or tree.code == original_code:
            return tree
        style = getattr(plan, "import_style", None) or ImportStyle()
        try:
            original = cst.parse_module(original_code)
        except cst.ParserSyntaxError:
            return tree
        tree = self._remove_unused(tree, original_code, getattr(plan, "imported_by_others", frozenset()), style)
        tree = _place_imports(tree, original, style)
        old_lines = {" ".join(line.split()) for line in original_code.splitlines()}
        return tree.visit(_WrapLongLines(tree, old_lines, style.line_length))

    def _remove_unused(self, tree: cst.Module, original_code: str, keep: FrozenSet[str],
                       style: ImportStyle) -> cst.Module:
        before, after = _unused(original_code), _unused(tree.code)
        if before is None or after is None:
            return tree
        made_unused = after - before
        if not made_unused or "*" in keep:
            return tree
        protected = set(keep) | _dunder_all(tree)
        scheduled = False
        for stmt in tree.body:
            node = _import_of(stmt)
            if isinstance(node, cst.Import):
                for alias in node.names:
                    name = _EMPTY.code_for_node(alias.name)
                    bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) \
                        else name
                    # ``import app.models`` may be there to register a submodule of the project: kept
                    first_party = name.split(".")[0] in style.first_party
                    if ("." in name and first_party) or bound in protected \
                            or _flake_name("", alias) not in made_unused:
                        continue
                    RemoveImportsVisitor.remove_unused_import(self.context, name,
                                                              asname=bound if alias.asname else None)
                    scheduled = True
            elif isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar):
                module = _EMPTY.code_for_node(node.module) if node.module is not None else ""
                dots = "." * len(node.relative)
                absolute = module
                if dots:
                    # libcst's remover resolves a relative import against the file's package
                    package = (self.context.full_package_name or "").split(".") if self.context.full_package_name \
                        else []
                    if len(dots) - 1 > len(package) or not package:
                        continue
                    base = package[: len(package) - (len(dots) - 1)]
                    absolute = ".".join([*base, *([module] if module else [])])
                if module == "__future__" or not absolute:
                    continue
                for alias in node.names:
                    name = _EMPTY.code_for_node(alias.name)
                    bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) \
                        else name
                    if bound in protected or _flake_name(module, alias, dots) not in made_unused:
                        continue
                    RemoveImportsVisitor.remove_unused_import(self.context, absolute, name,
                                                              asname=bound if alias.asname else None)
                    scheduled = True
        if not scheduled:
            return tree
        tree = RemoveImportsVisitor(self.context).transform_module(tree)
        self.context.scratch.pop(RemoveImportsVisitor.CONTEXT_KEY, None)
        return tree
