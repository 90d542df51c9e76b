"""The cache's on-disk format: MessagePack of plain data, sealed with a per-user HMAC key.

Why not pickle: a cache file is input.  ``pickle.load`` on a file that someone else can write (a
repository that commits ``.asyncmigrate_cache/summaries-*.pickle`` with ``git add -f``) runs their
code.  This format cannot: MessagePack only yields numbers, strings, bytes, lists and maps, and the
only objects built from it are the frozen dataclasses of :mod:`asyncmigrate.model`, named by a
small integer in a fixed table (:data:`_CLASSES`), with their fields passed to the generated
``__init__``.  Nothing else is looked up or called.

Why an HMAC too: a well-formed but forged file could still lie (hide a finding from ``check``).
Every file is ``MAGIC + HMAC-SHA256(key, payload) + payload``; the key is 32 random bytes created
once per user (mode 0600) in the user's cache directory, so a file planted anywhere by a repository
does not verify and is ignored (a miss), and so is a damaged one.

Encoding: a dataclass becomes an array whose first item is an extension value (type
``_DATACLASS``, one byte: the class's number) followed by the fields in order; a tuple is an array.
Decoding turns every array into a tuple, and an array that starts with the marker into its class
(``list``-typed fields of non-frozen classes such as ``ScanResult`` become lists again).  Integers
past 64 bits (a literal keyword argument such as ``x=10**30`` written out) travel as decimal text;
strings keep lone surrogates (``surrogatepass``), as source literals may have them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import sys
from pathlib import Path
from typing import Any, Optional

import msgpack

from . import model

MAGIC = b"AMC1"
_DIGEST = hashlib.sha256
_MAC_SIZE = 32
_DATACLASS = 1
_BIGINT = 2
_KEY_FILE = "cache.key"

#: the only classes a cache file can produce, by number (append only: a number is never reused)
_CLASSES: tuple[type, ...] = (
    model.Span, model.Param, model.CallSite, model.Binding, model.FunctionSummary, model.ClassSummary,
    model.Suppression, model.FileError, model.FileSummary, model.Finding, model.ScanResult,
)
_NUMBER = {cls: i for i, cls in enumerate(_CLASSES)}
_MARKERS = tuple(msgpack.ExtType(_DATACLASS, bytes([i])) for i in range(len(_CLASSES)))
#: per class: the positions of fields typed ``list[...]`` (arrays decode as tuples)
_LIST_FIELDS = tuple(tuple(i for i, f in enumerate(dataclasses.fields(cls)) if str(f.type).startswith("list"))
                     for cls in _CLASSES)
_FIELD_NAMES = tuple(tuple(f.name for f in dataclasses.fields(cls)) for cls in _CLASSES)


class CacheFormatError(ValueError):
    """A value the cache format cannot hold (the entry is simply not cached)."""


def _default(obj: Any) -> Any:
    number = _NUMBER.get(type(obj))
    if number is not None:
        return [_MARKERS[number], *(getattr(obj, name) for name in _FIELD_NAMES[number])]
    if isinstance(obj, int):  # past 64 bits
        return msgpack.ExtType(_BIGINT, str(obj).encode("ascii"))
    raise CacheFormatError(f"cannot store a {type(obj).__name__} in the cache")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _DATACLASS and len(data) == 1 and data[0] < len(_CLASSES):
        return _MARKERS[data[0]]
    if code == _BIGINT and 0 < len(data) <= 5000 and data.lstrip(b"-").isdigit():
        return int(data)
    raise CacheFormatError(f"unknown extension type {code}")


def _list_hook(items: tuple) -> Any:
    if items and type(items[0]) is msgpack.ExtType:
        number = items[0].data[0]
        values = items[1:]
        lists = _LIST_FIELDS[number]
        if lists:
            values = tuple(list(v) if i in lists else v for i, v in enumerate(values))
        return _CLASSES[number](*values)
    return items


def encode(value: Any) -> bytes:
    """``value`` (model dataclasses, tuples, lists, dicts, str, bytes, int, float, bool, None) as bytes."""
    try:
        return msgpack.packb(value, default=_default, use_bin_type=True, strict_types=False,
                            unicode_errors="surrogatepass")
    except (TypeError, ValueError, OverflowError) as exc:
        raise CacheFormatError(str(exc)) from exc


def decode(data: bytes) -> Any:
    """The value ``encode`` made; raises ``ValueError`` (``CacheFormatError``) on anything else."""
    try:
        return msgpack.unpackb(data, use_list=False, list_hook=_list_hook, ext_hook=_ext_hook, raw=False,
                               strict_map_key=False, unicode_errors="surrogatepass")
    except CacheFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed data of any kind (msgpack, or a class given wrong fields)
        raise CacheFormatError(f"not a cache value: {type(exc).__name__}: {exc}") from exc


# ---- where the cache lives, and the key that seals it

def user_cache_root() -> Path:
    """The user's cache directory for asyncmigrate: ``$ASYNCMIGRATE_CACHE_DIR``, else the platform's
    (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%``
    on Windows), each under ``asyncmigrate``."""
    explicit = os.environ.get("ASYNCMIGRATE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "asyncmigrate"


def project_cache_dir(root: str | os.PathLike, base: Optional[Path] = None) -> Path:
    """The cache directory of the project at ``root``: keyed by its real path (symlinks resolved),
    so two checkouts never share entries and a path cannot be spoofed by a name."""
    real = os.path.realpath(root)
    tag = hashlib.sha256(os.fsencode(real)).hexdigest()[:24]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(real))[:40] or "root"
    return (base or user_cache_root()) / "projects" / f"{name}-{tag}"


def secret_key(base: Optional[Path] = None) -> Optional[bytes]:
    """The per-user secret (created on first use, mode 0600); None when it cannot be had, which turns
    the cache off rather than trusting unsealed files."""
    root = base or user_cache_root()
    path = root / _KEY_FILE
    try:
        key = _read_key(path)
        if key is not None:
            return key
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))  # (what ``secrets.token_bytes`` returns, without importing it)
    except FileExistsError:
        pass  # another run created it meanwhile
    except OSError:
        return None
    return _read_key(path)


def _read_key(path: Path) -> Optional[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        # a key someone else owns or can read is not a secret: refuse it (POSIX only)
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
            return None
        key = f.read(65)
    return key if len(key) == 32 else None


def seal(key: bytes, payload: bytes) -> bytes:
    return MAGIC + hmac.new(key, payload, _DIGEST).digest() + payload


def unseal(key: bytes, blob: bytes) -> Optional[bytes]:
    """The payload of a file :func:`seal` made with ``key``; None for anything else."""
    head = len(MAGIC) + _MAC_SIZE
    if len(blob) < head or not blob.startswith(MAGIC):
        return None
    mac, payload = blob[len(MAGIC):head], blob[head:]
    if not hmac.compare_digest(mac, hmac.new(key, payload, _DIGEST).digest()):
        return None
    return payload
