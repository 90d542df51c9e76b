"""``[tool.asyncmigrate]`` in ``pyproject.toml``: validated, with clear errors.

Keys (kebab-case; snake_case accepted):

================== ===================================================================
include            glob patterns of files to analyse (default: ``["**/*.py"]``)
exclude            gitignore-style patterns to skip (added to ``.gitignore``)
extend-exclude     more patterns, added to ``exclude`` (as in Ruff)
force-exclude      apply the excludes to paths named on the command line too (default: false)
respect-gitignore  honour ``.gitignore`` files (default: true)
session-dependencies  extra names of dependencies that yield a sync session
session-factories  extra names of sync session factories (``SessionLocal``-like)
session-names      receiver names the name-only fallback accepts (default: db, session...)
name-heuristics    allow the name-only fallback at all (default: true)
entry-points       qualified names of sync entry points (scripts, CLIs) for ``fix``
baseline           path of the CI gate's baseline (default: ``.asyncmigrate-baseline.json``)
select / ignore    rule codes or prefixes
per-file-ignores   table: gitignore-style pattern -> codes or prefixes ignored in matching files
severity           table: code -> ``"auto"`` | ``"blocks-loop"`` | ``"debt"`` | ``"off"``
max-file-size      bytes; larger files are reported and skipped (default: 10 MB)
cache-dir          not read from pyproject.toml (a repository must not choose where a scan writes);
                   set ``ASYNCMIGRATE_CACHE_DIR`` instead (default: the user's cache directory)
================== ===================================================================

Unknown keys (with the nearest known key suggested), malformed TOML (with its
line and column) and wrong types raise :class:`ConfigError`, which the CLI
turns into exit code 2.  A malformed nearest ``pyproject.toml`` is an error
too: skipping it would silently run with the defaults.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

from . import facts

DEFAULT_BASELINE = ".asyncmigrate-baseline.json"
SEVERITY_VALUES = ("auto", "blocks-loop", "debt", "off")


class ConfigError(Exception):
    """A configuration problem the user must fix (exit code 2)."""


@dataclass
class Config:
    include: list[str] = field(default_factory=lambda: ["**/*.py"])
    exclude: list[str] = field(default_factory=list)
    force_exclude: bool = False
    respect_gitignore: bool = True
    session_dependencies: list[str] = field(default_factory=list)
    session_factories: list[str] = field(default_factory=list)
    session_names: list[str] = field(default_factory=lambda: sorted(facts.SESSION_LIKE_NAMES))
    name_heuristics: bool = True
    entry_points: list[str] = field(default_factory=list)
    baseline: str = DEFAULT_BASELINE
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    max_file_size: int = 10_000_000
    #: where the cache lives (None: the user's cache directory, see ``runner.cache_location``).  Set by
    #: the caller, never by a project's pyproject.toml
    cache_dir: Optional[str] = None
    #: things the user should know about the configuration (printed on stderr by the CLI)
    notes: list[str] = field(default_factory=list)
    #: where the configuration came from (None: defaults)
    source: Optional[str] = None
    #: the directory relative paths in the configuration are relative to
    root: str = "."

    def analysis_key(self) -> str:
        """A hash of everything that changes what the per-file pass produces (for the cache)."""
        relevant = {"max_file_size": self.max_file_size}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_LIST_KEYS = {"include", "exclude", "extend_exclude", "session_dependencies", "session_factories", "session_names", "entry_points",
              "select", "ignore"}
_BOOL_KEYS = {"respect_gitignore", "name_heuristics", "force_exclude"}
_STR_KEYS = {"baseline"}
#: keys still accepted but ignored, with the reason
_IGNORED_KEYS = {"cache_dir": "the cache location is the user's choice, not the repository's: set "
                              "ASYNCMIGRATE_CACHE_DIR (README, Security model)"}
_INT_KEYS = {"max_file_size"}
_KNOWN = _LIST_KEYS | _BOOL_KEYS | _STR_KEYS | _INT_KEYS | {"severity", "per_file_ignores"} | _IGNORED_KEYS.keys()


def toml_error(path: object, exc: "tomllib.TOMLDecodeError") -> ConfigError:
    """``path:line:column: invalid TOML: reason`` (tomllib puts the position in its message before 3.14)."""
    text = str(exc)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
    if m:
        return ConfigError(f"{path}:{m.group(1)}:{m.group(2)}: invalid TOML: {text[:m.start()]}")
    m = re.search(r"\s*\(at end of document\)$", text)
    if m:
        return ConfigError(f"{path}: invalid TOML at the end of the file: {text[:m.start()]}")
    return ConfigError(f"{path}: invalid TOML: {text}")


def unknown_key(source: str, raw_key: str) -> ConfigError:
    known = sorted(k.replace("_", "-") for k in _KNOWN)
    close = difflib.get_close_matches(raw_key.replace("_", "-").lower(), known, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
    return ConfigError(f"{source}: unknown key '{raw_key}' in [tool.asyncmigrate]{hint}")


def _shown(path: Path) -> str:
    """A configuration file as the user would type it: relative to the working directory when below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def find_pyproject(start: Path) -> Optional[Path]:
    try:
        start = start.resolve()
        if start.is_file():
            start = start.parent
    except (OSError, RuntimeError):  # a symlink loop or unreadable path: it is reported per file later
        start = Path(os.path.abspath(start)).parent
    for d in (start, *start.parents):
        candidate = d / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                # the project's own configuration: running with the defaults instead would be silently wrong
                raise toml_error(_shown(candidate), exc) from None
            except (OSError, UnicodeDecodeError):
                continue
            if "asyncmigrate" in data.get("tool", {}):
                return candidate
        if (d / ".git").exists():
            break
    return None


def load_config(path: Optional[Path] = None, start: Optional[Path] = None) -> Config:
    """Load ``[tool.asyncmigrate]`` from ``path`` or the nearest pyproject.toml above ``start``."""
    if path is None:
        path = find_pyproject(start or Path.cwd())
        if path is None:
            return Config()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise toml_error(_shown(Path(path)), exc) from None
    section = data.get("tool", {}).get("asyncmigrate", {})
    return parse_section(section, str(path), str(Path(path).resolve().parent))


def parse_section(section: dict[str, Any], source: str = "<config>", root: str = ".") -> Config:
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: [tool.asyncmigrate] must be a table")
    cfg = Config(source=source, root=root)
    for raw_key, value in section.items():
        key = raw_key.replace("-", "_")
        if key not in _KNOWN:
            raise unknown_key(source, raw_key)
        if key in _IGNORED_KEYS:
            cfg.notes.append(f"{source}: '{raw_key}' is ignored: {_IGNORED_KEYS[key]}")
            continue
        if key in _LIST_KEYS:
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ConfigError(f"{source}: '{raw_key}' must be a list of strings")
        elif key in _BOOL_KEYS and not isinstance(value, bool):
            raise ConfigError(f"{source}: '{raw_key}' must be true or false")
        elif key in _STR_KEYS and not isinstance(value, str):
            raise ConfigError(f"{source}: '{raw_key}' must be a string")
        elif key in _INT_KEYS and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ConfigError(f"{source}: '{raw_key}' must be a positive integer")
        elif key == "severity":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: 'severity' must be a table of CODE = \"auto|blocks-loop|debt|off\"")
            for code, sev in value.items():
                if sev not in SEVERITY_VALUES:
                    raise ConfigError(f"{source}: severity of {code} must be one of {', '.join(SEVERITY_VALUES)}")
            value = {str(k).upper(): v for k, v in value.items()}
        elif key == "per_file_ignores":
            if not (isinstance(value, dict) and all(isinstance(v, list) and all(isinstance(c, str) for c in v)
                                                    for v in value.values())):
                raise ConfigError(f"{source}: 'per-file-ignores' must be a table of \"pattern\" = [\"CODE\", ...]")
            value = {str(k): [c.upper() for c in v] for k, v in value.items()}
        if key == "extend_exclude":
            cfg.exclude = cfg.exclude + list(value)
            continue
        setattr(cfg, key, value)
    if cfg.severity or cfg.select or cfg.ignore or cfg.per_file_ignores:
        from .rules.base import all_rules

        codes = set(all_rules())
        for code in list(cfg.severity) + cfg.select + cfg.ignore + [c for v in cfg.per_file_ignores.values() for c in v]:
            if not any(c.startswith(code.upper()) for c in codes):
                raise ConfigError(f"{source}: '{code}' matches no rule code (see `asyncmigrate rules`)")
    return cfg
