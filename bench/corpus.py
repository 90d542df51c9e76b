"""Locate real Python code to run asyncmigrate on, at run time (see ``shared/CORPUS.md``).

Nothing found here is ever copied into the project.  Three kinds of corpus:

* ``stdlib``: the CPython standard library of the running interpreter
  (``sysconfig.get_paths()["stdlib"]``), without its ``site-packages``;
* ``site-packages``: the purelib/platlib directories of the running environment;
* backends: every directory under ``$ASYNCMIGRATE_CORPUS`` (the real FastAPI +
  SQLAlchemy repositories of CORPUS.md, exported outside the project).

``assemble(min_lines)`` picks whole files, backends first, then the standard
library, then site-packages, until at least ``min_lines`` lines are reached.

Command line::

    python bench/corpus.py --list               # what was found, with file and line counts
    python bench/corpus.py --files --lines 1e6  # the assembled file list, one path a line
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

#: the environment variable naming the folder of backend repositories
CORPUS_ENV = "ASYNCMIGRATE_CORPUS"

#: directories never entered: tool and VCS directories, and the default exclusions of
#: asyncmigrate, Ruff and flake8 (so that a directory walk by any of them would find the same files)
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".bzr", "__pycache__", ".venv", "venv", ".tox", ".nox", "node_modules", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".asyncmigrate_cache", ".eggs", ".direnv", "site-packages", "dist-packages",
    "__pypackages__", "_build", "buck-out", "dist", "build", ".ipynb_checkpoints", ".pytype", ".pants.d", ".vscode",
    "CVS",
})


@dataclass(frozen=True)
class Corpus:
    name: str
    root: Path
    kind: str  # "backend" | "stdlib" | "site-packages"


@dataclass
class FileList:
    """Files picked for a run, with their line counts, in a stable order."""

    files: list[tuple[Path, int]] = field(default_factory=list)
    #: corpus name -> (files, lines) picked from it
    per_corpus: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def lines(self) -> int:
        return sum(n for _, n in self.files)

    def paths(self) -> list[Path]:
        return [p for p, _ in self.files]


def stdlib_corpus() -> Corpus:
    return Corpus("stdlib", Path(sysconfig.get_paths()["stdlib"]), "stdlib")


def site_packages_corpora() -> list[Corpus]:
    paths = sysconfig.get_paths()
    seen: list[Path] = []
    for key in ("purelib", "platlib"):
        p = Path(paths[key])
        if p.is_dir() and p.resolve() not in [s.resolve() for s in seen]:
            seen.append(p)
    return [Corpus("site-packages" if i == 0 else f"site-packages-{i}", p, "site-packages") for i, p in enumerate(seen)]


def backend_corpora(env: Optional[dict] = None) -> list[Corpus]:
    """Each directory under ``$ASYNCMIGRATE_CORPUS`` (empty when unset or missing)."""
    env = os.environ if env is None else env
    base = env.get(CORPUS_ENV)
    if not base or not Path(base).is_dir():
        return []
    return [Corpus(p.name, p, "backend") for p in sorted(Path(base).iterdir())
            if p.is_dir() and not p.name.startswith(".")]  # not caches such as .asyncmigrate_cache


def find_corpora(env: Optional[dict] = None) -> list[Corpus]:
    """Backends (when ``$ASYNCMIGRATE_CORPUS`` is set), then the standard library, then site-packages."""
    return [*backend_corpora(env), stdlib_corpus(), *site_packages_corpora()]


def python_files(root: Path, skip_dirs: Iterable[str] = SKIP_DIRS) -> Iterator[Path]:
    """Regular ``.py`` files below ``root``, sorted, never following symlinks (files or directories)."""
    skip = frozenset(skip_dirs)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            p = Path(dirpath, name)
            if p.is_symlink() or not p.is_file():
                continue
            yield p


def count_lines(path: Path) -> int:
    """Lines as ``wc -l`` would count them, plus a last line without a newline."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    n = data.count(b"\n")
    return n + 1 if data and not data.endswith(b"\n") else n


def corpus_files(corpus: Corpus) -> list[tuple[Path, int]]:
    return [(p, count_lines(p)) for p in python_files(corpus.root)]


def assemble(min_lines: Optional[int] = 1_000_000, corpora: Optional[Sequence[Corpus]] = None,
             max_file_bytes: int = 5_000_000) -> FileList:
    """Whole files, corpus by corpus, until at least ``min_lines`` lines (all of them when None).

    Files over ``max_file_bytes`` are left out (a bench measures typical code, not one generated
    giant; the robustness tests cover those).
    """
    corpora = find_corpora() if corpora is None else corpora
    out = FileList()
    total = 0
    for corpus in corpora:
        if min_lines is not None and total >= min_lines:
            break
        n_files = n_lines = 0
        for path, lines in corpus_files(corpus):
            if min_lines is not None and total >= min_lines:
                break
            try:
                if path.stat().st_size > max_file_bytes:
                    continue
            except OSError:
                continue
            out.files.append((path, lines))
            total += lines
            n_files += 1
            n_lines += lines
        if n_files:
            out.per_corpus[corpus.name] = (n_files, n_lines)
    return out


def _parse_count(text: str) -> int:
    return int(float(text.replace("_", "")))


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="list every corpus found, with file and line counts")
    ap.add_argument("--files", action="store_true", help="print the assembled file list, one path a line")
    ap.add_argument("--lines", type=_parse_count, default=1_000_000,
                    help="lines to assemble for --files (default 1,000,000; 0 = everything)")
    args = ap.parse_args(argv)
    if args.files:
        fl = assemble(args.lines or None)
        for p in fl.paths():
            sys.stdout.write(os.fsdecode(p) + "\n")
        print(f"{len(fl.files)} files, {fl.lines:,} lines", file=sys.stderr)
        return 0
    # --list (the default)
    if not os.environ.get(CORPUS_ENV):
        print(f"${CORPUS_ENV} is not set: no backend repositories (see shared/CORPUS.md)")
    grand_files = grand_lines = 0
    print(f"{'corpus':<48} {'kind':<14} {'files':>7} {'lines':>11}  root")
    for corpus in find_corpora():
        files = corpus_files(corpus)
        lines = sum(n for _, n in files)
        grand_files += len(files)
        grand_lines += lines
        print(f"{corpus.name:<48} {corpus.kind:<14} {len(files):>7,} {lines:>11,}  {corpus.root}")
    print(f"{'total':<48} {'':<14} {grand_files:>7,} {grand_lines:>11,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
