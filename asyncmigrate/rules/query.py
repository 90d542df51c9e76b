"""Legacy Query API (ASM110): ``session.query(...)`` on a sync session.

``Session.query()`` is the 1.x ORM API.  ``AsyncSession`` has no ``query``
(``AttributeError``); every chain becomes a ``select()`` statement that is
awaited through ``execute``/``scalars``/``scalar``/``get``
(SQLALCHEMY_ASYNC.md §2, ``codemods/query_to_select.py``).
"""

from __future__ import annotations

from typing import Iterator

from .. import facts
from .base import Bad, FunctionContext, Good, Hit, Rule
from ._session_calls import receiver_text, sync_session_calls


class LegacyQuery(Rule):
    """``session.query(...)`` runs a blocking query through the legacy Query API.

    What it does:
        Finds every ``.query(...)`` call on a sync session (one finding per query
        chain, whatever its terminal: ``all``, ``first``, ``get``, ``count``,
        ``update``, ``delete``...).

    Why it matters:
        The query executes synchronously.  In ``async def`` code, or in sync code
        an ``async def`` calls, the event loop stops until the database answers.
        ``AsyncSession`` has no ``query`` method at all.

    Example:
        user = db.query(User).filter(User.id == user_id).first()

    Use instead:
        user = (await db.execute(select(User).where(User.id == user_id).limit(1))).scalars().first()

    Fix safety:
        Each legacy form has a verified equivalent (tests/facts/test_query_equivalence.py);
        forms without one (``yield_per``, ``from_self``...) are reported, not rewritten.
    """

    code = "ASM110"
    name = "legacy-query"
    family = "query"
    category = "query"
    message = "`{receiver}.query()` {action}"
    examples = (
        Bad('''
from sqlalchemy.orm import Session


async def active_users(db: Session):
    return db.query(User).filter(User.active.is_(True)).all()
''', fixed='''
from sqlalchemy.orm import Session
from sqlalchemy import select


async def active_users(db: AsyncSession):
    return (await db.execute(select(User).where(User.active.is_(True)))).scalars().all()
''', also=("ASM102",)),
        Good('''
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession


async def active_users(db: AsyncSession):
    return (await db.execute(select(User).where(User.active.is_(True)))).scalars().all()
'''),
        Good('''
def build(query):
    return query.query(1)
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call, _method, evidence in sync_session_calls(ctx, frozenset({"query"})):
            last = call.chain[-1] if call.chain else None
            if last in facts.QUERY_TERMINALS:
                action = f"runs a sync query (.{last}())"
            else:
                # returned, stored or passed on: it runs wherever it is iterated or finished
                action = "builds a legacy Query (it runs where it is iterated or finished)"
            yield Hit(call.span, {"receiver": receiver_text(call.func[1]), "action": action}, evidence, call.snippet)
