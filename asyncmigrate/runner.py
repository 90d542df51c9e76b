"""Discovery, the per-file worker pool, the content-hash cache and the progress bar.

* Discovery walks the given paths (never following directory symlinks, so
  symlink loops cannot trap it; a file symlink is skipped: its target is
  walked itself when it is inside the tree, and reported unread when not), honours ``.gitignore`` files (``pathspec``'s
  git-wildmatch semantics) and ``exclude`` patterns, and skips the usual
  tool directories.  A path given explicitly is always analysed.
* Each file is read and summarised in a worker process when there is enough
  work to pay for the pool; results are plain data (``FileSummary`` or
  ``FileError``), so one bad file never stops the run.
* The cache maps ``(path, module, content sha256)`` to the summary, in one
  file per cache directory, keyed also by the tool's version, the
  analysis code's own hash and the configuration that affects the per-file
  pass; a change to any of these starts a fresh cache.  The scan *result* is
  cached too, keyed by every file's digest, the rules and the configuration,
  so an unchanged tree skips the project pass.  A file's digest is also
  remembered by its stat signature (size, mtime, ctime, inode), so an
  unchanged file is not read again to be hashed; only files that have not
  changed for a few seconds are remembered (git's "racy" files).

Security (README "Security model"): the cache lives in the user's cache
directory, never in the scanned tree, in a format that cannot run code
(:mod:`asyncmigrate.cache_codec`: MessagePack of the model's dataclasses),
and every file is sealed with a per-user HMAC key, so a file a repository
plants is ignored.

Memory (a million lines must stay well under 1 GiB, workers included): a
summary travels and is stored encoded on its own (``bytes``).  The worker
encodes it, the main process decodes it once for the project pass and
keeps the bytes only until the cache is written, which then costs one
``write`` of byte strings instead of an encoding of millions of objects.
The cache file loads as a dict of byte strings, and a summary is decoded
only when asked for.  File contents are
read for hashing and dropped; the files to analyse are read again as their
batch is handed to the pool, a bounded number of batches at a time, and the
workers are forked before anything large is loaded.
"""

from __future__ import annotations

import gc
import hashlib
import os
import stat
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from collections import deque
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import pathspec

from . import __version__, cache_codec
from .atomic import within
from .config import Config
from .model import FileError, FileSummary

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".tox", ".nox", "node_modules", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".asyncmigrate_cache", ".eggs", ".direnv",
})
_PARALLEL_MIN_FILES = 48
_CACHE_SCHEMA = 6
#: batches handed to the pool ahead of the results, per worker
_IN_FLIGHT_PER_WORKER = 3
#: scan results kept in the result cache (keyed by tree, rules and configuration)
_RESULTS_KEPT = 4
#: a file's digest is remembered by its stat signature only once it has not changed for this long
_SETTLED_NS = 3_000_000_000


def display_path(path: str) -> str:
    """A printable form of a path that may not be valid UTF-8."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _code_hash() -> str:
    h = hashlib.sha256(f"{__version__}:{_CACHE_SCHEMA}".encode())
    here = Path(__file__).parent
    for rel in ("analysis/index.py", "model.py"):
        try:
            h.update((here / rel).read_bytes())
        except OSError:  # pragma: no cover - zipped installs
            pass
    return h.hexdigest()[:16]


CODE_HASH = _code_hash()


@dataclass(frozen=True)
class Source:
    path: str  # as displayed and reported (relative to cwd when below it)
    fs_path: str  # as opened
    module: str
    is_package: bool


@dataclass
class Discovery:
    sources: list[Source] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)


def _packages_at(d: Path, memo: Optional[dict[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """The names of the packages ``d`` is in, innermost first (``d`` itself when it has ``__init__.py``)."""
    key = str(d)
    if memo is not None and key in memo:
        return memo[key]
    names: tuple[str, ...] = ()
    if (d / "__init__.py").exists() and d.parent != d:
        names = (d.name, *_packages_at(d.parent, memo))
    if memo is not None:
        memo[key] = names
    return names


def _module_of(name: str, directory: str, packages: tuple[str, ...]) -> tuple[str, bool]:
    """Dotted module name and is-package of the file ``name`` in ``directory`` (absolute), whose enclosing
    packages are ``packages`` (innermost first, as ``_packages_at`` gives them)."""
    is_package = name == "__init__.py"
    parts = packages if is_package else (os.path.splitext(name)[0], *packages)
    # a bare __init__.py outside any package is named after its directory; a name that is not UTF-8 cannot be
    # imported anyway: keep it printable (reports, JSON)
    return display_path(".".join(reversed(parts or (os.path.basename(directory),)))), is_package


def _normal(path: str) -> bool:
    """``str(Path(path)) == path`` without building the Path (no ``//``, ``.`` part or trailing separator)."""
    return not ("//" in path or "/./" in path or path.startswith("./") or path.endswith(("/", "/.")) or path == "."
                or (os.altsep is not None and os.altsep in path))


def _rel(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        rel = str(path)
    return str(path) if rel.startswith("..") else rel.replace(os.sep, "/")


class _Ignores:
    """``.gitignore`` files met on the way down, plus configured excludes."""

    def __init__(self, config: Config):
        self.config = config
        self.specs: list[tuple[Path, pathspec.PathSpec]] = []
        self._loaded: set[str] = set()
        if config.exclude:
            self.specs.append((Path(config.root).resolve(), pathspec.GitIgnoreSpec.from_lines(config.exclude)))

    def load_gitignore(self, directory: Path, named: Optional[Path] = None) -> None:
        """Read ``directory/.gitignore``; for an ancestor of a path the user ``named``, skip it if it ignores that path.

        Naming a directory on the command line overrides an ignore file above it that would exclude it whole
        (``~/.pyenv/.gitignore`` ignores ``/versions``); its other patterns still apply below.
        """
        if not self.config.respect_gitignore:
            return
        key = os.path.abspath(directory)
        if key in self._loaded:  # every file given explicitly has the same parents: read each once
            return
        gi = directory / ".gitignore"
        try:
            lines = gi.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            self._loaded.add(key)
            return
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        base = directory.resolve()
        if named is not None and named != base:
            try:
                rel = named.relative_to(base).as_posix()
            except ValueError:
                rel = None
            if rel and (spec.match_file(rel + "/") or spec.match_file(rel)):
                return  # not marked loaded: a later path that this file does not exclude may still use it
        self._loaded.add(key)
        self.specs.append((base, spec))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        resolved = path if path.is_absolute() else _absolute_parent(path)
        return bool(self.ignored_in(str(resolved.parent), [resolved.name], is_dir))

    def ignored_in(self, directory: str, names: Sequence[str], is_dir: bool) -> set[str]:
        """Which of ``names`` (entries of the resolved absolute ``directory``) are ignored, for a whole
        directory listing at once, matching on strings (the walk's hot path)."""
        out: set[str] = set()
        if not names:
            return out
        suffix = "/" if is_dir else ""
        for base, spec in self.specs:
            base_s = str(base)
            if directory == base_s:
                prefix = ""
            elif directory.startswith(base_s.rstrip(os.sep) + os.sep):
                prefix = directory[len(base_s.rstrip(os.sep)) + 1:].replace(os.sep, "/") + "/"
            else:
                continue
            out.update(n for n in names if n not in out and spec.match_file(prefix + n + suffix))
        return out


def _absolute_parent(path: Path) -> Path:
    """``path`` made absolute through its parent directory only: the file itself may be a symlink
    (to anywhere, or a loop, whose ``resolve()`` raises); ignore patterns match the path as walked."""
    try:
        return path.parent.resolve() / path.name
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


_PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "requirements.txt", ".git")


def project_root(paths: Sequence[str]) -> Path:
    """The directories given, or for files the nearest directory that looks like a project root."""
    first = Path(paths[0]).resolve()
    if first.is_dir() and len(paths) == 1:
        return first
    start = first if first.is_dir() else first.parent
    for d in (start, *start.parents):
        if any((d / m).exists() for m in _PROJECT_MARKERS):
            return d
    return start


def discover(paths: Sequence[str], config: Config) -> Discovery:
    out = Discovery()
    include = pathspec.GitIgnoreSpec.from_lines(config.include)
    seen: set[str] = set()
    ignores = _Ignores(config)
    # .gitignore files above the given paths (up to the repository root) apply too
    starts: set[str] = set()
    for p in paths:
        absolute = os.path.abspath(p)
        start_dir = absolute if os.path.isdir(absolute) else os.path.dirname(absolute)
        if start_dir in starts:
            continue
        starts.add(start_dir)
        start = Path(start_dir)
        # like git: .gitignore files above a path apply only inside the same repository (up to its root);
        # outside any repository only the path itself counts (pyenv's ~/.pyenv/.gitignore ignores /versions)
        ancestors = [start, *start.parents]
        top = next((i for i, d in enumerate(ancestors) if (d / ".git").exists()), None)
        for d in reversed(ancestors[: top + 1] if top is not None else ancestors[:1]):
            ignores.load_gitignore(d, named=start.resolve())
    packages: dict[str, tuple[str, ...]] = {}

    here = os.path.join(os.getcwd(), "")

    def add(p: str) -> None:
        """A file named on the command line (``bench/run.py`` names thousands: strings, memoised packages)."""
        absolute = os.path.abspath(p)
        if absolute in seen:
            return
        seen.add(absolute)
        directory, name = os.path.split(absolute)
        above = packages.get(directory)
        if above is None:
            above = _packages_at(Path(directory), packages)
        mod, is_pkg = _module_of(name, directory, above)
        shown = absolute[len(here):] if absolute.startswith(here) else _rel(Path(p))
        out.sources.append(Source(shown.replace(os.sep, "/"), p if _normal(p) else str(Path(p)), mod, is_pkg))

    for p in paths:
        try:
            st = os.stat(p)
        except OSError as exc:
            out.errors.append(FileError(display_path(p), "read", f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISREG(st.st_mode):
            add(p)
            continue
        if not stat.S_ISDIR(st.st_mode):
            out.errors.append(FileError(display_path(p), "read", "not a regular file or directory"))
            continue
        root = Path(p)
        real_root = os.path.realpath(p)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=lambda e: out.errors.append(
                FileError(display_path(e.filename or p), "read", f"cannot list: {e.strerror}"))):
            d = Path(dirpath)
            if d != root:
                ignores.load_gitignore(d)
            # per directory, not per file: its resolved path (ignore patterns), its path for reports, its packages
            try:
                resolved = str(d.resolve())
            except (OSError, RuntimeError):
                resolved = os.path.abspath(dirpath)
            names = [n for n in sorted(dirnames) if n not in SKIP_DIRS]
            skipped = ignores.ignored_in(resolved, names, True)
            dirnames[:] = [n for n in names if n not in skipped]
            files = [n for n in sorted(filenames) if n.endswith(".py")]
            skipped = ignores.ignored_in(resolved, files, False)
            files = [n for n in files if n not in skipped]
            if not files:
                continue
            absolute = os.path.abspath(dirpath)
            shown = _rel(d)
            shown = "" if shown == "." else shown + "/"
            walked = str(d)  # as pathlib normalises it (``./x`` -> ``x``)
            above = _packages_at(Path(absolute), packages)
            for name in files:
                key = os.path.join(absolute, name)
                if key in seen:
                    continue
                seen.add(key)
                fp = name if walked == "." else os.path.join(walked, name)
                if not include.match_file(fp.replace(os.sep, "/")):
                    continue
                mod, is_pkg = _module_of(name, absolute, above)
                reported = fp if shown.startswith("..") or os.path.isabs(shown) else shown + name
                if os.path.islink(key) and os.path.exists(key):  # (a broken link or a loop is a read error below)
                    # a repository cannot make a scan read (and print) a file from elsewhere on the machine; a
                    # link inside the tree is not analysed (nor rewritten) twice: its target is walked itself
                    if not within(os.path.realpath(key), real_root):
                        out.errors.append(FileError(display_path(reported), "read",
                                                    "symlink to a file outside the scanned directory: not read"))
                    continue
                out.sources.append(Source(reported, fp, mod, is_pkg))
    out.sources.sort(key=lambda s: s.path)
    return out


# ---------------------------------------------------------------- per-file work
def _read(src: Source, max_size: int) -> bytes | FileError:
    try:
        st = os.stat(src.fs_path)
        if st.st_size > max_size:
            return FileError(display_path(src.path), "too-large",
                             f"file is {st.st_size} bytes, over max-file-size ({max_size})")
        with open(src.fs_path, "rb") as f:
            return f.read()
    except OSError as exc:
        return FileError(display_path(src.path), "read", f"cannot read: {exc.strerror or exc}")


#: the per-file pass's budget, in ASCII punctuation bytes (a cheap upper bound on the tokens, and so on the
#: syntax tree's nodes): the parser's memory grows with the tokens, not the bytes (a 10 MB file of a million
#: one-line functions takes ~3 GB to parse).  The densest real file met in the corpus has 665,308.
MAX_FILE_TOKENS = 1_000_000
_PUNCTUATION = bytes(sorted(set(range(33, 127)) - set(b"_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")))


def _over_budget(data: bytes) -> Optional[int]:
    """The file's punctuation count when it is over :data:`MAX_FILE_TOKENS` (C speed: ``bytes.translate``)."""
    if len(data) <= MAX_FILE_TOKENS:
        return None
    count = len(data) - len(data.translate(None, _PUNCTUATION))
    return count if count > MAX_FILE_TOKENS else None


def analyse_source(src: Source, data: bytes) -> FileSummary | FileError:
    tokens = _over_budget(data)
    if tokens is not None:
        return FileError(display_path(src.path), "too-large",
                         f"file has {tokens:,} punctuation tokens, over the per-file budget ({MAX_FILE_TOKENS:,})")
    try:
        from .analysis.index import summarize  # imported in the workers, and only when a file is analysed

        return summarize(display_path(src.path), data, src.module, src.is_package)
    except Exception as exc:  # noqa: BLE001 - one file's crash is that file's error
        return FileError(display_path(src.path), "internal", f"internal error: {type(exc).__name__}: {exc}")


def _dumps(value: FileSummary | FileError) -> bytes:
    """A summary in the cache's format (also what the pipe from the workers carries)."""
    try:
        return cache_codec.encode(value)
    except ValueError as exc:  # a value the format cannot hold: that file's error, never a crash
        return cache_codec.encode(FileError(value.path, "internal", f"internal error: {exc}"))


def _work(batch: list[tuple[Source, bytes]]) -> list[bytes]:
    """Each file's summary (or error), already encoded: the form the cache stores and the pipe carries."""
    with _no_cyclic_gc():
        return [_dumps(analyse_source(src, data)) for src, data in batch]


def _ready() -> int:
    return os.getpid()


@contextmanager
def _no_cyclic_gc():
    """Summaries (and ASTs) are acyclic: reference counting frees them, and the cyclic collector,
    which runs over every live object again and again while a million lines of summaries pile up,
    only costs time (about a third of the per-file pass's CPU, measured on the standard library)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Cache:
    """One file of summaries per cache directory and configuration, in :mod:`cache_codec`'s sealed format.

    The cache lives in the user's cache directory (:func:`cache_location`), never in the scanned
    tree, and every file is sealed with the per-user key: a file that does not verify (planted,
    damaged, another user's) is a miss, and nothing in it is decoded.  The summaries file has two
    sealed sections: the tree key of the files it was saved for, then a map from
    ``(path, module, digest)`` to that file's summary *encoded on its own* (``bytes``).  Only the
    first is read up front; the second (tens of MB for a million lines) is read when something
    asks for a summary, which an unchanged tree whose scan result is cached never does, and even
    then each summary is decoded only when it is asked for.
    """

    def __init__(self, directory: Optional[Path], config_key: str):
        self.key = f"{CODE_HASH}-{config_key}"
        self.entries: dict[tuple[str, str, str], bytes] = {}
        self.dirty = False
        #: the tree key the stored summaries were saved for (None: no usable file)
        self.stored_tree: Optional[str] = None
        self._pending = False  # the stored summaries are not read yet
        self._body_at = 0  # where the sealed entries start in the summaries file
        #: the per-user secret; without one there is no cache (unsealed files are never trusted)
        self.secret = cache_codec.secret_key() if directory is not None else None
        self.directory = directory if self.secret is not None else None
        if self.directory is not None:
            self._load()

    @property
    def file(self) -> Optional[Path]:
        return self.directory / f"summaries-{self.key}.amc" if self.directory else None

    def result_file(self) -> Optional[Path]:
        return self.directory / f"result-{self.key}.amc" if self.directory else None

    def _load(self) -> None:
        try:
            with open(self.file, "rb") as f:  # type: ignore[arg-type]
                size = int.from_bytes(f.read(4), "big")
                head = cache_codec.unseal(self.secret, f.read(size))  # type: ignore[arg-type]
                self._body_at = 4 + size
        except (OSError, ValueError):
            return
        stored = _decode(head) if head is not None else None
        if isinstance(stored, str):
            self.stored_tree = stored
            self._pending = True

    def _read_entries(self) -> None:
        if not self._pending:
            return
        self._pending = False
        # (another run may have replaced the file since its tree key was read: its entries are still keyed
        # by content, and sealed)
        data = _decode(_read_sealed(self.file, self.secret, self._body_at))  # type: ignore[arg-type]
        if isinstance(data, dict):
            for k, v in data.items():
                if isinstance(k, tuple) and len(k) == 3 and isinstance(v, bytes):
                    self.entries.setdefault(k, v)

    def has(self, src: Source, digest: str) -> bool:
        self._read_entries()
        return (src.path, src.module, digest) in self.entries

    def get(self, src: Source, digest: str):
        self._read_entries()
        blob = self.entries.get((src.path, src.module, digest))
        value = _decode(blob) if blob is not None else None
        return value if isinstance(value, (FileSummary, FileError)) else None  # a damaged entry is a miss

    def put(self, src: Source, digest: str, blob: bytes) -> None:
        self.entries[(src.path, src.module, digest)] = blob
        self.dirty = True

    def _results(self) -> dict:
        stored = _decode(_read_sealed(self.result_file(), self.secret))  # type: ignore[arg-type]
        return stored if isinstance(stored, dict) else {}

    def load_result(self, key: str):
        if self.directory is None:
            return None
        return self._results().get(key)

    def store_result(self, key: str, value) -> None:
        """Keep the last few results (``check --diff-against`` scans two trees: the work tree and the ref)."""
        if self.directory is None:
            return
        results = {k: v for k, v in self._results().items() if k != key}
        results[key] = value
        _write_sealed(self.result_file(), self.secret, dict(list(results.items())[-_RESULTS_KEPT:]))  # type: ignore[arg-type]

    def save(self, live: set[tuple[str, str, str]], tree_key: str, keep_others: bool = False) -> None:
        """Write the entries of ``live`` (the files of this run), saved for ``tree_key``.

        ``keep_others`` (the other side of ``check --diff-against``) keeps the entries of other
        files too, and the tree key the file was saved for, so that the work tree's next scan
        still finds everything it had.
        """
        if self.directory is None or not (self.dirty or (tree_key != self.stored_tree and not keep_others)):
            return
        self._read_entries()
        if keep_others and self.stored_tree is not None:
            tree_key = self.stored_tree
        else:
            # drop entries for files that are gone or changed, so the cache does not grow forever
            self.entries = {k: v for k, v in self.entries.items() if k in live}
        if live <= self.entries.keys():  # the tree key promises a summary for every live file
            head = cache_codec.seal(self.secret, cache_codec.encode(tree_key))  # type: ignore[arg-type]
            body = cache_codec.seal(self.secret, cache_codec.encode(self.entries))  # type: ignore[arg-type]
            if _atomic_write(self.file, len(head).to_bytes(4, "big"), head, body):  # type: ignore[arg-type]
                self.stored_tree = tree_key
                self._body_at = 4 + len(head)
        self.dirty = False

    # ---- digests by stat signature: an unchanged file is not read again to be hashed (like git's index)
    def stat_file(self) -> Optional[Path]:
        return self.directory / f"stats-{self.key}.amc" if self.directory else None

    def known_digests(self) -> dict[str, tuple[int, int, int, int, str]]:
        """Absolute path -> (size, mtime_ns, ctime_ns, inode, sha256) of the files hashed by earlier runs."""
        if self.directory is None:
            return {}
        stored = _decode(_read_sealed(self.stat_file(), self.secret))  # type: ignore[arg-type]
        return stored if isinstance(stored, dict) else {}

    def save_digests(self, digests: dict[str, tuple[int, int, int, int, str]]) -> None:
        if self.directory is not None:
            _write_sealed(self.stat_file(), self.secret, digests)  # type: ignore[arg-type]

    def release(self) -> None:
        """Drop the entries held in memory (read again from the file if something asks)."""
        self.entries = {}
        self.dirty = False
        self._pending = self.stored_tree is not None


def cache_location(config: Config) -> Path:
    """Where a project's cache lives: ``cache-dir`` when the user gave one (``--cache-dir`` or
    ``ASYNCMIGRATE_CACHE_DIR``), else the user's cache directory, keyed by the project's real path.
    Never the scanned tree by default: read-only commands write nothing inside the project."""
    if config.cache_dir:
        return Path(config.cache_dir).expanduser()
    return cache_codec.project_cache_dir(config.root)


def _decode(blob: Optional[bytes]):
    if blob is None:
        return None
    try:
        return cache_codec.decode(blob)
    except ValueError:
        return None


def _read_sealed(path: Optional[Path], secret: bytes, offset: int = 0) -> Optional[bytes]:
    """The verified payload of a sealed file (from ``offset``); None when missing, damaged or forged."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if offset:
                f.seek(offset)
            return cache_codec.unseal(secret, f.read())
    except OSError:
        return None


def _write_sealed(path: Optional[Path], secret: bytes, value) -> None:
    try:
        payload = cache_codec.encode(value)
    except ValueError:
        return
    if path is not None:
        _atomic_write(path, cache_codec.seal(secret, payload))


def _atomic_write(path: Path, *chunks: bytes) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        gitignore = path.parent / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("*\n")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        return True
    except OSError:
        return False  # a read-only cache directory only costs speed


class Summaries:
    """Every file's summary or error, in discovery order.

    When the whole tree comes from the cache, ``summaries`` and ``errors`` are read from it on
    first access (a warm ``scan`` whose result is cached never needs them).
    """

    def __init__(self, summaries: Optional[list[FileSummary]], errors: Optional[list[FileError]], tree_key: str,
                 analysed: int = 0, cache: Optional[Cache] = None,
                 load: Optional[Callable[[], tuple[list[FileSummary], list[FileError]]]] = None):
        self._summaries = summaries
        self._errors = errors
        #: digest of every file's content, for the result cache
        self.tree_key = tree_key
        self.analysed = analysed  # files parsed this run (not from the cache)
        self.cache = cache
        self._load = load

    def _materialise(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            self._summaries, self._errors = load()

    @property
    def summaries(self) -> list[FileSummary]:
        self._materialise()
        return self._summaries  # type: ignore[return-value]

    @summaries.setter
    def summaries(self, value: list[FileSummary]) -> None:
        self._materialise()
        self._summaries = value

    @property
    def errors(self) -> list[FileError]:
        self._materialise()
        return self._errors  # type: ignore[return-value]

    @errors.setter
    def errors(self, value: list[FileError]) -> None:
        self._materialise()
        self._errors = value


def summarise(
    discovery: Discovery,
    config: Config,
    use_cache: bool = True,
    jobs: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    overrides: Optional[dict[str, bytes]] = None,
    keep_others: bool = False,
) -> Summaries:
    """Summaries for every discovered file, from the cache where the content is unchanged.

    ``overrides`` supplies file contents by path (``check --diff-against`` reads the other side
    from git, never from the work tree); ``keep_others`` saves this run's summaries beside the
    cached ones instead of replacing them (see :meth:`Cache.save`).
    """
    with _no_cyclic_gc():
        return _summarise(discovery, config, use_cache, jobs, progress, overrides, keep_others)


def _summarise(
    discovery: Discovery,
    config: Config,
    use_cache: bool,
    jobs: Optional[int],
    progress: Optional[Callable[[int, int], None]],
    overrides: Optional[dict[str, bytes]],
    keep_others: bool = False,
) -> Summaries:
    cache = Cache(cache_location(config) if use_cache else None, config.analysis_key())
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    pool: Optional[ProcessPoolExecutor] = None
    if workers > 1 and len(discovery.sources) >= _PARALLEL_MIN_FILES and cache.stored_tree is None:
        # a cold run: fork the workers now, while this process is small (a forked worker's RSS counts
        # every page it shares with its parent: forking after the files are read would count them thrice)
        pool = ProcessPoolExecutor(max_workers=workers)
        pool.submit(_ready).result()
    try:
        return _summarise_with(discovery, config, cache, use_cache, workers, pool, progress, overrides, keep_others)
    finally:
        if pool is not None:
            pool.shutdown()


def _summarise_with(
    discovery: Discovery,
    config: Config,
    cache: Cache,
    use_cache: bool,
    workers: int,
    pool: Optional[ProcessPoolExecutor],
    progress: Optional[Callable[[int, int], None]],
    overrides: Optional[dict[str, bytes]],
    keep_others: bool,
) -> Summaries:
    errors = list(discovery.errors)
    results: dict[str, FileSummary | FileError] = {}
    digests: dict[str, str] = {}
    live: set[tuple[str, str, str]] = set()
    tree = hashlib.sha256()
    readable: list[Source] = []

    def content(src: Source) -> bytes | FileError:
        if overrides is not None and src.path in overrides:
            return overrides[src.path]
        return _read(src, config.max_file_size)

    # digests only: contents are not kept (the files to analyse are read again, batch by batch).  A file whose
    # size, mtime, ctime and inode are those recorded when an earlier run hashed it keeps that digest unread;
    # only files untouched for a few seconds are recorded (a write within the clock's granularity after the
    # recording would otherwise go unseen: git's "racy" files)
    known = cache.known_digests() if use_cache else {}
    recorded: dict[str, tuple[int, int, int, int, str]] = {}
    settled = time.time_ns() - _SETTLED_NS
    for src in discovery.sources:
        signature = None
        if overrides is None or src.path not in overrides:
            try:
                st = os.stat(src.fs_path)
                if st.st_size <= config.max_file_size:
                    signature = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            except OSError:
                pass
        where = os.path.abspath(src.fs_path) if signature is not None else ""
        entry = known.get(where) if signature is not None else None
        if entry is not None and entry[:4] == signature:
            digest = entry[4]
        else:
            data = content(src)
            if isinstance(data, FileError):
                results[src.path] = data
                tree.update(f"{src.path}\0error\0".encode("utf-8", "surrogateescape"))
                continue
            digest = hashlib.sha256(data).hexdigest()
            del data
        if signature is not None and max(signature[1], signature[2]) < settled:
            recorded[where] = (*signature, digest)
        digests[src.path] = digest
        tree.update(f"{src.path}\0{src.module}\0{digest}\0".encode("utf-8", "surrogateescape"))
        live.add((src.path, src.module, digest))
        readable.append(src)
    tree_key = tree.hexdigest()
    if use_cache:
        # the other side of ``check --diff-against`` (``overrides``) keeps the work tree's records
        merged = {**known, **recorded} if overrides is not None else recorded
        if merged != known:
            cache.save_digests(merged)
    if use_cache and readable and (tree_key == cache.stored_tree
                                   or all(cache.has(src, digests[src.path]) for src in readable)):
        # every summary is in the cache: read (decode) them only if asked
        if tree_key != cache.stored_tree:
            cache.save(live, tree_key, keep_others)

        def load() -> tuple[list[FileSummary], list[FileError]]:
            with _no_cyclic_gc():
                for src in readable:
                    hit = cache.get(src, digests[src.path])
                    # (a cache file replaced meanwhile by a run on other files: analyse what is missing)
                    results[src.path] = hit if hit is not None else _reanalyse(src, config.max_file_size)
                cache.release()
                return _ordered(discovery, results, errors)

        return Summaries(None, None, tree_key, 0, cache, load=load)
    todo: list[Source] = []
    for src in readable:
        hit = cache.get(src, digests[src.path]) if use_cache else None
        if hit is not None:
            results[src.path] = hit
        else:
            todo.append(src)
    total = len(todo)
    done = 0
    changed = [False]  # a file changed between hashing and analysis

    def fresh(src: Source) -> bytes | FileError:
        """The file's content again, as hashed (a file that changed meanwhile is analysed as it is now)."""
        data = content(src)
        if isinstance(data, FileError) or hashlib.sha256(data).hexdigest() != digests[src.path]:
            changed[0] = True
        return data

    def record(src: Source, value: FileSummary | FileError, blob: Optional[bytes]) -> None:
        results[src.path] = value
        if use_cache and not changed[0]:
            cache.put(src, digests[src.path], blob if blob is not None else _dumps(value))

    if total >= _PARALLEL_MIN_FILES and workers > 1:
        if pool is None:
            pool = ProcessPoolExecutor(max_workers=workers)
            own = pool
        else:
            own = None
        try:
            # batches sized so each worker gets several, for balance; only a few are read ahead of the results
            size = max(4, min(64, total // (workers * 8) or 1))
            starts = iter(range(0, total, size))
            in_flight: deque = deque()

            def submit() -> bool:
                for i in starts:
                    batch = []
                    for src in todo[i:i + size]:
                        data = fresh(src)
                        if isinstance(data, FileError):
                            results[src.path] = data
                        else:
                            batch.append((src, data))
                    if batch:
                        in_flight.append(([src for src, _ in batch], pool.submit(_work, batch)))
                        return True
                return False

            for _ in range(workers * _IN_FLIGHT_PER_WORKER):
                if not submit():
                    break
            while in_flight:
                srcs, future = in_flight.popleft()
                blobs = future.result()
                submit()
                for src, blob in zip(srcs, blobs):
                    record(src, cache_codec.decode(blob), blob)
                del blobs
                done += len(srcs)
                if progress:
                    progress(done, total)
        finally:
            if own is not None:
                own.shutdown()
    else:
        for src in todo:
            data = fresh(src)
            value = data if isinstance(data, FileError) else analyse_source(src, data)
            del data
            record(src, value, None)
            done += 1
            if progress and done % 16 == 0:
                progress(done, total)
    if changed[0]:
        # the tree is not the one hashed: never serve this run's result for that tree key
        tree_key = "changed-" + os.urandom(8).hex()
    elif use_cache:
        cache.save(live, tree_key, keep_others)
    cache.release()  # the project pass needs the summaries, not their encodings
    summaries, errors = _ordered(discovery, results, errors)
    return Summaries(summaries, errors, tree_key, total, cache if use_cache else None)


def _ordered(discovery: Discovery, results: dict[str, FileSummary | FileError],
             errors: list[FileError]) -> tuple[list[FileSummary], list[FileError]]:
    values = [results[s.path] for s in discovery.sources if s.path in results]
    return ([v for v in values if isinstance(v, FileSummary)],
            errors + [v for v in values if isinstance(v, FileError)])


def _reanalyse(src: Source, max_size: int) -> FileSummary | FileError:
    data = _read(src, max_size)
    return data if isinstance(data, FileError) else analyse_source(src, data)


class Progress:
    """A rich progress bar on stderr, shown only for runs over a second on a TTY."""

    def __init__(self, enabled: bool, label: str = "analysing"):
        self.enabled = enabled and sys.stderr.isatty()
        self.label = label
        self.start = time.monotonic()
        self._bar = None
        self._task = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self.start < 1.0:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TimeElapsedColumn

            self._bar = RichProgress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total)
        self._bar.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

