"""Other blocking I/O on the loop (ASM301-ASM304): files, HTTP, subprocesses, pandas.

Reported where the code runs on the event loop, and as debt in functions the
migration turns async (they will run on the loop); the same call in an
untouched ``def`` route or script runs in a thread or has no loop to block.  The
replacements (SQLALCHEMY_ASYNC.md §7) change behaviour, so ``fix`` wraps in
``run_in_threadpool`` at most and reports native swaps.
"""

from __future__ import annotations

from typing import Iterator

from .. import facts
from .base import Bad, FunctionContext, Good, Hit, Rule


class _BlockingIO(Rule):
    severity = "loop-or-migrating"
    phase = 2
    category = "blocking-io"
    family = "blocking_io"
    message = "`{call}` blocks the event loop; {hint}"

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            func = call.func
            if func is None or func[-1] not in facts.BLOCKING_CALL_NAMES:
                continue  # cheap: resolve only calls whose last name can be a blocking call
            qn = ctx.qualified_name(call)
            if qn is None:
                continue
            hit = facts.blocking_io(qn)
            if hit is not None and hit[0] == self.code:
                yield Hit(call.span, {"call": qn.replace("builtins.", "") + "()", "hint": hit[1]}, "", call.snippet)


class BlockingFileIO(_BlockingIO):
    """``open()`` and file reads/writes inside code that runs on the loop.

    What it does:
        Finds ``open``/``io.open`` in ``async def`` code and the sync code it calls.

    Why it matters:
        Reading 200 MB in text mode stalled the loop for 315 ms.

    Example:
        with open(path) as f: data = f.read()

    Use instead:
        data = await asyncio.to_thread(read_file, path)   # or aiofiles

    Fix safety:
        Reported only: the right replacement depends on the file's size and use.
    """

    code = "ASM301"
    name = "blocking-file-io"
    examples = (
        Bad('''
async def export(path):
    with open(path, "w") as f:
        f.write("x")
'''),
        Good('''
def export(path):
    with open(path, "w") as f:
        f.write("x")
'''),
    )


class BlockingHttp(_BlockingIO):
    """``requests.*`` / ``urllib`` HTTP calls inside code that runs on the loop.

    What it does:
        Finds synchronous HTTP clients used on the loop.

    Why it matters:
        The loop waits for the remote server (310 ms for a 0.3 s endpoint).

    Example:
        requests.get(url)

    Use instead:
        await client.get(url)   # one shared httpx.AsyncClient

    Fix safety:
        Reported only (a native client changes behaviour).
    """

    code = "ASM302"
    name = "blocking-http"
    examples = (
        Bad('''
import requests


async def notify(url):
    requests.post(url, json={})
'''),
        Good('''
import requests


def notify(url):
    requests.post(url, json={})
'''),
    )


class BlockingSubprocess(_BlockingIO):
    """``subprocess.run`` & co. inside code that runs on the loop.

    What it does:
        Finds synchronous subprocess calls (and ``os.system``) on the loop.

    Why it matters:
        The loop waits for the child process to finish.

    Example:
        subprocess.run(["pg_dump", db])

    Use instead:
        p = await asyncio.create_subprocess_exec("pg_dump", db); await p.communicate()

    Fix safety:
        Reported only.
    """

    code = "ASM303"
    name = "blocking-subprocess"
    examples = (
        Bad('''
import subprocess


async def backup():
    subprocess.run(["true"])
'''),
        Good('''
import asyncio


async def backup():
    p = await asyncio.create_subprocess_exec("true")
    await p.wait()
'''),
    )


class BlockingPandasIO(_BlockingIO):
    """pandas Excel/CSV/SQL reads and writes inside code that runs on the loop.

    What it does:
        Finds ``pandas.read_excel``/``read_csv``/``read_sql``/``read_parquet`` on the loop.

    Why it matters:
        A 20k-row ``read_excel`` stalled the loop for 734 ms.

    Example:
        df = pd.read_excel(path)

    Use instead:
        df = await asyncio.to_thread(pd.read_excel, path)

    Fix safety:
        Reported only.
    """

    code = "ASM304"
    name = "blocking-pandas-io"
    examples = (
        Bad('''
import pandas as pd


async def load(path):
    return pd.read_excel(path)
'''),
        Good('''
import asyncio
import pandas as pd


async def load(path):
    return await asyncio.to_thread(pd.read_excel, path)
'''),
    )
