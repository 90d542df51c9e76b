"""The soundness invariant of ``fix``: what the rewritten project must satisfy before anything is written.

``fix`` analyses the project as the rewrite leaves it with the same session
analysis ``scan`` uses (:func:`~asyncmigrate.analysis.findings.analyze`) and
compares it with the original.  Each check below looks at *one* analysed
project; :func:`check` keeps what the rewritten project has and the original
did not (counted per function, so pre-existing code is never blamed), plus the
checks that are relative by nature (added imports, new blocks-loop findings).
A check works on the analysed result, not on what a rewrite meant to do, so a
rewrite with a bug is caught too (``tests/fix/test_soundness.py`` plants each
class into a correct rewrite).

* ``await-sync``: ``await`` on something that is not awaitable: a method of a
  *sync* session, a sync method of an ``AsyncSession`` (``add``), a project
  function that is a plain ``def``;
* ``async-session-sync-use``: an ``AsyncSession`` used synchronously: a
  coroutine method not awaited (ASM201), a method only the sync ``Session`` has
  (``query``), plain-string SQL given to ``execute`` (``ArgumentError``), a
  session from an awaited call or an async factory entered with a plain ``with``;
* ``coroutine-unawaited``: a project coroutine function called without
  ``await`` from code that cannot await it (module level, a ``def`` left sync,
  ``super().m()``, a test) or dropped; handing the coroutine to a loop scheduler
  (``asyncio.run``, ``create_task``...) is fine;
* ``unknown-receiver``: a call, not awaited, of a method that is a coroutine
  function somewhere in the project, on a receiver the analysis cannot type
  (``conf.remove(db)``, ``super().save(db)``), when it is given a session or is
  made through ``super()``: it may be the converted class (issue 9, class 17);
* ``post-migration``: any other ASM2xx finding the original did not have;
* ``blocks-loop``: a blocks-loop finding the original did not have (thread-pool
  work moved onto the loop, class 16);
* ``suppressed``: a line suppressed with ``# asyncmigrate: ignore[...]`` that the
  rewrite changes (a human decided about that line);
* ``import``: an import the rewrite adds that does not resolve in the project
  (a project module spelled from the wrong root, a relative import past the
  package, a name the target module does not define).

Modules: ``calls.py`` (the checks on one analysed project), ``imports.py``
(added imports), ``suppressions.py`` (suppressed lines), ``model.py`` (:class:`Violation`).

Each :class:`Violation` names the functions whose conversion causes it
(``causes``): ``fix`` leaves their session component, closed under calls,
for a human and plans again (``migration.Planner`` ``exclude``).
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Mapping

from ..analysis.findings import Analysis
from .calls import raw_violations
from .imports import import_violations
from .model import Violation
from .suppressions import suppressed_line_violations

__all__ = ["Violation", "check", "import_violations", "original_line", "raw_violations", "suppressed_line_violations"]


def check(before: Analysis, after: Analysis, changes: Mapping[str, tuple[bytes, bytes]]) -> list[Violation]:
    """What the rewritten project (``after``) breaks that the original (``before``) did not."""
    # the original is the same in every round of ``fix``: its violations are counted once
    allowed_keys = before.__dict__.get("_soundness_keys")
    if allowed_keys is None:
        allowed_keys = before.__dict__["_soundness_keys"] = Counter(v.key for v in raw_violations(before))
    allowed = Counter(allowed_keys)
    out: list[Violation] = []
    for v in raw_violations(after):
        if allowed[v.key] > 0:
            allowed[v.key] -= 1
            continue
        out.append(v)
    out += import_violations(after, changes)
    out += suppressed_line_violations(before, changes)
    return out


def original_line(old: bytes, new: bytes, line: int) -> int:
    """A line of the rewritten file as a line of the original (a changed line: the original it replaced)."""
    a, b = old.decode("utf-8", "replace").splitlines(), new.decode("utf-8", "replace").splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if j1 < line <= j2 or (j1 == j2 == line - 1):
            if tag == "equal":
                return i1 + (line - 1 - j1) + 1
            return min(i1 + min(line - 1 - j1, max(i2 - i1 - 1, 0)) + 1, max(len(a), 1))
    return line
