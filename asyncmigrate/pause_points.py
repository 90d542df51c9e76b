"""Named pause points, so that tests can interrupt a run at a known phase instead of after a guessed delay.

Used only when ``ASYNCMIGRATE_TEST_PAUSE`` is set (never in normal runs): when the run reaches the
point it names (``before-write``, or ``written:N`` after the N-th file ``fix --write`` wrote), it
creates the file named by ``ASYNCMIGRATE_TEST_PAUSE_FILE`` and sleeps until a signal ends it.  A
test waits for that file and then sends its signal: what the run had done by then is exactly known.
"""

from __future__ import annotations

import os
import time

ENV = "ASYNCMIGRATE_TEST_PAUSE"
FILE_ENV = "ASYNCMIGRATE_TEST_PAUSE_FILE"


def reached(phase: str, count: int | None = None) -> None:
    wanted = os.environ.get(ENV)
    if not wanted or wanted not in (phase, f"{phase}:{count}"):
        return
    marker = os.environ.get(FILE_ENV)
    if marker:
        with open(marker, "w", encoding="utf-8") as f:
            f.write(f"{phase}:{count}\n" if count is not None else f"{phase}\n")
    while True:  # until the test's signal ends the run
        time.sleep(3600)
