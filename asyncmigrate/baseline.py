"""The CI gate: fingerprints, the ratchet, and the comparison with a git ref.

A baseline records, for every finding *key* -- (path, rule code, enclosing
qualified scope, whitespace-normalised snippet of the matched code) -- how many
findings have that key.  Line numbers are not part of the key, so adding lines
above old findings, reformatting a call or moving a function within its file
leaves the baseline valid.  ``check`` fails (exit 1) when any key's count
grows, and lists the findings beyond the old count (the last ones by
position); a key that shrinks only makes the baseline shrink.

The file (``[tool.asyncmigrate] baseline``, relative to the configuration's
directory; default ``.asyncmigrate-baseline.json``) is pretty, sorted JSON, so
that a reviewer reads its diff::

    {"version": 1, "tool": "asyncmigrate",
     "entries": [{"path": ..., "code": ..., "scope": ..., "snippet": ..., "fingerprint": ..., "count": n}]}

``fingerprint`` is :func:`~asyncmigrate.analysis.findings.fingerprint` of the
four key fields (the same value the JSON and SARIF reports carry); entries are
matched by the fields themselves, so a file stays valid if the hash ever changes.

**Paths** are the one normalisation both sides of every comparison go through
(:class:`PathNormaliser`): POSIX paths relative to the *project root*, the top of
the git work tree that holds the configuration (or, without a configuration,
the first scanned path), else the configuration's directory.  So the baseline's
content does not depend on the directory ``check`` runs from, and it is the
spelling ``git show REF:path`` needs.  ``check`` reports findings with these
paths too, so a reported fingerprint is the one in the baseline.

**Renamed files** keep their entries: a current finding in a file that has no
baseline entries matches an entry with the same code, scope and snippet whose
file no longer exists in the scanned tree (on disk and in the scan).

**Scope**: only entries under the scanned paths and for the selected rules take
part; the others are kept untouched by ``--update-baseline``.  Entries of files
that could not be analysed this time are kept too (and never count as fixed).

``--diff-against REF`` builds the other side from git, never from the work
tree: ``git ls-tree -r -z REF -- <paths>`` lists the blobs and ``git cat-file
--batch`` reads them (what ``git show REF:path`` prints, in one process); the
analysis runs on those contents through ``analyse_paths(..., overrides=...)`` with
module names computed from the ref's own ``__init__.py`` files.  Nothing is
checked out, and the index is not touched.  Both sides share the
content-keyed summary cache (a file unchanged since REF is not parsed again;
the ref's summaries are saved beside the work tree's) and the result cache
(a ref whose tree was analysed before needs no project pass).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import click

from . import cli as _cli
from .analysis.findings import fingerprint
from .cli import (
    common_options,
    exit_code,
    failing,
    format_option,
    prepare,
)
from .atomic import outside_root, write_bytes_atomic
from .config import Config
from .model import BLOCKS_LOOP, FileError, Finding, ScanResult
from .report.plain import plain
from .runner import SKIP_DIRS, Discovery, Source, display_path

BASELINE_VERSION = 1
TOOL = "asyncmigrate"


class BaselineError(Exception):
    """A missing, unreadable or corrupt baseline, or an unusable git ref (exit code 2)."""


# ---------------------------------------------------------------- keys and the file
@dataclass(frozen=True, order=True)
class Key:
    path: str
    code: str
    scope: str
    snippet: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.path, self.code, self.scope, self.snippet)

    @property
    def content(self) -> tuple[str, str, str]:
        """The key without its path: what a renamed file keeps."""
        return (self.code, self.scope, self.snippet)


def key_of(f: Finding) -> Key:
    return Key(f.path, f.code, f.scope, f.snippet)


@dataclass
class Baseline:
    counts: dict[Key, int] = field(default_factory=dict)

    @classmethod
    def from_findings(cls, findings: Iterable[Finding]) -> Baseline:
        counts: dict[Key, int] = defaultdict(int)
        for f in findings:
            counts[key_of(f)] += 1
        return cls(dict(counts))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def dumps(self) -> str:
        entries = [
            {"path": k.path, "code": k.code, "scope": k.scope, "snippet": k.snippet, "fingerprint": k.fingerprint,
             "count": n}
            for k, n in sorted(self.counts.items()) if n > 0
        ]
        doc = {"version": BASELINE_VERSION, "tool": TOOL, "entries": entries}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def loads(cls, text: str, source: str = "<baseline>") -> Baseline:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BaselineError(f"{source}: not valid JSON ({exc}); an unresolved merge? Fix it, or delete it and "
                                "run `asyncmigrate check --update-baseline`") from None
        if not isinstance(doc, dict) or doc.get("tool") != TOOL or "entries" not in doc:
            raise BaselineError(f"{source}: not an asyncmigrate baseline (expected {{\"version\": 1, "
                                "\"tool\": \"asyncmigrate\", \"entries\": [...]}})")
        version = doc.get("version")
        if version != BASELINE_VERSION:
            raise BaselineError(f"{source}: baseline version {version!r} is not supported by this asyncmigrate "
                                f"(it reads version {BASELINE_VERSION})")
        entries = doc["entries"]
        if not isinstance(entries, list):
            raise BaselineError(f"{source}: 'entries' must be a list")
        counts: dict[Key, int] = defaultdict(int)
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise BaselineError(f"{source}: entry {i} is not an object")
            fields = [e.get(k) for k in ("path", "code", "scope", "snippet")]
            if not all(isinstance(v, str) for v in fields) or not fields[0] or not fields[1]:
                raise BaselineError(f"{source}: entry {i} needs string 'path', 'code', 'scope' and 'snippet'")
            count = e.get("count")
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise BaselineError(f"{source}: entry {i} needs a positive integer 'count'")
            # duplicates (a hand-resolved merge) add up rather than fail
            counts[Key(*fields)] += count
        return cls(dict(counts))

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BaselineError(f"no baseline at {_show(path)}: record the current findings with "
                                "`asyncmigrate check --update-baseline PATH...` and commit the file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(f"cannot read baseline {_show(path)}: {exc}") from None
        return cls.loads(text, _show(path))

    def write(self, path: Path) -> None:
        write_atomic(path, self.dumps())


def write_atomic(path: Path, text: str) -> None:
    """Temp file in the same directory, then ``os.replace``: readers see the old file or the new one."""
    write_bytes_atomic(path, text.encode("utf-8"), prefix=f".{path.name}.")


def _show(path: Path | str) -> str:
    """A path for messages: relative to the working directory when below it."""
    p = os.path.abspath(path)
    rel = os.path.relpath(p)
    return display_path(p if rel.startswith("..") else rel)


# ---------------------------------------------------------------- paths
class PathNormaliser:
    """Spells every path the same way: POSIX, relative to the project root (absolute outside it)."""

    def __init__(self, root: Path):
        self.root = Path(os.path.realpath(root))

    def _real(self, path: str, whole: bool) -> str:
        a = os.path.abspath(path)
        if whole:
            return os.path.realpath(a)
        # resolve the directories only: a symlinked file is reported under its own name
        head, tail = os.path.split(a)
        return os.path.join(os.path.realpath(head), tail)

    def __call__(self, path: str, whole: bool = False) -> str:
        real = self._real(path, whole)
        try:
            rel = os.path.relpath(real, self.root)
        except ValueError:  # pragma: no cover - another drive on Windows
            return Path(real).as_posix()
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            return Path(real).as_posix()
        return rel.replace(os.sep, "/")

    def scope_root(self, path: str) -> str:
        return self(path, whole=os.path.isdir(path))

    def absolute(self, rel: str) -> Path:
        return self.root / rel


def project_root(config: Config, paths: Sequence[str]) -> Path:
    """The git work tree's top above the configuration (or the first path); else the configuration's directory."""
    if config.source:
        start = Path(config.root)
    else:
        start = Path(paths[0]) if paths else Path(".")
        if not start.is_dir():
            start = start.parent
    start = Path(os.path.realpath(start))
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return Path(os.path.realpath(config.root))


def under(path: str, roots: Iterable[str]) -> bool:
    return any(r == "." or path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def normalise_result(result: ScanResult, norm: PathNormaliser) -> ScanResult:
    """The result with every path normalised and each fingerprint recomputed for the new spelling."""
    findings = []
    for f in result.findings:
        p = norm(f.path)
        findings.append(f if p == f.path else replace(f, path=p, fingerprint=fingerprint(p, f.code, f.scope, f.snippet)))
    findings.sort(key=Finding.sort_key)
    return ScanResult(
        findings=findings,
        errors=[replace(e, path=norm(e.path)) for e in result.errors],
        files=[norm(p) for p in result.files],
        suppressed=[replace(f, path=norm(f.path)) for f in result.suppressed],
    )


# ---------------------------------------------------------------- the comparison
@dataclass
class Growth:
    key: Key
    before: int  # allowed by the baseline (after following renames)
    now: int
    findings: list[Finding]  # the ``now - before`` reported as new


@dataclass
class Comparison:
    new: list[Finding]
    grown: list[Growth]
    #: baseline keys whose count went down: (key, before, now)
    shrunk: list[tuple[Key, int, int]]
    #: (old path, new path) pairs whose entries followed a rename
    renamed: list[tuple[str, str]]
    before: int  # findings the baseline allows in scope
    now: int  # current findings in scope
    #: the baseline ``--update-baseline`` writes (out-of-scope entries kept as they were)
    updated: Baseline

    @property
    def shrinks_by(self) -> int:
        return sum(b - n for _, b, n in self.shrunk)


def compare(
    baseline: Baseline,
    findings: Sequence[Finding],
    in_scope: Callable[[Key], bool] = lambda k: True,
    scanned: Iterable[str] = (),
    skipped: Iterable[str] = (),
    exists: Callable[[str], bool] = lambda p: False,
) -> Comparison:
    """Compare current findings (paths normalised) with a baseline.

    ``in_scope`` says which baseline entries this run could have reproduced (scanned paths,
    selected rules); ``scanned`` are the files analysed now and ``skipped`` those that could
    not be; ``exists`` says whether a (normalised) path is still on disk, for renames.
    """
    scanned, skipped = set(scanned), set(skipped)
    current: dict[Key, list[Finding]] = defaultdict(list)
    for f in sorted(findings, key=Finding.sort_key):
        current[key_of(f)].append(f)
    base = {k: n for k, n in baseline.counts.items() if in_scope(k) and n > 0}
    kept = {k: n for k, n in baseline.counts.items() if k not in base and n > 0}
    base_paths = {k.path for k in base}

    # entries of files that are gone: a current file without entries may take them over (a rename)
    orphans: dict[tuple[str, str, str], list[Key]] = defaultdict(list)
    for k in sorted(base):
        if k.path not in scanned and k.path not in skipped and not exists(k.path):
            orphans[k.content].append(k)
    left = {k: base[k] for ks in orphans.values() for k in ks}
    allowed: dict[Key, int] = {}
    moves: set[tuple[str, str]] = set()
    for k in sorted(current):
        allow = base.get(k, 0)
        if k.path not in base_paths:
            need = len(current[k])
            for old in orphans.get(k.content, ()):
                take = min(need - allow, left[old])
                if take > 0:
                    left[old] -= take
                    allow += take
                    moves.add((old.path, k.path))
        allowed[k] = allow

    grown: list[Growth] = []
    new: list[Finding] = []
    for k in sorted(current):
        fs = current[k]
        if len(fs) > allowed[k]:
            extra = fs[allowed[k]:]  # the last ones by position
            grown.append(Growth(k, allowed[k], len(fs), extra))
            new += extra
    shrunk: list[tuple[Key, int, int]] = []
    for k in sorted(base):
        if k.path in skipped:
            continue
        if k in left:  # an orphan: whatever no renamed file took is gone
            if left[k] > 0:
                shrunk.append((k, base[k], base[k] - left[k]))
        elif len(current.get(k, ())) < base[k]:
            shrunk.append((k, base[k], len(current.get(k, ()))))

    updated: dict[Key, int] = dict(kept)
    for k, fs in current.items():
        updated[k] = len(fs)
    for k, n in base.items():  # files not analysed this time keep what they had
        if k.path in skipped:
            updated[k] = max(n, updated.get(k, 0))
    return Comparison(
        new=sorted(new, key=Finding.sort_key),
        grown=grown,
        shrunk=shrunk,
        renamed=sorted(moves),
        before=sum(n for k, n in base.items()),
        now=sum(len(fs) for fs in current.values()),
        updated=Baseline(updated),
    )


# ---------------------------------------------------------------- the other side, from git
def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise BaselineError("--diff-against needs git, which is not on PATH") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed"
        raise BaselineError(f"git {args[0]}: {msg}")
    return proc.stdout


def git_toplevel(start: Path) -> Path:
    out = _git(start, "rev-parse", "--show-toplevel").decode("utf-8", "surrogateescape").strip()
    return Path(os.path.realpath(out))


def resolve_ref(root: Path, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise BaselineError(f"--diff-against: {ref!r} is not a git revision")
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except BaselineError:
        raise BaselineError(f"--diff-against: {ref!r} does not name a commit in {_show(root)}") from None


@dataclass(frozen=True)
class TreeEntry:
    path: str  # repository-relative, POSIX
    mode: str
    kind: str
    oid: str


def ls_tree(root: Path, commit: str, pathspecs: Sequence[str]) -> list[TreeEntry]:
    """Every entry under ``pathspecs`` at ``commit`` (paths relative to the repository root)."""
    out = _git(root, "ls-tree", "-r", "-z", commit, "--", *pathspecs)
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, kind, oid = meta.decode().split()
        entries.append(TreeEntry(name.decode("utf-8", "surrogateescape"), mode, kind, oid))
    return entries


def cat_blobs(root: Path, oids: Sequence[str]) -> dict[str, bytes]:
    """Blob contents by object id, through one ``git cat-file --batch``."""
    if not oids:
        return {}
    unique = list(dict.fromkeys(oids))
    out = _git(root, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in unique).encode())
    blobs: dict[str, bytes] = {}
    pos = 0
    for oid in unique:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].decode().split()
        if len(header) != 3:
            raise BaselineError(f"git cat-file: cannot read object {oid}")
        size = int(header[2])
        blobs[oid] = out[nl + 1:nl + 1 + size]
        pos = nl + 1 + size + 1
    return blobs


def ref_module_name(path: str, tree: set[str], root_name: str) -> tuple[str, bool]:
    """``runner.module_name`` for a file at a ref: packages are the ref's own ``__init__.py`` files."""
    p = PurePosixPath(path)
    is_package = p.name == "__init__.py"
    parts = [] if is_package else [p.stem]
    d = p.parent
    while d != PurePosixPath(".") and (d / "__init__.py").as_posix() in tree:
        parts.append(d.name)
        d = d.parent
    if not parts:
        parts = [p.parent.name or root_name]
    return ".".join(reversed(parts)), is_package


def _ancestor_inits(rel: str) -> list[str]:
    p = PurePosixPath(rel)
    return [(d / "__init__.py").as_posix() for d in p.parents if d != PurePosixPath(".")]


def ref_discovery(
    root: Path, commit: str, ref: str, targets: Sequence[tuple[str, str]], config: Config
) -> tuple[Discovery, dict[str, bytes]]:
    """The sources at ``commit`` under ``targets`` ((as given, repository-relative) pairs) and their contents.

    Sources are spelled as ``discover`` would spell the same files in the work tree (so the
    cache and the normalisation treat both sides alike) and filtered by the same rules:
    ``*.py``, the tool directories, ``include``, ``exclude`` and the work tree's ``.gitignore``.
    """
    import pathspec

    from .runner import _Ignores, _rel  # one definition of the discovery rules

    specs = [rel for _, rel in targets]
    inits = sorted({i for rel in specs for i in _ancestor_inits(rel)})
    entries = ls_tree(root, commit, specs + inits)
    tree = {e.path for e in entries}
    include = pathspec.GitIgnoreSpec.from_lines(config.include)
    ignores = _Ignores(config)
    loaded: set[Path] = set()

    def ignored(rel: str, sub: str) -> bool:
        """Whether ``discover`` walking ``rel`` would skip ``rel/sub`` (directories first, like its walk)."""
        base = root if rel == "." else root / rel
        for d in reversed((root / rel / sub).parents):
            if d not in loaded:
                loaded.add(d)
                ignores.load_gitignore(d)
        parts = PurePosixPath(sub).parts
        for i in range(1, len(parts)):
            if parts[i - 1] in SKIP_DIRS or ignores.ignored(base.joinpath(*parts[:i]), True):
                return True
        return ignores.ignored(base / sub, False)

    discovery = Discovery()
    contents: dict[str, bytes] = {}
    chosen: list[tuple[Source, TreeEntry]] = []
    seen: set[str] = set()
    for e in sorted(entries, key=lambda e: e.path):
        if e.kind != "blob" or e.mode not in ("100644", "100755") or e.path in seen:
            continue
        for given, rel in targets:
            if rel == e.path:  # a file named explicitly is always analysed
                walked = Path(given)
            elif under(e.path, [rel]) and e.path.endswith(".py"):
                sub = e.path if rel == "." else e.path[len(rel.rstrip("/")) + 1:]
                walked = Path(given) / sub
                if not include.match_file(walked.as_posix()) or ignored(rel, sub):
                    break
            else:
                continue
            module, is_package = ref_module_name(e.path, tree, root.name)
            # spelled as ``discover`` spells the work tree's copy; ``fs_path`` is never opened
            chosen.append((Source(_rel(walked), f"{ref}:{e.path}", module, is_package), e))
            seen.add(e.path)
            break
    blobs = cat_blobs(root, [e.oid for _, e in chosen])
    for src, e in chosen:
        data = blobs[e.oid]
        if len(data) > config.max_file_size:
            discovery.errors.append(FileError(display_path(src.path), "too-large",
                                              f"file is {len(data)} bytes at {ref}, over max-file-size "
                                              f"({config.max_file_size})"))
            continue
        discovery.sources.append(src)
        contents[src.path] = data
    discovery.sources.sort(key=lambda s: s.path)
    return discovery, contents


def findings_at_ref(
    root: Path, ref: str, paths: Sequence[str], norm: PathNormaliser, config: Config, select: Sequence[str],
    ignore: Sequence[str], use_cache: bool, jobs: int | None,
) -> tuple[ScanResult, str]:
    """The normalised scan result of ``paths`` as they are at ``ref``, read from git objects only."""
    from .api import analyse_paths

    commit = resolve_ref(root, ref)
    targets = []
    for p in paths:
        rel = norm.scope_root(p)
        if PurePosixPath(rel).is_absolute():
            raise BaselineError(f"--diff-against: {p} is outside the git work tree {_show(root)}")
        targets.append((p, rel))
    discovery, contents = ref_discovery(root, commit, ref, targets, config)
    # the same content-keyed cache as the work tree: files unchanged since ``ref`` are not parsed again,
    # and a tree scanned before (the ref as it was last scanned) is served from the result cache
    run = analyse_paths(paths, config, select, ignore, use_cache=use_cache, jobs=jobs, overrides=contents,
                        discovery=discovery)
    return normalise_result(run.result, norm), commit


# ---------------------------------------------------------------- the command
class GateError(click.ClickException):
    exit_code = 2


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(cmp: Comparison, against: str, result: ScanResult, from_git: bool = False) -> str:
    if cmp.new:
        head = f"{_plural(len(cmp.new), 'new finding')} against {against}"
    else:
        head = f"no new findings against {against}"
    text = f"{head} ({cmp.before} there, {cmp.now} now)"
    if cmp.shrinks_by:
        text += f"; {cmp.shrinks_by} fixed" if from_git else f"; the baseline shrinks by {cmp.shrinks_by}"
    if cmp.renamed:
        text += "; entries followed " + ", ".join(f"{a} → {b}" for a, b in cmp.renamed)
    if result.errors:
        text += f"; {_plural(len(result.errors), 'file')} skipped"
    return text


def _text_report(result: ScanResult, lines: Sequence[str]) -> str:
    out: list[str] = []
    for f in result.findings:
        style = {"fg": "red", "bold": True} if f.severity == BLOCKS_LOOP else {"fg": "yellow"}
        out.append(f"{click.style(f'{f.path}:{f.span.line}:{f.span.column}:', bold=True)} "
                   f"{click.style(f.code, **style)} {click.style(f'[{f.severity}]', **style)} {plain(f.message)}")
        if len(f.chain) > 1:
            out.append(click.style(f"    {f.via}: " + " → ".join(f.chain), dim=True))
    for e in result.errors:
        loc = f":{e.line}" if e.line else ""
        out.append(click.style(f"skipped {e.path}{loc}: {e.message}", fg="magenta"))
    if out:
        out.append("")
    out += lines
    return "\n".join(out)


def _json_extra(cmp: Comparison, info: dict) -> dict:
    return {
        "new": [{"path": g.key.path, "code": g.key.code, "scope": g.key.scope, "snippet": g.key.snippet,
                 "fingerprint": g.key.fingerprint, "baseline": g.before, "count": g.now}
                for g in cmp.grown],
        "baseline": {
            **info,
            "before": cmp.before,
            "now": cmp.now,
            "new": len(cmp.new),
            "shrinks_by": cmp.shrinks_by,
            "renamed": [{"from": a, "to": b} for a, b in cmp.renamed],
        },
    }


def render_check(fmt: str, report: ScanResult, cmp: Comparison, info: dict, lines: Sequence[str]) -> str:
    if fmt == "json":
        from .report.json import render
        return render(report, _json_extra(cmp, info))
    if fmt == "sarif":
        from .report.sarif import render
        return render(report, {"asyncmigrate/baseline": _json_extra(cmp, info)["baseline"]})
    if fmt == "github":
        from .report.github import render
        return render(report, "; ".join(lines))
    return _text_report(report, lines)


@click.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False),
              help="Baseline file (default: [tool.asyncmigrate] baseline, or .asyncmigrate-baseline.json beside "
                   "the configuration).")
@click.option("--update-baseline", is_flag=True, help="Write the current findings as the baseline (it may only "
              "shrink).")
@click.option("--allow-growth", is_flag=True, help="With --update-baseline: accept new findings into the baseline.")
@click.option("--diff-against", "ref", metavar="REF", help="Compare with the same paths at a git revision "
              "(read with git, never checked out) instead of the baseline file.")
@format_option
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to a file.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are new findings (still 2 or 3 on errors).")
@common_options
@_cli.color_option
def check_command(paths, baseline_file, update_baseline, allow_growth, ref, fmt, output, exit_zero, fail_on, no_cache,
                  jobs, quiet, **options) -> None:
    """CI gate: fail only on findings that are new compared with the baseline (or with --diff-against REF).

    Findings are keyed by path, rule, enclosing function and the normalised matched code, with a count per
    key, so edits elsewhere, reformatting and moving code within a file do not trip the gate. Exit 0: nothing
    new; 1: new findings (listed), or --update-baseline would grow the baseline; 2: usage, configuration or
    baseline error; 3: some files could not be analysed.
    """
    from .api import analyse_named
    from .selection import PerFileIgnores, apply_per_file_ignores

    paths = paths or (".",)
    if "-" in paths:
        raise click.UsageError("check reads files, not stdin (use `scan -`)")
    if allow_growth and not update_baseline:
        raise click.UsageError("--allow-growth only applies with --update-baseline")
    if update_baseline and ref:
        raise click.UsageError("--update-baseline writes the baseline file; it cannot be combined with --diff-against")
    prep = prepare(paths, **options)
    config, select, ignore, codes = prep.config, prep.select, prep.ignore, prep.codes
    per_file = PerFileIgnores(prep.original)
    if not prep.paths:  # nothing left to analyse (every named path is excluded or unreadable)
        report = ScanResult(errors=prep.errors)
        nothing = Comparison(new=[], grown=[], shrunk=[], renamed=[], before=0, now=0, updated=Baseline())
        _cli.emit(render_check(fmt, report, nothing, {}, ["nothing to check: no named path can be analysed"]), output)
        sys.exit(exit_code(False, bool(prep.errors)))
    paths = prep.paths

    try:
        root = project_root(config, paths)
        if ref:
            root = git_toplevel(root)
        norm = PathNormaliser(root)
        roots = [norm.scope_root(p) for p in paths]
        baseline_path = Path(baseline_file) if baseline_file else Path(config.root) / config.baseline
        if not baseline_file and outside_root(baseline_path, Path(config.root)) is not None:
            # the repository's configuration names the file: it may not point out of the repository
            raise click.UsageError(f"{config.source}: baseline {config.baseline!r}: "
                                   f"{outside_root(baseline_path, Path(config.root))}")
        baseline: Baseline | None = None
        if not ref and not (update_baseline and not baseline_path.exists()):
            baseline = Baseline.load(baseline_path)  # before the scan: a bad baseline fails fast

        run = analyse_named(paths, config, select, ignore, use_cache=not no_cache, jobs=jobs,
                            progress=not quiet and fmt == "text" and not output)
        result = normalise_result(_cli.with_errors(apply_per_file_ignores(run.result, prep.original), prep.errors), norm)
        del run  # the work tree's project pass is not needed any more: never hold two at once
        if ref:
            gc.collect()  # and hand its memory back before the ref's (cheap: little is left alive)
        notes: list[str] = []
        info: dict = {}
        if ref:
            other, commit = findings_at_ref(root, ref, paths, norm, config, select, ignore, not no_cache, jobs)
            other = ScanResult([f for f in other.findings if not per_file.ignores(f.path, f.code, str(norm.absolute(f.path)))],
                               other.errors, other.files, other.suppressed)
            baseline = Baseline.from_findings(other.findings)
            against = f"{ref} ({commit[:12]})"
            info.update({"source": "git", "ref": ref, "commit": commit, "file": None})
            broken = sorted({e.path for e in other.errors})
            if broken:
                notes.append(f"note: {_plural(len(broken), 'file')} could not be analysed at {ref} "
                             f"({', '.join(broken[:5])}{', …' if len(broken) > 5 else ''}); their findings count "
                             "as new")
        else:
            against = _show(baseline_path)
            info.update({"source": "file", "ref": None, "commit": None, "file": against})
    except BaselineError as exc:
        raise GateError(str(exc)) from None

    def in_scope(k: Key) -> bool:
        return (k.code in codes and under(k.path, roots)
                and not per_file.ignores(k.path, k.code, str(norm.absolute(k.path))))

    def exists(p: str) -> bool:
        return (Path(p) if PurePosixPath(p).is_absolute() else norm.absolute(p)).exists()

    creating = baseline is None
    cmp = compare(baseline or Baseline(), result.findings, in_scope, result.files, {e.path for e in result.errors},
                  exists)
    if creating:  # a first baseline records everything: nothing is new
        cmp.new, cmp.grown = [], []
    refused = bool(update_baseline and cmp.new and not allow_growth)
    lines = notes + ([] if creating else [summary_line(cmp, against, result, bool(ref))])
    if refused:
        lines.append(f"refusing to grow the baseline by {_plural(len(cmp.new), 'finding')} (listed); "
                     "pass --allow-growth to accept them")
    elif update_baseline:
        text = cmp.updated.dumps()
        try:
            unchanged = baseline_path.read_text(encoding="utf-8") == text
        except OSError:
            unchanged = False
        if unchanged:
            lines.append(f"{against} is up to date")
        else:
            cmp.updated.write(baseline_path)
            entries = len(cmp.updated.counts)
            lines.append(f"{'created' if creating else 'updated'} {against}: "
                         f"{_plural(cmp.updated.total, 'finding')} under {entries} {'key' if entries == 1 else 'keys'}")
        info["updated"] = not unchanged
    elif cmp.shrinks_by and not ref:
        lines.append("run `asyncmigrate check --update-baseline` to record the smaller baseline")
    info.setdefault("updated", False)
    info["refused"] = refused
    # a refused --update-baseline always fails; otherwise --fail-on and --exit-zero decide
    failed = refused or (not update_baseline and failing(cmp.new, fail_on) and not exit_zero)

    report = ScanResult(findings=cmp.new, errors=result.errors, files=result.files, suppressed=result.suppressed)
    text = render_check(fmt, report, cmp, info, lines)
    _cli.emit(click.unstyle(text) if output else text, output)
    if fmt != "text" or output:
        for line in lines:
            click.echo(line, err=True)
    sys.exit(exit_code(failed, bool(result.errors)))

