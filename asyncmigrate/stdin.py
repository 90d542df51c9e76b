"""``scan -``: one file's contents from stdin, for editors and tools that pipe an unsaved buffer.

``--stdin-filename PATH`` names the file: findings carry that path, its module name
comes from the packages around it (as if the file were on disk there), and the
configuration is the one that applies to it.  Without a name the path is ``-``.
The file is analysed in its project, as ``scan PATH`` analyses a named file; the
buffer's contents stand in for the file on disk (the content-keyed cache serves the
other files, and never records the buffer as the file).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .config import Config
from .model import ScanResult
from .runner import Discovery, Source, _module_of, _packages_at

STDIN = "-"


def stdin_source(filename: Optional[str]) -> Source:
    """A :class:`Source` for the buffer, named and placed like ``filename`` would be on disk."""
    if not filename:
        return Source(STDIN, STDIN, "stdin", False)
    absolute = os.path.abspath(filename)
    directory, name = os.path.split(absolute)
    module, is_package = _module_of(name, directory, _packages_at(Path(directory), {}))
    here = os.path.join(os.getcwd(), "")
    shown = absolute[len(here):] if absolute.startswith(here) else filename
    return Source(shown.replace(os.sep, "/"), filename, module, is_package)


def analyse_stdin(filename: Optional[str], config: Config, select: Sequence[str] = (), ignore: Sequence[str] = (),
                  data: Optional[bytes] = None) -> ScanResult:
    """The scan result of stdin's bytes (or ``data``) as the file ``filename``."""
    from .api import analyse_paths

    src = stdin_source(filename)
    if data is None:
        data = sys.stdin.buffer.read()
    discovery = Discovery(sources=[src])
    if filename and os.path.isdir(os.path.dirname(os.path.abspath(filename))):
        # in its project, as ``scan FILE`` is (``api.analyse_named``): the buffer stands in for the file on disk
        from .runner import discover, project_root

        whole = discover([str(project_root([filename]))], config)
        others = [s for s in whole.sources if os.path.abspath(s.fs_path) != os.path.abspath(filename)]
        discovery = Discovery(sources=[*others, src])
    run = analyse_paths([src.path], config, select, ignore, use_cache=True, overrides={src.path: data},
                        discovery=discovery)
    res = run.result
    return ScanResult(findings=[f for f in res.findings if f.path == src.path],
                      errors=[e for e in res.errors if e.path == src.path],
                      files=[p for p in res.files if p == src.path],
                      suppressed=[f for f in res.suppressed if f.path == src.path])
