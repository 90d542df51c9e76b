"""Hostile input: time and peak memory of ``scan`` and ``fix --diff`` on files built to hurt a parser.

Prints one table (nothing here asserts; tests/security/test_hostile_files.py checks the per-file errors).
Each file sits in its own directory beside one ordinary file with one finding, and each command runs in a
fresh process with ``--no-cache`` (``scan`` also ``-j 1``); peak RSS is the process tree's (``resource.RUSAGE_CHILDREN``).

    python bench/hostile.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.security.hostile import GOOD, HOSTILE  # noqa: E402


def measure(args: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS MiB, exit code and the line that reports the hostile file."""
    code = ("import resource, subprocess, sys, json; p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
            "print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.stdout + p.stderr]))")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "asyncmigrate", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    import json

    rc, rss_kb, text = json.loads(out.stdout)
    line = next((ln.strip() for ln in text.splitlines() if "hostile.py" in ln), "analysed")
    return wall, rss_kb / 1024, rc, line


def _at_budget(path: Path) -> None:
    """The largest file the budget lets through: 333,000 one-line functions (999,000 punctuation tokens)."""
    path.write_text("def f():0\n" * 333_000)


#: the tests' hostile files, and the worst case the budget still admits (the memory bound)
CASES = {**HOSTILE, "at-budget": ("333,000 functions, just under the token budget", _at_budget)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build the trees here and keep them")
    opts = parser.parse_args()
    base = opts.keep or Path(tempfile.mkdtemp(prefix="asyncmigrate-hostile-"))
    print("| file | what | scan s | scan MiB | fix --diff s | fix MiB | reported as |")
    print("|---|---|---|---|---|---|---|")
    for name, (what, builder) in CASES.items():
        root = base / name
        if not root.exists():
            root.mkdir(parents=True)
            (root / "good.py").write_text(GOOD)
            builder(root / "hostile.py")
        scan = measure(["scan", ".", "--no-cache", "-j", "1", "-q"], root)
        fix = measure(["fix", ".", "--diff", "--no-cache"], root)
        print(f"| {name} | {what} | {scan[0]:.2f} | {scan[1]:.0f} | {fix[0]:.2f} | {fix[1]:.0f} | {scan[3][:90]} |")


if __name__ == "__main__":
    main()
