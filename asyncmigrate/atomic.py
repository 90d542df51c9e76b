"""Atomic file replacement: readers (and a crash at any moment) see the old file or the new one, never half.
And :func:`outside_root`: no write ever lands outside the project (README, Security model).

The data goes to a temporary file in the same directory (so ``os.replace`` is a rename on one file
system), is flushed and fsync'ed, gets the old file's permission bits (or the umask's default for a
new file), and then replaces the target.  On any failure the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes_atomic(path: str | Path, data: bytes, prefix: str = ".asyncmigrate-") -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = _default_mode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def outside_root(path: str | os.PathLike, root: Path) -> Optional[str]:
    """Why writing ``path`` would change a file outside the project at ``root`` (None: it would not).

    The file's real path (every symlink on the way resolved, the file's own included) must be inside the
    root's real path: a symlink to a shared or system file is never written through, and a path with
    ``..`` never climbs out.
    """
    real_root = os.path.realpath(root)
    target = os.path.realpath(path)
    if not within(target, real_root):
        shown = os.path.relpath(path) if not os.path.isabs(str(path)) else str(path)
        how = "is a symlink to" if os.path.islink(path) else "resolves to"
        return f"{shown} {how} {target}, outside the project root {real_root}: not written"
    return None


def within(real: str, real_root: str) -> bool:
    """``real`` is ``real_root`` or below it (both already real paths: symlinks resolved)."""
    return os.path.commonpath([real_root, real]) == real_root
