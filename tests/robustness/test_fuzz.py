"""Property and fuzz tests: no exception escapes, the output always parses.

Inputs: programs generated from Python's grammar and from libcst's node types
(hypothesmith), mutated real files (standard-library modules and the example
backend with lines deleted, duplicated, swapped, cut or garbled) and small
generated projects whose modules import each other in cycles and assign names
in cycles (the project pass's fixed points).

Every input goes through each entry of :data:`PIPELINES`.  Today that is ``scan``:
the per-file pass (:func:`asyncmigrate.analysis.index.summarize`, which must
return a ``FileSummary`` or a ``FileError`` and pickle round-trip, as the cache
needs), the project pass with every rule
(:func:`asyncmigrate.analysis.findings.analyze`) and the JSON and text reports
(the JSON must load).

**Extension point for ``fix``**: add a function ``fix_pipeline(files)`` with the
same signature to :data:`PIPELINES`: it runs the rewrites on the project in
memory (or in a temporary directory with ``asyncmigrate fix --diff``) and
asserts that nothing raises and that every rewritten file still parses
(``ast.parse``), and that a second run changes nothing.  Every test here then
fuzzes it too.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import sysconfig
from pathlib import Path
from typing import Callable

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from asyncmigrate.analysis.findings import analyze
from asyncmigrate.analysis.index import summarize
from asyncmigrate.model import FileError, FileSummary
from asyncmigrate.report import json as json_report
from asyncmigrate.report import text as text_report
from asyncmigrate.rules.base import all_rules

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "fixtures" / "example_backend"
STDLIB = Path(sysconfig.get_paths()["stdlib"])

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    # CI: the same examples every run (a failure there is reproducible); locally: new ones each run
    derandomize=bool(os.environ.get("CI")),
)


# ------------------------------------------------------------------------------ pipelines
def module_of(path: str) -> tuple[str, bool]:
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]) or "pkg", True
    return ".".join(parts), False


def scan_pipeline(files: dict[str, bytes]) -> None:
    summaries: list[FileSummary] = []
    errors: list[FileError] = []
    for path, data in files.items():
        module, is_package = module_of(path)
        result = summarize(path, data, module, is_package)
        assert isinstance(result, (FileSummary, FileError)), result
        assert pickle.loads(pickle.dumps(result)) == result
        (summaries if isinstance(result, FileSummary) else errors).append(result)
    analysis = analyze(summaries, errors, [cls() for cls in all_rules().values()])
    result = analysis.result
    # a crash inside a rule is reported, not raised: fuzzing must not find one either
    internal = [e for e in result.errors if e.kind == "internal"]
    assert not internal, internal
    doc = json.loads(json_report.render(result))
    assert doc["counts"]["total"]["total"] == len(result.findings)
    text_report.render(result, Console(file=io.StringIO(), width=120, no_color=True))


#: name -> function(files) run on every generated or mutated project (see the module docstring)
PIPELINES: dict[str, Callable[[dict[str, bytes]], None]] = {"scan": scan_pipeline}


def fix_pipeline(files: dict[str, bytes]) -> None:
    """``fix`` on the project in a temporary directory: what ``--write`` would write parses and compiles,
    nothing crashes (a crash inside a rewrite is reported as an internal error and fails here), and once
    the changes are applied a second run changes nothing."""
    import ast
    import tempfile
    import warnings

    from asyncmigrate.config import Config
    from asyncmigrate.fix import run_fix, write_changes

    with tempfile.TemporaryDirectory(prefix="asyncmigrate-fuzz-") as tmp:
        root = Path(tmp)
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        cwd = os.getcwd()
        os.chdir(root)  # fix reports (and reads) paths relative to the working directory
        try:
            result = run_fix(["."], Config(root=str(root)), root=root, use_cache=False, jobs=1)
            crashes = [(p, m) for p, m in result.errors + result.rejected if "internal error" in m]
            assert not crashes, crashes
            for change in result.changes:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "\d" in generated strings
                    ast.parse(change.new)
                    compile(change.new, change.path, "exec", dont_inherit=True)
            if not result.changes or result.rejected:  # all-or-nothing: a rejected rewrite writes nothing
                return
            write_changes(result, root)
            again = run_fix(["."], Config(root=str(root)), root=root, use_cache=False, jobs=1)
            assert not [(c.path, c.diff()) for c in again.changes], "a second fix run still changes files"
        finally:
            os.chdir(cwd)


PIPELINES["fix"] = fix_pipeline

pipelines = pytest.mark.parametrize("pipeline", list(PIPELINES))


# ------------------------------------------------------------------------------ generated programs
@pipelines
@settings(FUZZ, max_examples=40)
@given(source=hypothesmith.from_grammar())
def test_programs_from_the_grammar(pipeline: str, source: str) -> None:
    PIPELINES[pipeline]({"gen.py": source.encode("utf-8", "surrogatepass")})


@pipelines
@settings(FUZZ, max_examples=20)
@given(source=hypothesmith.from_node())
def test_programs_from_libcst_nodes(pipeline: str, source: str) -> None:
    PIPELINES[pipeline]({"gen.py": source.encode("utf-8", "surrogatepass")})


# small projects: modules that import each other (cycles included), classes that inherit
# from imported names (cyclic bases included), names assigned from each other in cycles
MODULES = ["app", "app.db", "app.deps", "app.routes", "app.services.users"]
NAMES = ["get_db", "SessionLocal", "Session", "session", "db", "helper", "Base", "Model", "select", "engine"]


@st.composite
def statements(draw, module: str) -> str:
    other = draw(st.sampled_from(MODULES))
    name, name2 = draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMES))
    choices = [
        f"from {other} import {name}",
        f"from {other} import {name} as {name2}",
        f"import {other}",
        f"import {other} as {name}",
        f"from . import {name}",
        f"from .. import {name}",
        f"{name} = {name2}",
        f"{name} = {name2}()",
        f"{name} = {name2}.{name}",
        f"{name} = {other}.{name2}",
        f"{name}()",
        f"{name}.query({name2}).filter().first()",
        f"{name}.{name2}.commit()",
        f"class {name}({name2}):\n    {name2} = {name}\n    def m(self, {name2}: {name} = Depends({name})):\n"
        f"        self.{name} = {name2}\n        return self.{name}.execute()",
        f"def {name}({name2}: {name2} = Depends({name})):\n    {name2}.add({name})\n    return {name}({name2})",
        f"async def {name}({name2}=Depends({name2})):\n    await {name2}.commit()\n    return {name2}.query({name})",
        f"def {name}():\n    {name2} = {name}()\n    try:\n        yield {name2}\n"
        f"    finally:\n        {name2}.close()",
        f"{name}: {name2} = {name2}",
        f"with {name}() as {name2}:\n    {name2}.commit()",
    ]
    return draw(st.sampled_from(choices))


@st.composite
def projects(draw) -> dict[str, bytes]:
    files: dict[str, bytes] = {"app/__init__.py": b"", "app/services/__init__.py": b""}
    for module in draw(st.lists(st.sampled_from(MODULES), min_size=1, max_size=len(MODULES), unique=True)):
        body = draw(st.lists(statements(module), min_size=1, max_size=12))
        path = module.replace(".", "/") + ("/__init__.py" if module in ("app", "app.services") else ".py")
        files[path] = ("from fastapi import Depends\n" + "\n".join(body) + "\n").encode()
    return files


@pipelines
@settings(FUZZ, max_examples=150)
@given(files=projects())
def test_projects_with_import_and_assignment_cycles(pipeline: str, files: dict[str, bytes]) -> None:
    PIPELINES[pipeline](files)


# ------------------------------------------------------------------------------ mutated real files
def _stdlib_sample(n: int = 40, max_bytes: int = 60_000) -> list[Path]:
    files = sorted(p for p in STDLIB.glob("*.py") if p.stat().st_size <= max_bytes)
    files += sorted(p for p in STDLIB.glob("asyncio/*.py") if p.stat().st_size <= max_bytes)
    rng = random.Random(20240601)
    return sorted(rng.sample(files, min(n, len(files))))


STDLIB_SAMPLE = _stdlib_sample()

mutation = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**6)),
    st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.integers(0, 200)),
    st.tuples(st.just("indent"), st.integers(0, 10**6), st.sampled_from([" ", "    ", "\t", "\x0c"])),
    st.tuples(st.just("garble"), st.integers(0, 10**6), st.binary(min_size=1, max_size=4)),
)


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    lines = data.splitlines(keepends=True) or [b""]
    for op in ops:
        i = op[1] % len(lines)
        if op[0] == "delete" and len(lines) > 1:
            del lines[i]
        elif op[0] == "duplicate":
            lines.insert(i, lines[i])
        elif op[0] == "swap":
            j = op[2] % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op[0] == "cut":
            lines[i] = lines[i][: op[2]]
        elif op[0] == "indent":
            lines[i] = op[2].encode() + lines[i]
        elif op[0] == "garble":
            k = len(lines[i]) // 2
            lines[i] = lines[i][:k] + op[2] + lines[i][k:]
    return b"".join(lines)


@pipelines
@settings(FUZZ, max_examples=60)
@given(index=st.integers(0, len(STDLIB_SAMPLE) - 1), ops=st.lists(mutation, min_size=1, max_size=8))
def test_mutated_stdlib_files(pipeline: str, index: int, ops: list[tuple]) -> None:
    path = STDLIB_SAMPLE[index]
    PIPELINES[pipeline]({path.name: mutate(path.read_bytes(), ops)})


EXAMPLE_FILES = {p.relative_to(EXAMPLE).as_posix(): p.read_bytes() for p in sorted(EXAMPLE.rglob("*.py"))
                 if "__pycache__" not in p.parts}


def _mutated_example_backend(pipeline: str, index: int, ops: list[tuple]) -> None:
    files = dict(EXAMPLE_FILES)
    name = sorted(files)[index]
    files[name] = mutate(files[name], ops)
    PIPELINES[pipeline](files)


@pytest.mark.skipif(not EXAMPLE_FILES, reason="fixtures/example_backend is missing")
@settings(FUZZ, max_examples=60)
@given(index=st.integers(0, max(0, len(EXAMPLE_FILES) - 1)), ops=st.lists(mutation, min_size=1, max_size=8))
def test_mutated_example_backend(index: int, ops: list[tuple]) -> None:
    """One file of the example backend mutated, analysed with the rest of the project (cross-module)."""
    _mutated_example_backend("scan", index, ops)


@pytest.mark.skipif(not EXAMPLE_FILES, reason="fixtures/example_backend is missing")
@settings(FUZZ, max_examples=6)
@given(index=st.integers(0, max(0, len(EXAMPLE_FILES) - 1)), ops=st.lists(mutation, min_size=1, max_size=8))
def test_mutated_example_backend_through_fix(index: int, ops: list[tuple]) -> None:
    """The same through ``fix`` (a whole-project migration and its second run each time: ~10 s of CPU, so
    fewer examples; the other fuzz tests give ``fix`` their full budget)."""
    _mutated_example_backend("fix", index, ops)


def test_example_backend_as_is() -> None:
    """The unmutated project goes through every pipeline (the baseline of the mutations above)."""
    for run in PIPELINES.values():
        run(dict(EXAMPLE_FILES))
