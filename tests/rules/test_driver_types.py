"""ASM207 (rules/driver_types.py): typed column compared with a value of another annotated type.

Each case is a small project (several modules where the types cross files) run through every rule; the
assertion is the exact list of ASM207 findings as ``(path, line)``, so a guard also proves the rule stays
quiet where a type is unknown.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import findings

MODELS = textwrap.dedent('''
    from sqlalchemy import BigInteger, Column, Integer, String
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


    class Base(DeclarativeBase):
        pass


    class User(Base):
        __tablename__ = "users"
        id = Column(Integer, primary_key=True)
        email = Column(String(120))
        org_id: Mapped[int] = mapped_column()
        big = mapped_column(BigInteger)
''')

SCHEMAS = textwrap.dedent('''
    from typing import Optional

    from pydantic import BaseModel


    class TokenData(BaseModel):
        id: Optional[str] = None
        org: int = 0


    class Claims(TokenData):
        pass
''')


def _asm207(service: str) -> list[tuple[str, int]]:
    files = {"app/__init__.py": "", "app/models.py": MODELS, "app/schemas.py": SCHEMAS,
             "app/service.py": textwrap.dedent(service)}
    return sorted((f.path.rsplit("/", 1)[-1], f.span.line) for f in findings(files) if f.code == "ASM207")


@pytest.mark.parametrize("service, lines", [
    pytest.param('''
        from app import models, schemas


        def read_token(raw: str):
            return schemas.TokenData(id=raw)


        def current_user(token: str, db):
            token = read_token(token)
            return db.query(models.User).filter(models.User.id == token.id).first()
        ''', [11], id="fastapi-course: a str parameter rebound to a schema instance, schema field str"),
    pytest.param('''
        from sqlalchemy import select

        from app.models import User


        async def by_id(db, user_id: str):
            return await db.scalar(select(User).where(user_id == User.id))
        ''', [8], id="value on the left, parameter annotated str"),
    pytest.param('''
        from sqlalchemy import select

        from app.models import User
        from app.schemas import Claims


        async def by_email(db, claims: Claims, org: str, big: str):
            stmt = select(User).where(User.email == claims.org).where(User.org_id == org).where(User.big != big)
            return await db.scalar(stmt)
        ''', [9, 9, 9], id="inherited int field vs String column; Mapped[int] and BigInteger vs str"),
])
def test_mismatch_is_reported(service: str, lines: list[int]) -> None:
    assert _asm207(service) == [("service.py", n) for n in lines]


@pytest.mark.parametrize("service", [
    pytest.param('''
        from app.models import User


        def same_types(db, user_id: int, email: str):
            return db.query(User).filter(User.id == user_id, User.email == email).first()
        ''', id="matching types"),
    pytest.param('''
        from app.models import User


        def unknown(db, payload):
            user_id = payload.get("sub")
            return db.query(User).filter(User.id == user_id).first()
        ''', id="value type unknown"),
    pytest.param('''
        def not_a_column(db, token: str):
            class Plain:
                id = 1
            return db.query(Plain).filter(Plain.id == token).first()
        ''', id="a class attribute that is no column"),
])
def test_unknown_or_matching_types_stay_quiet(service: str) -> None:
    assert _asm207(service) == []
