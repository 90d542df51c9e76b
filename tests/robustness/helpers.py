"""Run the real command line in a subprocess and read what it reports."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

PathArg = Union[str, bytes, os.PathLike]

#: a file with exactly one finding: ``good.py:5:5: ASM130`` (time.sleep on the loop)
GOOD = b"import time\n\n\nasync def handler():\n    time.sleep(1)\n"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def cli(args: Sequence[PathArg], cwd: PathArg, prelude: Optional[str] = None, timeout: float = 600) -> Run:
    """``python -m asyncmigrate ARGS`` in ``cwd`` (``prelude``: Python run first, in the same process)."""
    if prelude:
        cmd: list = [sys.executable, "-c", prelude + "\nfrom asyncmigrate.cli import main\nmain()\n"]
    else:
        cmd = [sys.executable, "-m", "asyncmigrate"]
    env = dict(os.environ, COLUMNS="250", NO_COLOR="1", PYTHONIOENCODING="utf-8")
    env.pop("ASYNCMIGRATE_CORPUS", None)
    proc = subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, timeout=timeout, env=env)
    # strict decoding: the output itself must be valid UTF-8, whatever the paths were
    run = Run(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    return run


def scan(paths: Sequence[PathArg], cwd: PathArg, fmt: str, *extra: str, prelude: Optional[str] = None,
         cache: bool = False) -> Run:
    args: list = ["scan", "--format", fmt, "-q", *extra]
    if not cache:
        args.append("--no-cache")
    return cli([*args, *paths], cwd, prelude)


def write(path: Union[Path, bytes], data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- trees on disk (fix --diff/--check write nothing)
def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (no ``__pycache__``), by POSIX relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def digest(snap: dict[str, bytes]) -> str:
    """One hash of a ``snapshot``: names and contents."""
    h = hashlib.sha256()
    for rel, data in snap.items():
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def compile_error(data: bytes, name: str) -> Optional[str]:
    """Why ``compile()`` rejects ``data`` on this Python (None when it compiles)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(data, name, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
            return f"{type(exc).__name__}: {exc}"
    return None
