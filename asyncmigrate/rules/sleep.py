"""Blocking sleep (ASM130): ``time.sleep`` where the code runs, or will run, on the loop.

Identity comes from import resolution, so ``from time import sleep`` and
``import time as t`` are caught too.  A ``time.sleep`` in a plain script is
fine and not reported; one in a function the migration turns async (it, or
what it calls, uses a sync session) is reported as debt, because it would
block the loop once that function is ``async def``.
"""

from __future__ import annotations

from typing import Iterator

from .. import facts
from .base import Bad, FunctionContext, Good, Hit, Rule


class BlockingSleep(Rule):
    """``time.sleep(...)`` stalls the event loop for its whole duration.

    What it does:
        Finds ``time.sleep`` in ``async def`` code, in sync code that ``async def``
        code calls, and in functions that the migration turns into coroutines.

    Why it matters:
        ``time.sleep(0.3)`` inside ``async def`` stalled the loop for 304 ms in our
        measurement; ``await asyncio.sleep(0.3)`` for 5 ms.  Ten requests that each
        sleep run one after another (5 s instead of 0.5 s).

    Example:
        time.sleep(pause)

    Use instead:
        await asyncio.sleep(pause)

    Fix safety:
        Safe where the function is, or becomes, ``async def``.
    """

    code = "ASM130"
    name = "blocking-sleep"
    family = "sleep"
    category = "sleep"
    message = "`{call}` blocks the event loop; use `await asyncio.sleep()`"
    severity = "loop-or-migrating"
    phase = 2
    examples = (
        Bad('''
import time


async def poll():
    time.sleep(1)
''', fixed='''
import time
import asyncio


async def poll():
    await asyncio.sleep(1)
'''),
        Bad('''
from time import sleep


def backoff():
    sleep(0.5)


async def handler():
    backoff()
'''),
        Good('''
import asyncio


async def poll():
    await asyncio.sleep(1)
'''),
        Good('''
import time


def cli_retry():
    time.sleep(1)
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            func = call.func
            if func is None or func[-1] not in facts.BLOCKING_CALL_NAMES:
                continue  # cheap: resolve only calls whose last name can be a blocking call
            qn = ctx.qualified_name(call)
            if qn in facts.BLOCKING_SLEEP:
                yield Hit(call.span, {"call": call.snippet or "time.sleep()"}, "", call.snippet)
