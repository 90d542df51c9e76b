"""Recall and precision of ``asyncmigrate scan`` against hand labels (issue 12).

The labels are data, under ``bench/recall/labels/<owner>+<name>.toml``: for a random
draw of files of one real backend, every use of a sync SQLAlchemy session or engine,
by path, line and category (the scan's category names: ``session-dependency``,
``session-factory``, ``query``, ``session-method``, ``engine``).  The code they label is
never in the project: it is found at run time under ``$ASYNCMIGRATE_CORPUS`` (a
directory ``<owner>+<name>`` or ``<name>``, exported at the label file's commit).

This script scans each repository found (the whole repository, as a user would, so
cross-module facts count), keeps the findings of the labelled categories in the
labelled files, and matches them one-to-one against the labels:

* a label is **found** when a finding of its category covers its line (same line first,
  then a finding whose span contains the line);
* a finding that matches no label is a **false positive**; it is *confirmed* when the
  label file lists the line under ``not_a_use`` (checked by hand and judged not a sync
  session use), *unreviewed* otherwise (look at it: either a label is missing or the
  scan is wrong);
* recall = found / labels, precision = matched findings / findings in labelled files; the last
  column counts the true findings whose evidence is ``name-only`` (found, but only by a name).

Usage::

    ASYNCMIGRATE_CORPUS=/path/to/repos python bench/recall.py            # the table
    python bench/recall.py --misses --false-positives                     # and the lists
    python bench/recall.py --scan-json DIR                                # reuse DIR/<owner>+<name>.json
    python bench/recall.py --draw /path/to/repo --seed 12 -k 10           # the file draw, reproduced

Nothing here asserts; the numbers go in bench/recall/README.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

HERE = Path(__file__).resolve().parent
LABELS = HERE / "recall" / "labels"
PROJECT = HERE.parent
CORPUS_ENV = "ASYNCMIGRATE_CORPUS"

#: the scan categories a label can carry (the session-related ones)
CATEGORIES = ("session-dependency", "session-factory", "query", "session-method", "engine")

# ---------------------------------------------------------------------------------------------
# the draw

#: a file is a candidate when it mentions something session-like (case-sensitive, on purpose broad)
SESSIONISH = re.compile(r"[Ss]ession|\bdb\b|\.query\(|create_engine|sessionmaker")
SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", ".tox", "site-packages"})


def is_test_path(rel: str) -> bool:
    parts = rel.split("/")
    name = parts[-1]
    return (any(p in ("tests", "test", "testing") for p in parts[:-1])
            or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py")


def candidates(root: Path, tests: bool = False) -> list[str]:
    """Sorted relative paths of the ``.py`` files that parse and mention a session-ish name.

    Non-test files, or (``tests=True``) test files only (see ``is_test_path``).
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for fn in filenames:
            if not fn.endswith(".py"):
                continue
            p = Path(dirpath) / fn
            rel = p.relative_to(root).as_posix()
            if is_test_path(rel) != tests:
                continue
            try:
                text = p.read_text(encoding="utf-8")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ast.parse(text)
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                continue
            if SESSIONISH.search(text):
                out.append(rel)
    return sorted(out)


def draw(root: Path, repo: str, seed: int, k: int) -> list[str]:
    """``k`` files drawn without replacement with ``random.Random(f"{seed}:{repo}")``.

    From the non-test candidates; when there are fewer than ``k``, all of them, topped up to
    ``k`` with test files drawn by the same generator.
    """
    rng = random.Random(f"{seed}:{repo}")
    cands = candidates(root)
    picked = rng.sample(cands, min(k, len(cands)))
    if len(picked) < k:
        tests = candidates(root, tests=True)
        picked += rng.sample(tests, min(k - len(picked), len(tests)))
    return sorted(picked)


# ---------------------------------------------------------------------------------------------
# labels and findings


@dataclass(frozen=True)
class Label:
    path: str
    line: int
    category: str
    note: str = ""


@dataclass(frozen=True)
class Hit:
    """A finding of the scan, reduced to what matching needs."""

    path: str
    line: int
    end_line: int
    category: str
    code: str = ""
    evidence: str = ""


@dataclass
class RepoLabels:
    repo: str
    commit: str
    held_out: bool
    files: list[str]
    labels: list[Label]
    #: (path, line) pairs checked by hand and judged not a sync session use
    not_a_use: set[tuple[str, int]] = field(default_factory=set)
    #: the draw that chose ``files`` (see ``draw``)
    seed: int = 12
    k: int = 10

    @property
    def dirname(self) -> str:
        return self.repo.replace("/", "+")


def load_labels(path: Path) -> RepoLabels:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    files, labels, negative = [], [], set()
    for f in doc.get("file", []):
        files.append(f["path"])
        for u in f.get("uses", []):
            if u["category"] not in CATEGORIES:
                raise ValueError(f"{path}: {f['path']}:{u['line']}: unknown category {u['category']!r}")
            labels.append(Label(f["path"], int(u["line"]), u["category"], u.get("note", "")))
        for n in f.get("not_a_use", []):
            negative.add((f["path"], int(n["line"])))
    return RepoLabels(doc["repo"], doc.get("commit", ""), bool(doc.get("held_out", False)), files, labels, negative,
                      int(doc.get("seed", 12)), int(doc.get("k", 10)))


def hits_from_json(doc: dict, strip: str = "") -> list[Hit]:
    """The findings of the labelled categories; ``strip``: a leading directory to drop from paths
    (a scan run from the corpus folder rather than from the repository root)."""
    return [Hit(f["path"].removeprefix("./").removeprefix(strip), f["line"], f.get("end_line") or f["line"], f["category"],
                f.get("code", ""), f.get("evidence", ""))
            for f in doc.get("findings", []) if f.get("category") in CATEGORIES]


@dataclass
class Match:
    found: list[Label] = field(default_factory=list)
    missed: list[Label] = field(default_factory=list)
    matched: list[Hit] = field(default_factory=list)
    #: findings in labelled files that match no label: (hit, confirmed-by-not_a_use)
    false: list[tuple[Hit, bool]] = field(default_factory=list)


def match(labels: Iterable[Label], hits: Iterable[Hit], files: Iterable[str],
          not_a_use: frozenset[tuple[str, int]] | set = frozenset()) -> Match:
    """One-to-one matching of labels to findings of the same path and category.

    Exact line matches are taken first, then a finding whose span (line..end_line)
    contains the label's line; each finding counts for at most one label.
    """
    files = set(files)
    labels = sorted(labels, key=lambda lb: (lb.path, lb.line, lb.category))
    pool = sorted((h for h in hits if h.path in files), key=lambda h: (h.path, h.line, h.category, h.code))
    used: set[int] = set()
    by_label: dict[int, int] = {}
    for exact in (True, False):
        for i, lb in enumerate(labels):
            if i in by_label:
                continue
            for j, h in enumerate(pool):
                if j in used or h.path != lb.path or h.category != lb.category:
                    continue
                if (h.line == lb.line) if exact else (h.line <= lb.line <= h.end_line):
                    used.add(j)
                    by_label[i] = j
                    break
    m = Match()
    for i, lb in enumerate(labels):
        (m.found if i in by_label else m.missed).append(lb)
    for j, h in enumerate(pool):
        if j in used:
            m.matched.append(h)
        else:
            m.false.append((h, (h.path, h.line) in not_a_use))
    return m


def ratio(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "n/a"


# ---------------------------------------------------------------------------------------------
# running the scan


def find_repo(base: Path, repo: str) -> Optional[Path]:
    for name in (repo.replace("/", "+"), repo.split("/")[-1]):
        p = base / name
        if p.is_dir():
            return p
    return None


def scan(root: Path, package_root: Path = PROJECT) -> dict:
    """``asyncmigrate scan --format json`` over the whole repository (its own .gitignore applies),
    with the ``asyncmigrate`` package found in ``package_root`` (default: this checkout)."""
    with tempfile.TemporaryDirectory(prefix="recall-") as tmp:
        out = Path(tmp) / "scan.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "asyncmigrate", "scan", "--format", "json", "-q", "--exit-zero",
               "--no-cache", "-o", str(out), "."]
        r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        if not out.exists():
            raise RuntimeError(f"scan of {root} failed ({r.returncode}): {r.stderr[-2000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# the table


def table(rows: list[tuple[str, list[int]]], header: Sequence[str]) -> str:
    cells = [list(header)] + [[name, str(v[0]), str(v[1]), ratio(v[1], v[0]), str(v[2]), str(v[3]),
                               ratio(v[3], v[2]), str(v[4])] for name, v in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                                       for i, c in enumerate(r)) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


HEADER = ("", "labels", "found", "recall", "findings", "true", "precision", "true by name only")


def add(acc: list[int], m: Match) -> None:
    """labels, found, findings, true findings, true findings whose evidence is ``name-only``."""
    acc[0] += len(m.found) + len(m.missed)
    acc[1] += len(m.found)
    acc[2] += len(m.matched) + len(m.false)
    acc[3] += len(m.matched)
    acc[4] += sum(1 for h in m.matched if h.evidence == "name-only")


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=Path, default=LABELS, help="folder of <owner>+<name>.toml label files")
    ap.add_argument("--corpus", type=Path, default=None, help=f"folder of repositories (default ${CORPUS_ENV})")
    ap.add_argument("--scan-json", type=Path, default=None,
                    help="read DIR/<owner>+<name>.json (scan --format json run from the repository root) instead of scanning")
    ap.add_argument("--package-root", type=Path, default=PROJECT,
                    help="the checkout whose asyncmigrate to run (default: the one this script is in)")
    ap.add_argument("--save-json", type=Path, default=None, help="keep each scan as DIR/<owner>+<name>.json")
    ap.add_argument("--misses", action="store_true", help="list every label the scan missed")
    ap.add_argument("--false-positives", action="store_true", help="list every finding that matches no label")
    ap.add_argument("--only", default="", help="comma-separated <owner>+<name> to restrict to")
    ap.add_argument("--draw", type=Path, default=None, metavar="REPO_DIR", help="print the file draw for REPO_DIR and exit")
    ap.add_argument("--repo", default="", help="with --draw: owner/name (default: the directory name, + for /)")
    ap.add_argument("--check-draw", action="store_true",
                    help="check that each label file's files are exactly the draw its seed and k give, and exit")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args(argv)

    if args.draw:
        repo = args.repo or args.draw.resolve().name.replace("+", "/", 1)
        print(f"# {repo}: {len(candidates(args.draw))} candidates (+ {len(candidates(args.draw, tests=True))} test files), "
              f"seed {args.seed}, k {args.k}")
        print("\n".join(draw(args.draw, repo, args.seed, args.k)))
        return 0

    base = args.corpus or (Path(os.environ[CORPUS_ENV]) if os.environ.get(CORPUS_ENV) else None)
    if args.check_draw:
        bad = 0
        for path in sorted(args.labels.glob("*.toml")):
            rl = load_labels(path)
            root = find_repo(base, rl.repo) if base else None
            if root is None:
                print(f"{rl.repo}: not found")
                continue
            want = draw(root, rl.repo, rl.seed, rl.k)
            ok = sorted(rl.files) == want
            bad += not ok
            print(f"{rl.repo}: {'same files as the draw' if ok else 'DIFFERS from the draw'}"
                  + ("" if ok else f": extra {sorted(set(rl.files) - set(want))}, missing {sorted(set(want) - set(rl.files))}"))
        return 1 if bad else 0
    only = {s for s in args.only.split(",") if s}
    per_repo: list[tuple[str, list[int]]] = []
    per_cat: dict[str, list[int]] = {c: [0, 0, 0, 0, 0] for c in CATEGORIES}
    groups = {False: [0, 0, 0, 0, 0], True: [0, 0, 0, 0, 0]}
    misses: list[str] = []
    falses: list[str] = []
    skipped: list[str] = []
    for path in sorted(args.labels.glob("*.toml")):
        rl = load_labels(path)
        if only and rl.dirname not in only:
            continue
        if args.scan_json:
            jp = args.scan_json / f"{rl.dirname}.json"
            if not jp.exists():
                skipped.append(f"{rl.repo} (no {jp})")
                continue
            doc = json.loads(jp.read_text(encoding="utf-8"))
        else:
            root = find_repo(base, rl.repo) if base else None
            if root is None:
                skipped.append(f"{rl.repo} (not under ${CORPUS_ENV})")
                continue
            doc = scan(root, args.package_root)
            if args.save_json:
                args.save_json.mkdir(parents=True, exist_ok=True)
                (args.save_json / f"{rl.dirname}.json").write_text(json.dumps(doc), encoding="utf-8")
        hits = hits_from_json(doc, f"{rl.dirname}/")
        m = match(rl.labels, hits, rl.files, rl.not_a_use)
        acc = [0, 0, 0, 0, 0]
        add(acc, m)
        per_repo.append((rl.repo + (" (held out)" if rl.held_out else ""), acc))
        for k in range(5):
            groups[rl.held_out][k] += acc[k]
        for c in CATEGORIES:
            add(per_cat[c], Match([x for x in m.found if x.category == c], [x for x in m.missed if x.category == c],
                                  [h for h in m.matched if h.category == c], [x for x in m.false if x[0].category == c]))
        misses += [f"{rl.dirname}/{x.path}:{x.line} {x.category}  {x.note}".rstrip() for x in m.missed]
        falses += [f"{rl.dirname}/{h.path}:{h.line} {h.category} {h.code} [{h.evidence}] "
                   f"{'confirmed' if ok else 'unreviewed'}" for h, ok in m.false]
    if not per_repo:
        print(f"no labelled repository found (set ${CORPUS_ENV} or --scan-json)" +
              ("; skipped: " + ", ".join(skipped) if skipped else ""))
        return 1
    total = [groups[False][k] + groups[True][k] for k in range(5)]
    rows = per_repo + [("main draw", groups[False])] + ([("held out", groups[True])] if groups[True][0] else []) \
        + [("all", total)]
    print("Per repository\n")
    print(table(rows, HEADER))
    print("\nPer category (all repositories)\n")
    print(table([(c, v) for c, v in per_cat.items() if v[0] or v[2]], HEADER))
    if skipped:
        print("\nskipped: " + ", ".join(skipped))
    if args.misses:
        print(f"\nMisses ({len(misses)})")
        print("\n".join(misses))
    if args.false_positives:
        print(f"\nFalse positives ({len(falses)})")
        print("\n".join(falses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
