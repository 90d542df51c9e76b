"""Phase 1 ("database"): declare the async drivers and ``sqlalchemy[asyncio]`` in the project's dependencies.

The async engine needs an async DBAPI driver (``aiosqlite``, ``asyncpg``...) and, from SQLAlchemy 2.1 on,
the ``asyncio`` extra, which brings greenlet: without it ``import sqlalchemy.ext.asyncio`` raises ImportError
(SQLALCHEMY_ASYNC.md §0).  This module edits ``requirements*.txt`` / ``.in`` (and ``requirements/``), the PEP 621
``[project].dependencies`` array and Poetry's ``[tool.poetry.dependencies]`` table of ``pyproject.toml`` as
text, keeping order, comments and formatting: missing drivers are appended with a version floor, and the
``sqlalchemy`` requirement gains the ``asyncio`` extra.  A requirement already present in any spelling
(case, ``_``/``-``/``.``) is not added again.  Each pyproject edit is re-read with ``tomllib`` and kept only
if it parses to exactly the intended dependencies.  This is a text transform on dependency files, never on
Python source; the runner writes the results atomically.

Part of the fix for ASM142 (sync driver URL).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Optional

from asyncmigrate import facts

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 without tomli: pyproject.toml is skipped
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

DESCRIPTION = "Add the async drivers and the sqlalchemy[asyncio] extra to requirements files and pyproject.toml."
fixes = ("ASM142",)

_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?")
_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_ARRAY_HEADER = re.compile(r"^\s*\[\[")


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_specs(drivers: set[str], warnings: Optional[list[str]] = None) -> list[tuple[str, str]]:
    """``[(normalised name, "asyncpg>=0.29"), ...]`` for the async drivers, in a stable order."""
    specs: dict[str, str] = {}
    for driver in sorted(drivers):
        requirement = facts.DRIVER_REQUIREMENT.get(driver)
        if requirement is None:
            if warnings is not None:
                warnings.append(f"no requirement is known for the async driver {driver!r}; not added")
            continue
        floor = facts.DRIVER_VERSION_FLOOR.get(driver)
        name = normalise(requirement.split("[", 1)[0])
        specs.setdefault(name, f"{requirement}>={floor}" if floor else requirement)
    return sorted(specs.items())


_SPEC = re.compile(r"(===|==|<=|<|~=|>=|>|!=)\s*([0-9][0-9A-Za-z.*+!-]*)")


def _excludes_2_0(spec: str) -> bool:
    """True when a version specifier cannot select SQLAlchemy 2.x (``==1.3.19``, ``<2.0``, ``~=1.4``).

    The rewritten code needs 2.0: ``async_sessionmaker`` does not exist in 1.4 (SQLALCHEMY_ASYNC.md §3).
    """
    for op, version in _SPEC.findall(spec):
        try:
            major_minor = tuple(int(p) for p in version.replace("*", "0").split(".")[:2] if p.isdigit())
        except ValueError:
            continue
        if not major_minor:
            continue
        major = major_minor[0]
        if op in ("==", "===", "~=") and major < 2:
            return True
        if op == "<" and major_minor <= (2, 0):
            return True
        if op == "<=" and major < 2:
            return True
    return False


_POETRY_PART = re.compile(r"^(\^|~=|~|===|==|<=|<|>=|>|!=)?v?([0-9][0-9A-Za-z.*+!-]*)$")
#: what a raised pin says, in requirements files and in Poetry tables alike
RAISED_PIN = ">=2.0"


def _poetry_excludes_2_0(constraint: str) -> bool:
    """True when a Poetry version constraint cannot select SQLAlchemy 2.x: ``^1.4.36`` (<2.0), ``~1.4``,
    ``1.4.36`` (exact), ``1.4.*``, ``>=1.3,<2.0``; with ``||``, when no alternative can."""
    def alternative_excludes(alt: str) -> bool:
        alt = re.sub(r"(\^|~=|~|===|==|<=|<|>=|>|!=)\s+", r"\1", alt.strip())
        for part in re.split(r"[,\s]+", alt):
            match = _POETRY_PART.match(part)
            if match is None:
                continue
            op, version = match.group(1) or "", match.group(2)
            numbers = [int(p) for p in version.replace("*", "0").split(".")[:2] if p.isdigit()]
            if not numbers:
                continue
            if op in ("", "==", "===", "^", "~", "~=") and numbers[0] < 2:
                return True
            if (op == "<" and tuple(numbers) <= (2, 0)) or (op == "<=" and numbers[0] < 2):
                return True
        return False

    return all(alternative_excludes(alt) for alt in constraint.split("||"))


def _poetry_sqlalchemy(value: Any, notes: Optional[list[str]] = None) -> Any:
    """The Poetry entry of SQLAlchemy after the migration: the ``asyncio`` extra, and a version that can select
    2.0 (a constraint that excludes it becomes ``>=2.0``, and a note says so); ``value`` when nothing changes."""
    table = {"version": value} if isinstance(value, str) else dict(value) if isinstance(value, dict) else None
    if table is None:
        return value
    version = table.get("version")
    if isinstance(version, str) and _poetry_excludes_2_0(version):
        if notes is not None:
            notes.append(f"SQLAlchemy = \"{version}\" (pyproject.toml) pins SQLAlchemy below 2.0; the migrated code "
                         f"needs >= 2.0: the requirement now says {RAISED_PIN} (check the rest of the code base "
                         "against 2.0)")
        table["version"] = RAISED_PIN
    extras = list(table.get("extras", []))
    if facts.SQLALCHEMY_ASYNCIO_EXTRA not in extras:
        table["extras"] = [*extras, facts.SQLALCHEMY_ASYNCIO_EXTRA]
    return table if table != ({"version": value} if isinstance(value, str) else value) else value


def _with_asyncio_extra(requirement: str, notes: Optional[list[str]] = None) -> Optional[str]:
    """``sqlalchemy>=2.0`` -> ``sqlalchemy[asyncio]>=2.0``; None when nothing changes or not a sqlalchemy line.

    A version pin that excludes 2.0 (``SQLAlchemy==1.3.19``) becomes ``>=2.0`` (markers after ``;`` kept),
    and a note says so: the migrated code cannot run on 1.x.
    """
    match = _NAME.match(requirement)
    if match is None or normalise(match.group(1)) != "sqlalchemy":
        return None
    extras = match.group(2)
    names = [e.strip() for e in extras[1:-1].split(",") if e.strip()] if extras else []
    rest = requirement[match.end():]
    spec, sep, marker = rest.partition(";")
    if _excludes_2_0(spec):
        if notes is not None:
            notes.append(f"`{requirement.strip()}` pins SQLAlchemy below 2.0; the migrated code needs >= 2.0: "
                         "the requirement now says >=2.0 (check the rest of the code base against 2.0)")
        trailing = spec[len(spec.rstrip()):]
        rest = RAISED_PIN + trailing + sep + marker
    has_extra = facts.SQLALCHEMY_ASYNCIO_EXTRA in (normalise(e) for e in names)
    new_extras = extras or ""
    if not has_extra:
        new_extras = "[" + ",".join([*names, facts.SQLALCHEMY_ASYNCIO_EXTRA]) + "]"
    new = requirement[: match.start(1)] + match.group(1) + new_extras + rest
    return None if new == requirement else new


# --------------------------------------------------------------------------------------------------
# requirements*.txt
# --------------------------------------------------------------------------------------------------


def _requirement_lines(text: str) -> list[tuple[int, Optional[str]]]:
    """``(line index, normalised name or None)`` for every line; options, comments and continuations give None."""
    out: list[tuple[int, Optional[str]]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        body = re.split(r"\s#", line, maxsplit=1)[0].strip()
        continued = i > 0 and lines[i - 1].rstrip().endswith("\\")
        if not body or body.startswith(("#", "-")) or continued:
            out.append((i, None))
            continue
        match = _NAME.match(body)
        out.append((i, normalise(match.group(1)) if match else None))
    return out


def _included(path: Path, text: str) -> list[Path]:
    """Files pulled in with ``-r`` / ``--requirement``."""
    found: list[Path] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0] in ("-r", "--requirement"):
            found.append((path.parent / parts[1]).resolve())
        elif parts and parts[0].startswith("--requirement="):
            found.append((path.parent / parts[0].split("=", 1)[1]).resolve())
    return found


def _update_requirements_txt(text: str, specs: list[tuple[str, str]], add_drivers: bool,
                             notes: Optional[list[str]] = None) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    names = {name for _, name in _requirement_lines(text) if name}
    for i, name in _requirement_lines(text):
        if name == "sqlalchemy":
            code, sep, comment = lines[i].partition(" #")
            updated = _with_asyncio_extra(code, notes)
            if updated is not None:
                lines[i] = updated + sep + comment
    if "sqlalchemy" not in names and "sqlmodel" in names:
        # SQLModel pins SQLAlchemy without the extra; greenlet is optional from 2.1 on (§0).
        lines.append(f"sqlalchemy[{facts.SQLALCHEMY_ASYNCIO_EXTRA}]")
    if add_drivers:
        lines += [spec for name, spec in specs if name not in names]
    if lines == text.splitlines():
        return text
    return newline.join(lines) + newline


# --------------------------------------------------------------------------------------------------
# pyproject.toml, edited as text and checked with tomllib
# --------------------------------------------------------------------------------------------------


def _table_span(lines: list[str], table: str) -> Optional[tuple[int, int]]:
    """``(first line after the header, end line)`` of ``[table]``."""
    start: Optional[int] = None
    for i, line in enumerate(lines):
        header = _HEADER.match(line) if not _ARRAY_HEADER.match(line) else None
        is_header = header is not None or _ARRAY_HEADER.match(line) is not None
        if start is None and header is not None and header.group(1).replace(" ", "") == table:
            start = i + 1
        elif start is not None and is_header:
            return start, i
    return (start, len(lines)) if start is not None else None


def _scan_array(text: str, open_at: int) -> Optional[tuple[int, list[tuple[int, int]]]]:
    """Position of the ``]`` closing the array opened at ``open_at``, and the spans of its string items."""
    i, depth, items = open_at + 1, 1, []
    while i < len(text):
        c = text[i]
        if c == "#":
            i = text.find("\n", i)
            if i < 0:
                return None
            continue
        if c in "\"'":
            triple = text.startswith(c * 3, i)
            quote = c * 3 if triple else c
            j = i + len(quote)
            while j < len(text) and not text.startswith(quote, j):
                j += 2 if (c == '"' and text[j] == "\\") else 1
            if j >= len(text):
                return None
            if depth == 1:
                items.append((i, j + len(quote)))
            i = j + len(quote)
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return i, items
        i += 1
    return None


def _string_value(token: str) -> Optional[str]:
    if tomllib is None:
        return None
    try:
        return tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return None


def _update_pep621(text: str, specs: list[tuple[str, str]], notes: Optional[list[str]] = None) -> Optional[str]:
    lines = text.splitlines(keepends=True)
    span = _table_span([ln.rstrip("\r\n") for ln in lines], "project")
    if span is None:
        return None
    offset = sum(len(ln) for ln in lines[: span[0]])
    end = sum(len(ln) for ln in lines[: span[1]])
    match = re.compile(r"^[ \t]*dependencies[ \t]*=[ \t]*\[", re.M).search(text, offset, end)
    if match is None:
        return None
    scanned = _scan_array(text, match.end() - 1)
    if scanned is None:
        return None
    close, items = scanned
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), applied back to front
    present: set[str] = set()
    for start, stop in items:
        value = _string_value(text[start:stop])
        if not isinstance(value, str):
            continue
        name_match = _NAME.match(value)
        if name_match:
            present.add(normalise(name_match.group(1)))
        updated = _with_asyncio_extra(value, notes)
        if updated is not None:
            quote = '"' if text[start] == '"' else "'"
            edits.append((start, stop, quote + updated + quote))
    new_specs = [spec for name, spec in specs if name not in present]
    if new_specs:
        quote = '"' if not items or text[items[-1][0]] == '"' else "'"
        inner = text[match.end() : close]
        if "\n" in inner and text.rfind("\n", 0, close) > (items[-1][1] if items else match.end()):
            line_start = text.rfind("\n", 0, close) + 1
            if items:
                last_line = text.rfind("\n", 0, items[-1][0]) + 1
                indent = re.match(r"[ \t]*", text[last_line:]).group(0)  # type: ignore[union-attr]
            else:
                indent = "    "
            newline = "\r\n" if "\r\n" in text else "\n"
            added = "".join(f"{indent}{quote}{spec}{quote},{newline}" for spec in new_specs)
            if items and not _comma_follows(text, items[-1][1], close):
                edits.append((items[-1][1], items[-1][1], ","))
            edits.append((line_start, line_start, added))
        else:  # one line, or the closing bracket shares a line with the last item
            joined = ", ".join(f"{quote}{spec}{quote}" for spec in new_specs)
            if not items:
                edits.append((close, close, joined))
            elif _comma_follows(text, items[-1][1], close):
                comma = text.index(",", items[-1][1], close)
                edits.append((comma + 1, comma + 1, f" {joined},"))
            else:
                edits.append((items[-1][1], items[-1][1], f", {joined}"))
    return _apply(text, edits)


def _comma_follows(text: str, at: int, close: int) -> bool:
    rest = text[at:close]
    for line_part in rest.split("\n"):
        stripped = line_part.split("#", 1)[0].strip()
        if stripped:
            return stripped.startswith(",")
    return False


def _update_poetry(text: str, specs: list[tuple[str, str]], notes: Optional[list[str]] = None) -> Optional[str]:
    lines = text.splitlines(keepends=True)
    span = _table_span([ln.rstrip("\r\n") for ln in lines], "tool.poetry.dependencies")
    if span is None:
        return None
    key_re = re.compile(r"""^(\s*)(["']?)([A-Za-z0-9._-]+)\2(\s*=\s*)(.*?)(\s*(?:#.*)?)$""")
    present: set[str] = set()
    last = span[0] - 1
    newline = "\r\n" if "\r\n" in text else "\n"
    for i in range(span[0], span[1]):
        body = lines[i].rstrip("\r\n")
        match = key_re.match(body)
        if body.strip() and not body.strip().startswith("#"):
            last = i
        if match is None:
            continue
        name = normalise(match.group(3))
        present.add(name)
        if name != "sqlalchemy":
            continue
        value = _string_value(match.group(5))
        wanted = _poetry_sqlalchemy(value, notes)
        if wanted == value or not isinstance(wanted, dict):
            continue
        raw = match.group(5)
        if isinstance(value, str):
            new_value = f'{{ version = "{wanted["version"]}", extras = ["{facts.SQLALCHEMY_ASYNCIO_EXTRA}"] }}'
        else:
            new_value = raw
            if wanted.get("version") != value.get("version"):
                new_value = re.sub(r"""(\bversion\s*=\s*)(["'])[^"']*\2""", lambda m: f"{m[1]}{m[2]}{RAISED_PIN}{m[2]}",
                                   new_value, count=1)
            if facts.SQLALCHEMY_ASYNCIO_EXTRA not in value.get("extras", []):
                extras = re.search(r"extras\s*=\s*\[", new_value)
                if extras:
                    closing = new_value.index("]", extras.end())
                    sep = ", " if new_value[extras.end() : closing].strip() else ""
                    new_value = (new_value[:closing].rstrip() + f'{sep}"{facts.SQLALCHEMY_ASYNCIO_EXTRA}"'
                                 + new_value[closing:])
                else:
                    closing = new_value.rindex("}")
                    new_value = (new_value[:closing].rstrip() + f', extras = ["{facts.SQLALCHEMY_ASYNCIO_EXTRA}"] '
                                 + new_value[closing:])
        ending = lines[i][len(body):]
        indent, quote, key, equals, _, comment = match.groups()
        lines[i] = f"{indent}{quote}{key}{quote}{equals}{new_value}{comment}{ending}"
    added = [_poetry_line(spec) for name, spec in specs if name not in present]
    if added:
        if not lines[last].endswith(("\n", "\r")):
            lines[last] += newline
        lines[last + 1 : last + 1] = [a + newline for a in added]
    return "".join(lines)


def _poetry_line(spec: str) -> str:
    requirement, _, floor = spec.partition(">=")
    name, _, extras = requirement.partition("[")
    version = f">={floor}" if floor else "*"
    if extras:
        return f'{name} = {{ version = "{version}", extras = ["{extras.rstrip("]")}"] }}'
    return f'{name} = "{version}"'


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, stop, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + replacement + text[stop:]
    return text


def _expected_pep621(deps: list[str], specs: list[tuple[str, str]]) -> list[str]:
    present = {normalise(m.group(1)) for d in deps if (m := _NAME.match(d))}
    return [_with_asyncio_extra(d) or d for d in deps] + [s for n, s in specs if n not in present]


def _dig(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _update_pyproject(text: str, specs: list[tuple[str, str]], say: Callable[[str], None]) -> str:
    if tomllib is None:
        say("pyproject.toml: tomllib (Python 3.11+) or tomli is needed to edit it; left alone")
        return text
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        say(f"pyproject.toml does not parse ({error}); left alone")
        return text
    new = text
    deps = _dig(before, "project", "dependencies")
    if isinstance(deps, list) and any(normalise(m.group(1)) in facts.SQLALCHEMY_DISTRIBUTIONS
                                      for d in deps if isinstance(d, str) and (m := _NAME.match(d))):
        pinned: list[str] = []
        candidate = _update_pep621(new, specs, pinned)
        for message in pinned:
            say(message)
        expected = _expected_pep621(deps, specs)
        if candidate is not None and _parses_to(candidate, ("project", "dependencies"), expected):
            new = candidate
        else:
            say("pyproject.toml [project].dependencies has a layout this edit does not handle; left alone "
                f"(add: {', '.join(e for e in expected if e not in deps)})")
    poetry = _dig(before, "tool", "poetry", "dependencies")
    if isinstance(poetry, dict) and any(normalise(k) in facts.SQLALCHEMY_DISTRIBUTIONS for k in poetry):
        pinned = []
        candidate = _update_poetry(new, specs, pinned)
        expected_poetry = _expected_poetry(poetry, specs)
        if candidate is not None and _parses_to(candidate, ("tool", "poetry", "dependencies"), expected_poetry):
            new = candidate
            for message in pinned:
                say(message)
        else:
            say("pyproject.toml [tool.poetry.dependencies] has a layout this edit does not handle; left alone")
    return new


def _expected_poetry(table: dict[str, Any], specs: list[tuple[str, str]]) -> dict[str, Any]:
    expected = dict(table)
    for key, value in table.items():
        if normalise(key) == "sqlalchemy":
            expected[key] = _poetry_sqlalchemy(value)
    present = {normalise(k) for k in table}
    for name, spec in specs:
        if name not in present:
            expected.update(tomllib.loads(_poetry_line(spec)))
    return expected


def _parses_to(text: str, keys: tuple[str, ...], expected: Any) -> bool:
    try:
        return bool(_dig(tomllib.loads(text), *keys) == expected)
    except tomllib.TOMLDecodeError:
        return False


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def _requirement_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, pattern in ((root, "requirements*"), (root / "requirements", "*")):
        if folder.is_dir():
            found += sorted(p for p in folder.glob(pattern) if p.suffix in (".txt", ".in") and p.is_file())
    return found


_DECLARES_2X = re.compile(r"""(?imx)(?<![\w.-])sqlalchemy["']?(?:\[[^\]]*\])?\s*
                              (?:=\s*(?:\{[^}\n]*version\s*=\s*)?["'])?\s*(?:\^|~=|~|===|==|>=|>)\s*v?2(?![0-9])""")


def declares_sqlalchemy_2(root: Path) -> bool:
    """Whether a dependency file of the project already requires SQLAlchemy 2.x (``sqlalchemy>=2.0``,
    ``SQLAlchemy = "^2.0"``): then code that only 1.4 runs is already broken there, not by the migration."""
    paths = _requirement_files(root) + [root / "pyproject.toml", root / "setup.cfg", root / "setup.py"]
    for path in paths:
        try:
            text = _read(path)
        except OSError:
            continue
        if _DECLARES_2X.search(text):
            return True
    return False


def update_requirements(
    root: Path, drivers: set[str], *, warnings: Optional[list[str]] = None
) -> dict[Path, tuple[str, str]]:
    """``{path: (old text, new text)}`` for each dependency file under ``root`` this migration changes.

    Drivers go into the requirements files that list SQLAlchemy (or SQLModel), except those that include
    another such file with ``-r``; when none lists it, into ``requirements.txt``.  A ``.txt`` compiled from a
    ``.in`` (pip-compile) is left for the tool to regenerate, and one pinned with ``--hash`` is only reported:
    an unhashed line would make ``pip install --require-hashes`` fail.  Nothing is written here.
    """
    notes: list[str] = warnings if warnings is not None else []
    specs = requirement_specs(drivers, notes)
    changes: dict[Path, tuple[str, str]] = {}
    texts: dict[Path, str] = {}
    for path in _requirement_files(root):
        text = _read(path)
        if path.suffix == ".txt" and path.with_suffix(".in").is_file():
            notes.append(f"{path.name} is compiled from {path.with_suffix('.in').name}; regenerate it after this change")
        elif "--hash=" in text:
            notes.append(f"{path.name} pins hashes; add the async drivers and sqlalchemy[asyncio] where it is "
                         "compiled from, then regenerate it")
        else:
            texts[path] = text
    uses_sqlalchemy = {
        path for path, text in texts.items()
        if any(name in facts.SQLALCHEMY_DISTRIBUTIONS for _, name in _requirement_lines(text))
    }
    targets = uses_sqlalchemy or ({root / "requirements.txt", root / "requirements.in"} & set(texts))
    resolved_targets = {p.resolve() for p in targets}
    for path, text in texts.items():
        includes_target = any(inc in resolved_targets for inc in _included(path, text))
        add = path in targets and not includes_target
        new = _update_requirements_txt(text, specs, add, notes) if path in targets else text
        if new != text:
            changes[path] = (text, new)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        text = _read(pyproject)
        new = _update_pyproject(text, specs, lambda message: notes.append(message))
        if new != text:
            changes[pyproject] = (text, new)
    return changes
