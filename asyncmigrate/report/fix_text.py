"""``fix``'s words for people: the coloured diff and the summary's phrases (never a codemod's class name).

Scope: presentation only; ``fix.summary_lines`` assembles the summary from these.  Why a module of its own:
the summary speaks of what changed ("made 5 functions async", "added 12 awaits"), which needs a phrase per
rewrite and a count of the awaits a rewrite added, and neither belongs to the rewriting itself.
"""

from __future__ import annotations

import io
import tokenize
from typing import Sequence

import click

from ..codemods import BRIDGES, BY_NAME


#: what each rewrite did, in the words of the summary (keyed by its ``--select`` name; a rewrite missing here is
#: shown by that name, never by its class name)
USER_WORDS = {
    "database": "async engine and session factory",
    "tests": "test overrides",
    "lifecycle": "startup/shutdown",
    "query": "queries to select()",
    "await": "awaited session calls",
    "factory": "async sessions",
    "dependency": "AsyncSession dependency",
    "sleep": "asyncio.sleep",
    "propagate": "async callers",
    "responses": "responses built in the session",
    "eager": "eager loading",
    "text": "plain-string SQL in text()",
    "list-args": "select()/case() arguments without a list",
    "demote": "async def -> def (the threadpool runs it)",
    "offload": "blocking part awaited in the threadpool",
    "BridgeModule": "the thread-pool bridge module (generated)",
}


#: why a file outside the paths named on the command line changes too, by the rewrite that changed it (the
#: first one that applies, in this order)
OUTSIDE_REASONS = (
    ("database", "it defines the engine and sessions, which get async twins"),
    ("factory", "it opens sessions with the factory that becomes async"),
    ("tests", "its test set-up overrides the session dependency"),
    ("lifecycle", "its startup/shutdown code uses the engine"),
    ("eager", "it defines relationships the named code reads"),
    ("propagate", "its functions are on the named code's call path"),
    ("dependency", "it shares the named code's session, now async"),
    ("await", "it shares the named code's session, now async"),
    ("query", "it shares the named code's session, now async"),
)


def outside_reason(rewrites: Sequence[str]) -> str:
    """Why a file the user did not name changes: the phrase of the first rewrite in ``OUTSIDE_REASONS`` that
    changed it."""
    names = {BY_NAME[n].__name__: n for n in BY_NAME}
    done = {names.get(r, r) for r in rewrites}
    return next((why for name, why in OUTSIDE_REASONS if name in done),
                "the named code's migration needs it changed")


def user_words(rewrites: Sequence[str]) -> str:
    names = {cls.__name__: name for name, cls in {**BY_NAME, **BRIDGES}.items()}
    return ", ".join(USER_WORDS.get(names.get(r, r), names.get(r, r)) for r in rewrites)


def awaits_added(change) -> int:
    """How many more ``await`` keywords the file has after the rewrite (tokens, not text: comments don't count)."""
    def count(data: bytes) -> int:
        try:
            return sum(1 for tok in tokenize.tokenize(io.BytesIO(data).readline)
                       if tok.type == tokenize.NAME and tok.string == "await")
        except (tokenize.TokenError, SyntaxError):
            return 0
    return max(0, count(change.new) - count(change.old))


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def coloured_diff(text: str) -> str:
    """A unified diff styled as ``git diff`` does: headers bold, hunks cyan, removals red, additions green."""
    out = []
    for line in text.splitlines(keepends=True):
        body, end = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        if line.startswith(("--- ", "+++ ")):
            body = click.style(body, bold=True)
        elif line.startswith("@@"):
            body = click.style(body, fg="cyan")
        elif line.startswith("-"):
            body = click.style(body, fg="red")
        elif line.startswith("+"):
            body = click.style(body, fg="green")
        out.append(body + end)
    return "".join(out)
