"""Suppressions (ASM001): ``# asyncmigrate: ignore[CODE] reason``.

A suppression silences the named codes on its line.  It must say why: a
suppression without a reason is itself a finding, so that silenced debt stays
visible in review.
"""

from __future__ import annotations

from typing import Iterator

from ..model import FileSummary, Span
from .base import Bad, FunctionContext, Good, Hit, Rule


class SuppressionWithoutReason(Rule):
    """A ``# asyncmigrate: ignore[...]`` comment that gives no reason.

    What it does:
        Finds suppression comments with nothing after the code list.

    Why it matters:
        A silenced blocking call is debt that nobody can judge later without the
        reason it was accepted.

    Example:
        db.commit()  # asyncmigrate: ignore[ASM120]

    Use instead:
        db.commit()  # asyncmigrate: ignore[ASM120] runs in the nightly CLI only

    Fix safety:
        Nothing to fix automatically.
    """

    code = "ASM001"
    name = "suppression-without-reason"
    family = "suppressions"
    category = "suppression"
    message = "suppression of {codes} gives no reason"
    severity = "debt"
    examples = (
        Bad('''
import time


def wait():
    time.sleep(1)  # asyncmigrate: ignore[ASM130]
'''),
        Good('''
import time


def wait():
    time.sleep(1)  # asyncmigrate: ignore[ASM130] CLI only, never on the loop
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        return iter(())

    def check_file(self, fs: FileSummary) -> Iterator[Hit]:
        for s in fs.suppressions:
            if not s.reason:
                codes = ",".join(s.codes) if s.codes else "all codes"
                yield Hit(Span(s.line, s.column, s.line, s.column + 1), {"codes": codes}, "", f"ignore[{codes}]")
