"""Files built to hurt a parser, shared by tests/security/test_hostile_files.py and bench/hostile.py."""

from __future__ import annotations

import os
from pathlib import Path

GOOD = ("import time\nfrom sqlalchemy.orm import Session\n\n\nasync def handler(db: Session):\n    time.sleep(1)\n"
        "    db.commit()\n")


def _deep(path: Path) -> None:
    path.write_text("x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n")


def _single_line(path: Path) -> None:
    with open(path, "w") as f:  # 50 MiB on one line
        f.write('x = "')
        chunk = "a" * (1 << 20)
        for _ in range(50):
            f.write(chunk)
        f.write('"\n')


def _functions(path: Path) -> None:
    path.write_text("def f():0\n" * 1_000_000)


def _farm(path: Path) -> None:
    """A symlink farm: 1,000 links to one file, links to links, to the parent, to ``/``, a loop, and out."""
    farm = path.parent / "farm"
    farm.mkdir()
    real = farm / "real.py"
    real.write_text(GOOD)
    for i in range(1000):
        os.symlink("real.py", farm / f"l{i}.py")
        os.symlink(f"l{i}.py", farm / f"ll{i}.py")
        os.symlink("..", farm / f"up{i}")
    os.symlink("/", farm / "root")
    os.symlink("loop", farm / "loop")
    outside = path.parent.parent / f"{path.parent.name}-outside.py"
    outside.write_text(GOOD + "# SECRET=hunter2\n")
    os.symlink(outside, path)  # out of the tree: never read


#: name -> (what it is, builder of ``hostile.py``)
HOSTILE = {
    "deep": ("a 100,000-deep parenthesis chain", _deep),
    "single-line": ("a 50 MiB single-line file", _single_line),
    "functions": ("10^6 tiny functions (10 MB)", _functions),
    "farm": ("a symlink farm (3,002 links)", _farm),
}


def build(root: Path, name: str) -> Path:
    root.mkdir(parents=True)
    (root / "good.py").write_text(GOOD)
    HOSTILE[name][1](root / "hostile.py")
    return root
