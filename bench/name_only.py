"""How many findings rest on a receiver's name alone, per backend of ``$ASYNCMIGRATE_CORPUS`` (issue 12).

The name fallback (``db``, ``session``) is the last resort: every other finding says where its session comes from.
This prints, per backend directory, the findings, those whose evidence is ``name-only`` and their share, and the
blocks-loop count, so a change to the analysis can be measured before and after::

    ASYNCMIGRATE_CORPUS=/path/to/corpus python bench/name_only.py [name ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from corpus import CORPUS_ENV  # noqa: E402

from asyncmigrate.api import analyse_paths  # noqa: E402
from asyncmigrate.config import Config  # noqa: E402


def measure(root: Path) -> tuple[int, int, int]:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        findings = analyse_paths(["."], Config(root=str(root)), use_cache=False, jobs=1).result.findings
    finally:
        os.chdir(cwd)
    return (len(findings), sum(f.evidence == "name-only" for f in findings),
            sum(f.severity == "blocks-loop" for f in findings))


def main(argv: list[str]) -> int:
    folder = os.environ.get(CORPUS_ENV)
    if not folder or not Path(folder).is_dir():
        print(f"set {CORPUS_ENV} to the folder of backend repositories (shared/CORPUS.md)", file=sys.stderr)
        return 2
    names = argv or sorted(p.name for p in Path(folder).iterdir() if p.is_dir())
    print(f"{'backend':24} {'findings':>8} {'name-only':>9} {'share':>7} {'blocks-loop':>11}")
    for name in names:
        total, by_name, on_loop = measure(Path(folder) / name)
        share = f"{by_name / total:.1%}" if total else "-"
        print(f"{name:24} {total:8} {by_name:9} {share:>7} {on_loop:11}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
