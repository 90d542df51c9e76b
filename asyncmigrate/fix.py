"""``asyncmigrate fix``: plan once, rewrite each file on one libcst parse, verify, then diff or write.

Write safety (DESIGN "Write safety"): every changed file is re-parsed with
libcst and compiled before anything is written; writes go to a temporary file
in the same directory and replace the original with ``os.replace`` (a file is
either old or new, never half-written), keeping its permissions, encoding and
newline style (libcst round-trips both).  ``--diff`` and ``--check`` never
write.

Soundness (``soundness.py``): before anything is written, the project is
analysed as the rewrite leaves it; what breaks the invariant leaves the
components that cause it on the sync session (reported with the cause) and
the plan is made again without them, until the rewrite passes (``run_fix``).
After ``--write`` the blocking calls left on the loop are listed unless the
summary already reported them.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import click
import libcst as cst
from libcst.codemod import Codemod, CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from . import pause_points
from .atomic import outside_root, write_bytes_atomic
from .codemods import BY_NAME, PIPELINE, needed
from .codemods.base import FilePlan, ParenthesizeAwaits, merge_scheduled_imports
from .codemods.test_overrides import UNTWINNED
from .analysis.index import backport_syntax, decode_source
from .migration import LeftForHuman, MigrationPlan, plan_migration
from .model import BLOCKS_LOOP
from .report.fix_text import _n, awaits_added, coloured_diff, outside_reason, user_words
from .cli import color_option as _color_option
from .runner import Progress, discover, project_root

#: files worth a libcst parse even without a plan: they may hold Phase-1 code
_PHASE1_WORDS = (b"create_engine", b"sessionmaker", b"create_all", b"dispose", b".pool", b"dependency_overrides",
                 b"monkeypatch")


@dataclass
class FileChange:
    path: str
    old: bytes
    new: bytes
    rewrites: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: ``(sync dependency name, line)`` of test overrides that got no async twin (``test_overrides.UNTWINNED``)
    untwinned: list[tuple[str, int]] = field(default_factory=list)

    def diff(self) -> str:
        """The change as text: each side decoded with its own encoding (BOM, PEP 263 cookie), as an editor shows it."""
        return unified_diff(_text(self.old), _text(self.new), self.path)


def _text(data: bytes) -> str:
    try:
        return decode_source(data)[0]
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return data.decode("utf-8", "replace")


def unified_diff(old: str, new: str, path: str) -> str:
    """A ``git diff``-style patch that ``patch -p1`` applies, including files without a final newline."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


@dataclass
class FixResult:
    changes: list[FileChange] = field(default_factory=list)
    #: input that could not be read or parsed (those files are left alone; the rest can still migrate)
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: rewrites that failed verification or crashed: the migration would be inconsistent, so nothing is written
    rejected: list[tuple[str, str]] = field(default_factory=list)
    left: list[LeftForHuman] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    requirements: dict[Path, tuple[str, str]] = field(default_factory=dict)
    plan: Optional[MigrationPlan] = None
    #: the findings of the whole project as the rewrite leaves it (None: not analysed, e.g. nothing to change)
    after: Optional[list] = None
    #: what the rewrite breaks (``soundness.Violation``) in the last round: non-empty means nothing is written
    violations: list = field(default_factory=list)
    #: how many times the plan was made (one more per round that left components sync)
    rounds: int = 1
    #: ``--strategy``: native, threadpool or auto
    strategy: str = "native"
    #: the thread-pool bridge (``bridge.BridgePlan``) when the strategy is threadpool or auto
    bridge: Optional[object] = None
    #: the files the paths named on the command line cover (None: not known); a change outside it gets its reason
    scope: Optional[set] = None
    #: ``(path, sync dependency name, line)``: test overrides of the session dependency with no async twin
    untwinned: list[tuple[str, str, int]] = field(default_factory=list)


def transform_file(path: str, data: bytes, plan: FilePlan, rewrites: Sequence[type], gate: bool = True) -> FileChange:
    """Every rewrite of ``rewrites`` in order, on one parse of ``data``.

    With ``gate``, a rewrite whose gate (``codemods.needed``) says the plan gives it nothing to do in this file
    is not run: each run is a full libcst transform.  ``tests/codemods/test_gates.py`` checks that the gates
    change no output.
    """
    module = cst.parse_module(data)
    package = plan.module.rpartition(".")[0] if plan.module else None
    context = CodemodContext(scratch={"plan": plan}, filename=path, full_module_name=plan.module or None,
                             full_package_name=package)
    change = FileChange(path, data, data)
    original = code = module.code
    context.scratch["original"] = original
    final = [cls for cls in rewrites if getattr(cls, "final", False)]
    for cls in rewrites:
        if cls in final or (gate and not needed(cls, plan, code)):
            continue
        seen = len(context.warnings)
        # ``Codemod.transform_module``, not ``CodemodCommand``'s: scheduled imports are applied once, at the end
        new_module = Codemod.transform_module(cls(context), module)
        new_code = code if new_module is module else new_module.code
        if new_code != code:
            change.rewrites.append(cls.__name__)
        if len(context.warnings) > seen and code != original:
            context.warnings[seen:] = _original_lines(context.warnings[seen:], code, original)
        module, code = new_module, new_code
    module = merge_scheduled_imports(module, context, plan.module)
    if context.scratch.get(AddImportsVisitor.CONTEXT_KEY):
        module = AddImportsVisitor(context).transform_module(module)
    if context.scratch.get(RemoveImportsVisitor.CONTEXT_KEY):
        # only imports a rewrite made unused (e.g. ``contextmanager`` after the swap); never the user's others
        module = RemoveImportsVisitor(context).transform_module(module)
    module = module.visit(ParenthesizeAwaits())
    # the final steps (``TidyImports``) see the finished file, and only a file something else changed
    for cls in final if module.code != original else ():
        new_module = Codemod.transform_module(cls(context), module)
        module = new_module  # housekeeping: not listed among the file's rewrites
    change.new = module.bytes
    change.warnings = list(context.warnings)
    change.untwinned = list(context.scratch.get(UNTWINNED, ()))
    return change


_LINE_PREFIX = re.compile(r"^line (\d+): ")


def _original_lines(warnings: Sequence[str], seen_code: str, original: str) -> list[str]:
    """Warnings given as ``line N: ...`` of ``seen_code`` (what an earlier rewrite left), as lines of ``original``.

    A rewrite reads the module the previous ones produced; its line numbers must still point into the file.
    """
    old, new = original.splitlines(), seen_code.splitlines()
    where: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        for k in range(j2 - j1):
            if tag == "equal":
                where[j1 + k + 1] = i1 + k + 1
            else:  # a changed line points at the original it replaced; an added one at the line after it
                where[j1 + k + 1] = min(i1 + min(k, max(i2 - i1 - 1, 0)) + 1, max(len(old), 1))
    return [_LINE_PREFIX.sub(lambda m: f"line {where.get(int(m[1]), int(m[1]))}: ", w, count=1) for w in warnings]


def _compiles(data: bytes, path: str) -> Optional[Exception]:
    try:
        compile(data, path, "exec", dont_inherit=True)
    except Exception as exc:  # noqa: BLE001
        return exc
    return None


def _parse_any(data: bytes, path: str = "<rewrite>") -> Optional[ast.Module]:
    """``ast.parse``, falling back to the index's backport of newer syntax (PEP 695/758) on older Pythons."""
    try:
        return ast.parse(data, filename=path)
    except (SyntaxError, ValueError):
        pass
    try:
        text, _encoding = decode_source(data)
        backported = backport_syntax(text)
        return ast.parse(backported, filename=path) if backported is not None else None
    except (SyntaxError, ValueError, UnicodeDecodeError, LookupError):
        return None


def _undefined_names(data: bytes, path: str) -> set[str]:
    """Names pyflakes reports as undefined (F821) in ``data``."""
    from pyflakes import checker, messages

    tree = _parse_any(data, path)
    if tree is None:
        return set()
    found = checker.Checker(tree, filename=path)
    return {m.message_args[0] for m in found.messages if isinstance(m, messages.UndefinedName)}


def verify(change: FileChange) -> Optional[str]:
    """Why the new content must not be written (None when it parses and compiles).

    libcst must re-parse it, and ``compile()`` must accept it, unless the original already needs a newer
    Python than this one (e.g. PEP 758 ``except A, B:`` on 3.11): then the libcst re-parse, which knows
    that syntax, is the check.
    """
    try:
        cst.parse_module(change.new)
    except Exception as exc:  # noqa: BLE001 - any failure means "do not write"
        return f"rewritten code does not parse: {type(exc).__name__}: {exc}"
    problem = _compiles(change.new, change.path)
    if problem is not None and _compiles(change.old, change.path) is None:
        return f"rewritten code does not parse on this Python: {type(problem).__name__}: {problem}"
    introduced = _undefined_names(change.new, change.path) - _undefined_names(change.old, change.path)
    if introduced:
        return f"the rewrite would use undefined name(s) {', '.join(sorted(introduced))}"
    return None


def _top_level_names(data: bytes) -> Optional[set[str]]:
    tree = _parse_any(data)
    if tree is None:
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def verify_imports(result: "FixResult", modules: dict[str, tuple[str, bytes]]) -> None:
    """Reject changes that import a name from a project module that (after the rewrite) does not define it.

    ``modules``: dotted module name -> (path, content after the rewrite) for every project file.
    """
    contents = {path: data for path, data in modules.values()}
    defined: dict[str, Optional[set[str]]] = {}
    for change in list(result.changes):
        new_tree, old_tree = _parse_any(change.new), _parse_any(change.old)
        if new_tree is None or old_tree is None:
            continue
        before = {(n.module, a.name) for n in ast.walk(old_tree) if isinstance(n, ast.ImportFrom) and n.module
                  for a in n.names}
        for node in ast.walk(new_tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            target = modules.get(node.module)
            if target is None:
                continue
            if node.module not in defined:
                defined[node.module] = _top_level_names(contents[target[0]])
            names = defined[node.module]
            missing = [a.name for a in node.names if (node.module, a.name) not in before and names is not None
                       and a.name not in names and a.name != "*"]
            if missing:
                result.changes.remove(change)
                result.rejected.append((change.path, f"the rewrite would import {', '.join(missing)} from "
                                                     f"{node.module}, which does not define it"))
                break


def atomic_write(path: str, data: bytes) -> None:
    write_bytes_atomic(path, data)


def atomic_write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


#: the ``_async_database_url`` helper the ``database`` rewrite emits (``codemods/_database/urls.py``), any name
_URL_HELPER_DEF = re.compile(r"^def _async_database_url\w*\(url: str\) -> str:\n(?:[ \t].*\n|[ \t]*\n)*", re.MULTILINE)


#: a database URL written as a string literal (``"sqlite:///./app.db"``, ``f"postgresql+psycopg2://{host}"``)
_URL_SCHEME = re.compile(r"""[rfbu]?["'](sqlite|postgres(?:ql)?|mysql|mariadb)(?:\+\w+)?://""", re.IGNORECASE)


def _url_schemes(run) -> str:
    """The database URL schemes written anywhere in the project's Python files: settings modules and the tests'
    own URLs name databases the database module only reads from the environment."""
    found: set[str] = set()
    for src in run.discovery.sources:
        try:
            text = Path(src.fs_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found.update(m.group(1).lower() for m in _URL_SCHEME.finditer(text))
    return " ".join(sorted(found))


def _drivers(root: Path, plan: MigrationPlan, schemes: str = "") -> set[str]:
    """Async drivers the migrated project needs, from what its database code and requirements mention, and the URL
    schemes of ``_url_schemes``."""
    blobs: list[str] = [schemes]
    if plan.database is not None:
        try:
            # without the run-time URL mapper an earlier run generated: it names every driver
            blobs.append(_URL_HELPER_DEF.sub("", Path(plan.database.path).read_text(encoding="utf-8", errors="replace")))
        except OSError:
            pass
    for name in ("requirements.txt", "pyproject.toml", "requirements-dev.txt", ".env", ".env.example"):
        p = root / name
        if p.is_file():
            blobs.append(p.read_text(encoding="utf-8", errors="replace"))
    text = "\n".join(blobs).lower()
    drivers = set()
    if "sqlite" in text:
        drivers.add("aiosqlite")
    if "postgres" in text or "psycopg" in text:
        drivers.add("asyncpg")
    if "mysql" in text or "mariadb" in text:
        drivers.add("aiomysql")
    return drivers


def _without_casts_unless(plan: MigrationPlan, root: Path) -> MigrationPlan:
    """``plan`` without driver casts (``codemods/driver_casts.py``) unless the project moves to asyncpg: on SQLite
    ``CAST('x' AS INTEGER)`` is 0 where the plain comparison found nothing, so nothing else gets them."""
    if "asyncpg" in _drivers(root, plan) or not any(fp.driver_casts for fp in plan.files.values()):
        return plan
    plan.files = {path: dataclasses.replace(fp, driver_casts={}) for path, fp in plan.files.items()}
    return plan


#: below this many files the rewrites run in this process (a worker pool costs more than it saves)
_PARALLEL_MIN_FILES = 6


def _rewrite_one(item: tuple[str, bytes, FilePlan], rewrites: Sequence[type]) -> tuple[str, str, object]:
    """Rewrite and verify one file: ``(path, "change", FileChange)``, ``(path, "error", why)`` for input libcst
    cannot read (left alone, like the analysis's skipped files) or ``(path, "rejected", why)``."""
    path, data, file_plan = item
    try:
        change = transform_file(path, data, file_plan, rewrites)
    except cst.ParserSyntaxError as exc:
        return path, "error", f"libcst cannot parse: {exc.message} (line {exc.raw_line})"
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:  # the encoding cookie or the bytes
        return path, "error", f"libcst cannot read: {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - one file's crash is that file's error
        return path, "rejected", f"internal error while rewriting: {type(exc).__name__}: {exc}"
    if change.new != change.old:
        problem = verify(change)
        if problem:
            return path, "rejected", problem
    return path, "change", change


def _rewrite_batch(batch: Sequence[tuple[str, bytes, FilePlan]], rewrites: Sequence[type]) -> list:
    return [_rewrite_one(item, rewrites) for item in batch]


def _rewrite_all(work: Sequence[tuple[str, bytes, FilePlan]], rewrites: Sequence[type], jobs: Optional[int],
                 progress=None):
    """``_rewrite_one`` for every file, in the order given; in worker processes when there is enough work."""
    workers = min(jobs if jobs is not None else (os.cpu_count() or 1), len(work))
    if workers < 2 or len(work) < _PARALLEL_MIN_FILES:
        for i, item in enumerate(work):
            yield _rewrite_one(item, rewrites)
            if progress:
                progress(i + 1, len(work))
        return
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    # biggest files first, so that no worker is left with a large one at the end; results in the given order
    order = sorted(range(len(work)), key=lambda i: -len(work[i][1]))
    count = max(workers * 2, len(work) // 8)  # a few files each: balance, and a progress bar that moves
    batches = [[work[i] for i in order[k::count]] for k in range(count)]
    results: dict[str, tuple[str, str, object]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for out in pool.map(partial(_rewrite_batch, rewrites=list(rewrites)), batches):
            for entry in out:
                results[entry[0]] = entry
            if progress:
                progress(len(results), len(work))
    for path, _data, _plan in work:
        yield results[path]


#: rounds of "plan, rewrite, check the invariant, leave the offending components sync" before giving up
_MAX_ROUNDS = 8


STRATEGIES = ("native", "threadpool", "auto")


def _generated_bridge(fs_path: str) -> bool:
    from .codemods.bridge_module import MARKER

    if not fs_path.endswith("db_bridge.py"):
        return False
    try:
        with open(fs_path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().rstrip("\n") == MARKER
    except OSError:
        return False


def run_fix(paths: Sequence[str], config, select: Sequence[str] = (), root: Optional[Path] = None,
            use_cache: bool = True, jobs: Optional[int] = None, progress: bool = False,
            strategy: str = "native") -> FixResult:
    """Plan, rewrite and check the soundness invariant (``soundness.py``) on the project as the rewrite leaves
    it.  Where it fails, the components that cause it stay sync (reported with the cause) and the plan is made
    again without them, until the rewrite passes; what cannot be left out (a violation no converted function
    causes) rejects the migration whole (``rejected``: nothing is written).

    ``strategy`` (issue 10): ``native`` is the above; ``threadpool`` keeps the sync code and only bridges the
    coroutines that block the loop (``bridge.py``); ``auto`` is native, then the bridge on what native left."""
    from .api import analyse_paths

    root = root or project_root(paths)
    run = analyse_paths([str(root)], config, use_cache=use_cache, jobs=jobs, need_analysis=True, progress=progress)
    analysis = run.analysis
    assert analysis is not None
    # the generated bridge module (``codemods/bridge_module.py``) is sync by design: never migrated
    scope = {s.path for s in discover(paths, config).sources if not _generated_bridge(s.fs_path)}
    if strategy == "threadpool":
        result = FixResult(plan=None)
        result.errors += [(err.path, err.message) for err in run.result.errors]
        _bridge_pass(result, run, config, scope, use_cache, jobs)
        result.strategy = strategy
        confine_writes(result, root)
        return result
    rewrites = [BY_NAME[n] for n in select] if select else list(PIPELINE)
    schemes = _url_schemes(run)
    exclude: dict[str, tuple[str, int, str]] = {}
    facts = lint_facts(run, root)
    for rounds in range(1, _MAX_ROUNDS + 1):
        plan = _without_casts_unless(plan_migration(analysis, scope, config, exclude), root)
        result = _rewrite_plan(run, plan, rewrites, jobs, progress, facts)
        result.rounds = rounds
        result.scope = scope
        if not result.changes and not result.rejected:
            break
        violations = soundness_violations(result, run, config, use_cache, jobs)
        fresh = {c: why for c, why in _causes(violations, analysis).items() if c not in exclude}
        # a partial pipeline (``--select``) is not made consistent by leaving code out: it is refused with the reason
        if not violations or not fresh or select:
            break
        exclude.update(fresh)
    if _pin_blockers(result, plan, root):
        return result
    if result.violations:
        rejected = {(p, m) for p, m in result.rejected}
        result.rejected += [(v.path, f"{v.message} (line {v.line})") for v in result.violations
                            if (v.path, v.message) not in rejected]
    result.strategy = strategy
    if strategy == "auto" and not result.rejected:
        _bridge_pass(result, run, config, scope, use_cache, jobs)
    if not select or "database" in select:
        try:
            from .codemods.requirements import update_requirements

            notes: list[str] = []
            result.requirements = (update_requirements(root, _drivers(root, plan, schemes), warnings=notes)
                                   if result.changes else {})
            result.warnings += [(str(root), note) for note in notes]
        except Exception as exc:  # noqa: BLE001
            result.errors.append((str(root), f"cannot update requirements: {type(exc).__name__}: {exc}"))
    confine_writes(result, root)
    return result


def _pin_blockers(result: FixResult, plan: MigrationPlan, root: Path) -> bool:
    """The rewrite needs SQLAlchemy 2.0, so ``fix`` raises a 1.x pin.  Where the project uses 1.4-only API that no
    rewrite changes (``Engine.execute``, ``autocommit=True``, ``MetaData(bind=)``: ``analysis/legacy_api.py``),
    the project could not start on 2.0: then the pin is not raised and nothing that needs 2.0 is written (nothing
    at all: every converted component and the database rewrite need it), and each blocker is reported.  A project
    that already requires 2.0 has that code broken before the migration: reported only.  True when blocked."""
    from .analysis.legacy_api import pin_blockers
    from .codemods.requirements import declares_sqlalchemy_2

    blockers = pin_blockers(plan.legacy)
    if not blockers:
        return False
    if declares_sqlalchemy_2(root):
        result.left += [LeftForHuman(u.path, u.line, f"{u.message} (the project already requires SQLAlchemy 2.0)")
                        for u in blockers]
        return False
    if not result.changes:
        return False
    result.changes, result.rejected, result.violations, result.plan = [], [], [], None
    result.warnings = []  # what the rewrites said of changes that are not made
    result.left = [LeftForHuman(u.path, u.line, f"{u.message}: SQLAlchemy 1.4-only code that no rewrite changes")
                   for u in blockers]
    result.warnings.append((str(root), f"the migration needs SQLAlchemy 2.0 and {len(blockers)} use(s) of 1.4-only "
                                       "API listed above would break on it: the SQLAlchemy pin is not raised and "
                                       "nothing is converted; change them by hand, then run fix again"))
    return True


def lint_facts(run, root: Path) -> tuple[object, dict[str, frozenset]]:
    """What ``TidyImports`` needs beyond one file: the project's isort/Ruff/Black settings and, per module, the
    names other project modules take from it."""
    from .codemods.tidy_imports import imported_by_others, read_style

    contents: dict[str, bytes] = {}
    # input the analysis could not read or refused (over the token budget, hostile nesting) is not parsed here
    skipped = {e.path for e in run.result.errors}
    for src in run.discovery.sources:
        if src.path in skipped:
            continue
        try:
            contents[src.module] = Path(src.fs_path).read_bytes()
        except OSError:
            pass
    return read_style(root, contents), imported_by_others(contents)


def _rewrite_plan(run, plan: MigrationPlan, rewrites: Sequence[type], jobs: Optional[int], progress: bool,
                  facts: Optional[tuple[object, dict[str, frozenset]]] = None) -> FixResult:
    """Every file's rewrites under ``plan``, each verified on its own (parses, compiles, no undefined name)."""
    result = FixResult(plan=plan, left=list(plan.left))
    for err in run.result.errors:
        result.errors.append((err.path, err.message))
    db_words = [b"sqlalchemy", b"sqlmodel"]
    if plan.database is not None:
        db_words.append(plan.database.dotted.rsplit(".", 1)[-1].encode())
    # input the analysis could not read or parse is already reported (``errors``) and is left alone
    unreadable = {p for p, _ in result.errors}
    work: list[tuple[str, bytes, FilePlan]] = []
    for src in run.discovery.sources:
        if src.path in unreadable:
            continue
        file_plan = plan.files.get(src.path)
        try:
            data = Path(src.fs_path).read_bytes()
        except OSError as exc:
            result.errors.append((src.path, f"cannot read: {exc}"))
            continue
        if file_plan is None:
            # Phase-1 code (engine, startup/shutdown, test overrides) without a plan: only in files that
            # talk to SQLAlchemy or to the planned database module ("pool" alone is multiprocessing.pool)
            if not any(w in data for w in _PHASE1_WORDS) or not any(w in data for w in db_words):
                continue
            file_plan = plan.fallback(src.path, src.module)
        if facts is not None:
            file_plan = dataclasses.replace(file_plan, import_style=facts[0],
                                            imported_by_others=facts[1].get(src.module, frozenset()))
        work.append((src.path, data, file_plan))
    bar = Progress(progress, "rewriting")
    try:
        outcomes = list(_rewrite_all(work, rewrites, jobs, bar))
    finally:
        bar.close()
    for path, outcome, value in outcomes:
        if outcome == "error":
            result.errors.append((path, value))
        elif outcome == "rejected":
            result.rejected.append((path, value))
        else:
            result.warnings += [(path, w) for w in value.warnings]
            result.untwinned += [(path, name, line) for name, line in value.untwinned]
            if value.new != value.old:
                result.changes.append(value)
    # a name imported from a project module must exist there after the rewrite
    modules: dict[str, tuple[str, bytes]] = {}
    new_content = {c.path: c.new for c in result.changes}
    for src in run.discovery.sources:
        if src.path in new_content:
            modules[src.module] = (src.path, new_content[src.path])
        else:
            try:
                modules[src.module] = (src.path, Path(src.fs_path).read_bytes())
            except OSError:
                pass
    verify_imports(result, modules)
    return result


def _bridge_pass(result: FixResult, run, config, scope: set[str], use_cache: bool, jobs: Optional[int]) -> None:
    """The thread-pool bridge (``bridge.py``) on the project as ``result`` leaves it: each coroutine that still
    blocks the loop becomes a ``def`` or awaits its blocking part in the threadpool.  Changes merge into
    ``result`` (one change per file); ``result.after`` becomes the findings of the bridged project."""
    from .api import analyse_paths
    from .bridge import plan_bridges
    from .codemods import BRIDGES

    changes = {c.path: c for c in result.changes}
    contents: dict[str, bytes] = {}
    for src in run.discovery.sources:
        if src.path in changes:
            contents[src.path] = changes[src.path].new
            continue
        try:
            contents[src.path] = Path(src.fs_path).read_bytes()
        except OSError:
            pass
    if changes:
        analysis = analyse_paths([], config, use_cache=use_cache, jobs=jobs, discovery=run.discovery,
                                 need_analysis=True, overrides={p: c.new for p, c in changes.items()}).analysis
    else:
        analysis = run.analysis
    from .migration import Planner

    bridge = plan_bridges(analysis, contents, scope, Planner(analysis, None, config).database())
    result.bridge = bridge
    result.left += bridge.left
    for path, file_plan in sorted(bridge.files.items()):
        outcome_path, outcome, value = _rewrite_one((path, contents[path], file_plan), list(BRIDGES.values()))
        if outcome != "change":
            result.rejected.append((path, f"the thread-pool bridge: {value}"))
            continue
        result.warnings += [(path, w) for w in value.warnings]
        if value.new == value.old:
            continue
        if path in changes:
            changes[path].new = value.new
            changes[path].rewrites += value.rewrites
        else:
            result.changes.append(value)
    if bridge.module is not None and any("OffloadToThreadpool" in c.rewrites for c in result.changes):
        path, text = bridge.module
        existing = Path(path).read_bytes() if Path(path).exists() else None
        if existing is None:
            result.changes.append(FileChange(path, b"", text.encode(), ["BridgeModule"]))
        elif existing != text.encode():
            result.warnings.append((path, "exists and is not the bridge module this version generates; left as is"))
    if result.changes:
        after = analyse_paths([], config, use_cache=use_cache, jobs=jobs, discovery=run.discovery,
                              overrides={c.path: c.new for c in result.changes})
        result.after = list(after.result.findings)


def soundness_violations(result: FixResult, before, config, use_cache: bool, jobs: Optional[int]) -> list:
    """The soundness invariant (``soundness.check``) on the project as ``result`` would leave it, before anything
    is written.  A file whose rewrite was rejected on its own (does not compile, imports what is not there) is a
    violation caused by its converted functions.  Kept in ``result.violations``, with lines of the original files;
    the findings in ``result.after`` (the report of what still blocks after ``--write`` reuses them)."""
    from .api import analyse_paths
    from .soundness import Violation, check, original_line

    # ``need_analysis``: the invariant compares two analyses; a cached result of the same rewrite (a second run)
    # has findings only
    after = analyse_paths([], config, use_cache=use_cache, jobs=jobs, discovery=before.discovery,
                          overrides={c.path: c.new for c in result.changes}, need_analysis=True)
    result.after = list(after.result.findings)
    changes = {c.path: (c.old, c.new) for c in result.changes}
    violations = []
    try:
        found = check(before.analysis, after.analysis, changes)
    except Exception as exc:  # noqa: BLE001 - an unchecked rewrite is never written
        found = [Violation("internal", "", 0, "", (), f"internal error in the soundness check: "
                                                      f"{type(exc).__name__}: {exc}", ("internal",))]
    for v in found:
        if v.path in changes and v.kind != "suppressed":  # those are lines of the original already
            old, new = changes[v.path]
            v = dataclasses.replace(v, line=original_line(old, new, v.line))
        violations.append(v)
    violations += untwinned_violations(result, before.analysis, config)
    modules = {fs.path: fs.module for fs in before.analysis.project.files}
    planned = (result.plan.converted | result.plan.make_async) if result.plan is not None else set()
    for path, why in result.rejected:
        why = _root_cause(result, why)
        module = modules.get(path)
        causes = tuple(sorted(f for f in planned if module is not None and f.rsplit(":", 1)[0] == module))
        violations.append(Violation("rejected", path, 1, "", causes, f"the rewrite of this file fails: {why}",
                                    ("rejected", path)))
    result.violations = violations
    return violations


def untwinned_violations(result: FixResult, analysis, config) -> list:
    """The suite overrides the app's session dependency (``dependency_overrides[get_db] = override``) with something
    ``test_overrides`` cannot twin: a session from a factory built inside a fixture, a fixture's in-memory
    session handed out with no async factory in reach.  A converted route or dependency would take
    ``get_async_db``, which nothing overrides, and leave the test database (the suite then fails, or writes to the
    app's own database).  Each converted function that takes the overridden dependency is a cause: it stays sync,
    with the functions linked to it, and the suite's override still reaches it."""
    from .migration import Planner
    from .soundness import Violation

    if not result.untwinned or result.plan is None:
        return []
    p = analysis.project
    planner = Planner(analysis, None, config)
    planned = result.plan.converted | result.plan.make_async
    by_name: dict[str, tuple[str, int]] = {}
    for path, name, line in result.untwinned:
        by_name.setdefault(name, (path, line))
    takers: dict[str, list[str]] = {}
    for fid in sorted(planned):
        fn = p.functions.get(fid)
        if fn is None:
            continue
        for prm in fn.summary.params:
            if prm.depends is not None and (prm.depends[0] != "dep" or prm.depends[2] is None):
                continue
            v = planner._dependency_target(prm, fid)  # ``Depends(get_db)``, in ``Annotated`` or an alias of it
            if v and v[0] == "func" and v[1] in p.functions:
                name = p.functions[v[1]].summary.qualname.rsplit(".", 1)[-1]
                if name in by_name:
                    takers.setdefault(name, []).append(fid)
    out = []
    for name, fids in takers.items():
        path, line = by_name[name]
        out.append(Violation("untwinned-override", path, line, "", tuple(fids),
                             f"the tests override {name} here with a session that gets no async twin, "
                             f"so functions that take {name} stay sync (converted, they would leave the test "
                             "database)", ("untwinned-override", path, name)))
    return out


def _root_cause(result: FixResult, why: str) -> str:
    """A file rejected because it would use an async twin (``AsyncSessionLocal``...) that the database rewrite did
    not define: name why it did not (``create_engine() ... has no URL argument``), not the symptom."""
    plan = result.plan
    names = FilePlan()
    if plan is None or plan.database is None or not any(
            f" {twin}" in why for twin in (names.async_engine, names.async_session_factory, names.async_dependency)):
        return why
    notes = [w for p, w in result.warnings if p == plan.database.path]
    if not notes:
        return why
    return f"{plan.database.path} gets no async engine or session factory ({'; '.join(notes)}), so {why}"


_CAUSE_ORDER = ("coroutine-unawaited", "unknown-receiver", "await-sync", "async-session-sync-use", "rejected", "import",
                "untwinned-override", "post-migration", "blocks-loop", "session-mismatch")


def _causes(violations: Sequence, analysis) -> dict[str, tuple[str, int, str]]:
    """cause fid -> (path, line, root cause) for the planner's ``exclude``: only functions of the original
    project (a function the rewrite adds, such as ``get_async_db``, is no cause)."""
    out: dict[str, tuple[str, int, str]] = {}
    # where one cause has several violations, the most direct one names it (a test that calls a coroutine
    # function without await, rather than the sync session it also passes)
    for v in sorted(violations, key=lambda v: _CAUSE_ORDER.index(v.kind) if v.kind in _CAUSE_ORDER else 99):
        for cause in v.causes:
            if cause in analysis.project.functions and cause not in out:
                out[cause] = (v.path, v.line, v.message)
    return out


def write_changes(result: FixResult, root: Path) -> None:
    pause_points.reached("before-write")
    written = 0
    for change in result.changes:
        if outside_root(change.path, root) is None:  # (confine_writes already moved the others out)
            atomic_write(change.path, change.new)
            written += 1
            pause_points.reached("written", written)
    for path, (_old, new) in result.requirements.items():
        if outside_root(path, root) is None:
            atomic_write_text(path, new)
            written += 1
            pause_points.reached("written", written)


def confine_writes(result: FixResult, root: Path) -> None:
    """Nothing outside the project is ever written.  A source file that resolves outside the root rejects
    the migration (it is part of it: leaving it out could break the rest); a dependency file that does
    (a requirements file linked to a shared location) is only reported."""
    for change in result.changes:
        reason = outside_root(change.path, root)
        if reason is not None:
            result.rejected.append((change.path, reason))
    for path in list(result.requirements):
        reason = outside_root(path, root)
        if reason is not None:
            del result.requirements[path]
            result.warnings.append((str(path), f"{reason}; add the async drivers there by hand"))


def requirement_diffs(result: FixResult) -> str:
    return "".join(unified_diff(old, new, os.path.relpath(path)) for path, (old, new) in result.requirements.items())


def summary_lines(result: FixResult, quiet: bool = False) -> list[str]:
    """The summary on stderr; ``quiet`` keeps what must never go unsaid: what was left for a human, and why
    nothing was written."""
    lines = []
    if quiet:
        return _left_lines(result) + _rejected_lines(result)
    n = len(result.changes) + len(result.requirements)
    lines.append(f"asyncmigrate fix: {n} file(s) to change")
    for change in result.changes:
        lines += _wrapped(f"  {change.path}: ", user_words(change.rewrites).split(", "))
        if result.scope is not None and change.path not in result.scope:
            lines.append(f"    not named: {outside_reason(change.rewrites)}")
    for path in result.requirements:
        lines.append(f"  {os.path.relpath(path)}: async drivers / sqlalchemy[asyncio]")
    if result.plan is not None:
        done = [f"made {_n(len(result.plan.make_async), 'function', 'functions')} async",
                f"moved {_n(len(result.plan.converted), 'function', 'functions')} to AsyncSession"]
        awaits = sum(awaits_added(c) for c in result.changes)
        if awaits:
            done.append(f"added {_n(awaits, 'await', 'awaits')}")
        if result.rounds > 1:
            done.append(f"planned {result.rounds} times (what broke the soundness invariant is left sync)")
        lines.append("  " + ", ".join(done))
    lines += _strategy_lines(result)
    lines += _left_lines(result)
    if result.errors:
        lines.append(f"skipped input ({len(result.errors)}):")
        lines += [f"  {p}: {msg}" for p, msg in result.errors]
    return lines + _rejected_lines(result)


def _strategy_lines(result: FixResult) -> list[str]:
    """Which strategy each component got (``--strategy``), in the summary's words."""
    from .bridge import DEMOTED, OFFLOADED

    if result.strategy == "native":
        return []
    lines = [f"strategy {result.strategy}:"]
    if result.plan is not None:
        files = {f.rsplit(":", 1)[0] for f in result.plan.converted}
        lines.append(f"  native (AsyncSession): {_n(len(result.plan.converted), 'function', 'functions')} in "
                     f"{_n(len(files), 'module', 'modules')}")
    components = getattr(result.bridge, "components", [])
    demoted = [c for c in components if c[3] == DEMOTED]
    offloaded = [c for c in components if c[3] == OFFLOADED]
    lines.append(f"  threadpool: {_n(len(demoted), 'coroutine', 'coroutines')} made def (the framework's threadpool "
                 f"runs {'it' if len(demoted) == 1 else 'them'}), "
                 f"{_n(len(offloaded), 'coroutine awaiting its', 'coroutines awaiting their')} blocking part in the "
                 "threadpool")
    lines += [f"    {path}:{line}: {qual}: {words}" for path, line, qual, words in components]
    return lines


def _wrapped(head: str, phrases: Sequence[str], width: int = 80) -> list[str]:
    """``head`` and the phrases joined by commas, broken between phrases to stay within ``width`` columns."""
    lines, line = [], head
    for i, phrase in enumerate(phrases):
        piece = phrase + ("," if i < len(phrases) - 1 else "")
        if line.strip() and not line.endswith(": ") and len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = "      " + piece
        else:
            line += ("" if line.endswith(": ") or line.endswith(" ") else " ") + piece
    return [*lines, line]


def _left_lines(result: FixResult) -> list[str]:
    left = [str(item) for item in result.left] + [f"{p}: {w}" for p, w in result.warnings]
    return [f"left for a human ({len(left)}):", *(f"  {item}" for item in left)] if left else []


def _rejected_lines(result: FixResult) -> list[str]:
    if not result.rejected:
        return []
    return [f"rewrites that failed verification ({len(result.rejected)}): they do not compile or break the soundness "
            "invariant, and no converted function can be left sync instead; the migration would be inconsistent, so "
            "--write writes nothing:",
            *(f"  {p}: {msg}" for p, msg in result.rejected)]


@click.command("fix")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--diff", "diff_flag", is_flag=True, help="Print a unified diff (coloured on a terminal); write nothing "
              "(default).")
@click.option("--write", "write_flag", is_flag=True, help="Apply the changes (atomically, file by file).")
@click.option("--check", "check_flag", is_flag=True, help="Exit 1 when changes would be made; write nothing.")
@click.option("--select", "rewrites", multiple=True, type=click.Choice(sorted(BY_NAME)),
              help="Run only these rewrites (repeatable).")
@click.option("--root", type=click.Path(file_okay=False, exists=True), help="Project root for cross-module analysis "
              "(default: the directory given, or the nearest one with pyproject.toml/requirements.txt/.git).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--no-cache", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary on stderr, except what is left for a "
              "human and why nothing was written.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="native", show_default=True,
              help="native: rewrite to AsyncSession; threadpool: keep the sync code and run it off the loop "
              "(async def -> def, or await run_in_threadpool); auto: native where the soundness check passes, "
              "the threadpool for what would stay sync on the loop.")
@_color_option
def fix_command(paths, diff_flag, write_flag, check_flag, rewrites, root, config_path, no_cache, quiet,
                strategy) -> None:
    """Rewrite blocking sync-SQLAlchemy code to async SQLAlchemy 2.0 (diff by default)."""
    from .cli import EXIT_FINDINGS, EXIT_OK, EXIT_SKIPPED, get_config, named_path_errors

    given = [name for name, on in (("--diff", diff_flag), ("--write", write_flag), ("--check", check_flag)) if on]
    if len(given) > 1:  # `--diff --write` used to write silently: the last flag won
        raise click.UsageError(f"{' and '.join(given)} cannot be combined: choose one")
    mode = given[0].lstrip("-") if given else "diff"

    paths = paths or (".",)
    config = get_config(config_path, paths)
    # a named path that cannot be read is skipped input, reported and exit 3, as in ``scan`` and ``check``
    paths, path_errors = named_path_errors(paths)
    root_path = Path(root).resolve() if root else None
    if paths:
        result = run_fix(paths, config, rewrites, root_path, use_cache=not no_cache, progress=not quiet,
                         strategy=strategy)
    else:
        result = FixResult()
    result.errors[:0] = [(e.path, e.message) for e in path_errors]
    if mode == "diff":
        text = "".join(c.diff() for c in result.changes) + requirement_diffs(result)
        if text:
            click.echo(coloured_diff(text), nl=False)  # click drops the colours when stdout is not a terminal
    elif mode == "write" and not result.rejected and paths:
        write_changes(result, root_path or project_root(paths))
    for line in summary_lines(result, quiet):
        click.echo(line, err=True)
    if mode == "write" and result.changes and not result.rejected:
        remaining = self_check(paths, config, result)
        if remaining and not quiet:
            click.echo(f"after the rewrite, not reported above ({len(remaining)}): blocking calls still on the loop "
                       "or post-migration bugs:", err=True)
            for f in remaining:
                click.echo(f"  {f.path}:{f.span.line}: {f.code} {f.message}", err=True)
    if mode == "check" and (result.changes or result.requirements):
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_SKIPPED if result.errors or result.rejected else EXIT_OK)


def self_check(paths: Sequence[str], config, result: FixResult):
    """Blocking calls still on the loop in the changed files that the summary did not report."""
    from .api import analyse_paths

    changed = {c.path for c in result.changes}
    reported_lines = {(item.path, item.line) for item in result.left}
    reported_files = {p for p, _ in result.warnings} | {item.path for item in result.left}
    # the analysis of the rewritten project that ``run_fix`` made before writing, or a rescan of what was written
    findings = result.after if result.after is not None else analyse_paths(list(paths), config, use_cache=False).result.findings
    # no blocking call left on the loop that the summary did not report, and no post-migration bug (ASM2xx)
    # in anything the rewrite touched (DESIGN: "no ASM1xx left in scope, no ASM2xx introduced")
    # a session dependency of a coroutine whose blocking part now runs in the threadpool is only handed there
    bridged = {(path, qual) for path, _line, qual, _words in getattr(result.bridge, "components", ())}
    return [f for f in findings
            if f.path in changed and not (f.category == "session-dependency" and (f.path, f.scope) in bridged) and (
                f.code.startswith("ASM2")
                or (f.severity == BLOCKS_LOOP and f.code.startswith("ASM1")
                    and (f.path, f.span.line) not in reported_lines and f.path not in reported_files))]
