"""Driver hazards: a typed column compared with a value of another known type (ASM207).

psycopg2 sends parameters as text and lets PostgreSQL cast them, so ``User.id == token.id`` works when
``token.id`` is a ``str``.  asyncpg, which the migration moves PostgreSQL URLs to, sends typed
parameters: the same comparison raises ``operator does not exist: integer = character varying``
(checked on SQLAlchemy 2.1.9, asyncpg 0.32, PostgreSQL 15; SQLite accepts both).  Issue 9, class 10.

The types come only from annotations, never from names: the column's from ``Column(Integer)`` /
``mapped_column(String)`` or ``Mapped[int]``; the value's from a parameter or local annotation, or from
the annotation of an attribute of a project class the value is an instance of (pydantic / SQLModel /
dataclass fields: ``token.id`` where ``token = verify_access_token(...)`` returns ``TokenData(...)`` and
``TokenData.id: Optional[str]``).  Anything unknown stays quiet.
"""

from __future__ import annotations

from typing import Iterator, Optional

from ..analysis.index import MODULE_SCOPE
from ..analysis.orm import last_name, orm_index
from ..model import Expr, Span
from .base import Bad, FunctionContext, Good, Hit, Rule

#: SQLAlchemy column types -> the Python type asyncpg expects for their parameters (last name segment)
_COLUMN_TYPES = {
    **dict.fromkeys(("Integer", "BigInteger", "SmallInteger", "INTEGER", "BIGINT", "SMALLINT", "INT"), "int"),
    **dict.fromkeys(("String", "Text", "Unicode", "UnicodeText", "VARCHAR", "TEXT", "CHAR", "NVARCHAR",
                     "AutoString"), "str"),
}
_PYTHON_TYPES = frozenset({"int", "str"})
_COLUMN_CALLS = frozenset({"Column", "mapped_column"})
_MAPPED = frozenset({"Mapped"})


class TypedParameterMismatch(Rule):
    """A column compared with a value of another type, which asyncpg rejects.

    What it does:
        Finds ``==`` / ``!=`` comparisons passed to a call (``.filter(...)``, ``.where(...)``)
        between a mapped column whose type is known (``Column(Integer)``, ``mapped_column(String)``,
        ``Mapped[int]``) and a value whose Python type is known from annotations (a parameter or
        local annotated ``str``, or an attribute of a class instance annotated ``str``: a pydantic
        or SQLModel field), when an integer column meets a ``str`` or a string column an ``int``.

    Why it matters:
        psycopg2 sends every parameter as text and PostgreSQL casts it, so the comparison works
        today.  asyncpg sends typed parameters: after the migration to ``postgresql+asyncpg`` the
        query raises ``ProgrammingError: operator does not exist: integer = character varying``
        (or ``character varying = integer``), on every request that runs it.

    Example:
        class TokenData(BaseModel):
            id: Optional[str] = None

        def current_user(token: TokenData, db: Session):
            return db.query(User).filter(User.id == token.id).first()

    Use instead:
        class TokenData(BaseModel):
            id: Optional[int] = None   # or User.id == int(token.id)

    Fix safety:
        ``fix`` rewrites one shape, when the project moves to asyncpg: ``==`` between an integer
        column that cannot be NULL (a primary key, ``nullable=False``, ``Mapped[int]``) and a ``str``
        value becomes ``User.id == cast(literal(token.id), User.id.type)``
        (``codemods/driver_casts.py``), which asks PostgreSQL to cast, as psycopg2's text parameters
        did.  Everything else is reported only: ``!=`` and nullable columns compare differently with
        a ``None`` value (``IS NULL`` before, ``= NULL`` after), and converting the value in Python
        (``int(token.id)``) raises where the old query only failed in the database.
    """

    code = "ASM207"
    name = "typed-parameter-mismatch"
    family = "post_migration"
    category = "post-migration"
    message = ("`{column}` ({column_type}) is compared with `{value}` ({value_type}); asyncpg sends typed "
               "parameters and rejects the comparison")
    severity = "debt"
    examples = (
        Bad('''
from typing import Optional

from pydantic import BaseModel
from sqlalchemy import Column, Integer, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)


class TokenData(BaseModel):
    id: Optional[str] = None


def read_token(raw: str) -> TokenData:
    return TokenData(id=raw)


async def current_user(raw: str, db: AsyncSession):
    token = read_token(raw)
    return (await db.execute(select(User).where(User.id == token.id))).scalars().first()
'''),
        Good('''
from typing import Optional

from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    name = Column(String)


class TokenData(BaseModel):
    id: Optional[int] = None


async def current_user(token: TokenData, name: str, db: AsyncSession):
    stmt = select(User).where(User.id == token.id).where(User.name == name)
    return (await db.execute(stmt)).scalars().first()
'''),
    )

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:
        for call in ctx.fn.summary.calls:
            for left, right, span in call.compares:
                for column, value in ((left, right), (right, left)):
                    column_type = self._column_type(ctx, column)
                    if column_type is None:
                        continue
                    value_type = self._value_type(ctx, value)
                    if value_type is not None and value_type != _COLUMN_TYPES[column_type]:
                        yield Hit(span, {"column": _text(column), "column_type": column_type,
                                         "value": _text(value), "value_type": value_type}, "annotation",
                                  call.snippet)
                    break

    def castable(self, ctx: FunctionContext) -> Iterator[tuple[Span, str]]:
        """``(comparison span, "left" | "right")`` of each comparison ``fix`` may rewrite with a database-side cast:
        an integer column that cannot be NULL against a ``str`` value (the side named).  The operator (``==``
        only) is the codemod's to check: the index keeps ``==`` and ``!=`` alike."""
        for call in ctx.fn.summary.calls:
            for left, right, span in call.compares:
                for column, value, side in ((left, right, "right"), (right, left, "left")):
                    column_type = self._column_type(ctx, column)
                    if column_type is None:
                        continue
                    if (_COLUMN_TYPES[column_type] == "int" and self._value_type(ctx, value) == "str"
                            and self._column_type(ctx, column, not_null=True)):
                        yield span, side
                    break

    # ------------------------------------------------------------------ the column side
    def _column_type(self, ctx: FunctionContext, expr: Expr, not_null: bool = False) -> Optional[str]:
        """``Integer`` for ``User.id`` when ``User.id = Column(Integer, ...)`` or ``id: Mapped[int]``.  With
        ``not_null``: only when the column cannot hold NULL either (``primary_key=True``, ``nullable=False``,
        ``Mapped[X]`` without ``Optional`` and without ``nullable=True``)."""
        if not expr or expr[0] != "a":
            return None
        owner = ctx.project.value(expr[1], ctx.fid)
        if not owner or owner[0] != "class":
            return None
        index = orm_index(ctx.project)
        for cid in ctx.project.mro(owner[1]):
            _fs, cls = ctx.project.classes[cid]
            module_fid = f"{cid.split(':', 1)[0]}:{MODULE_SCOPE}"
            spans = dict(cls.attribute_calls)
            consts: dict = {}
            if expr[2] in spans:
                call = index.class_call(cid, spans[expr[2]])
                if call is not None and last_name(call.func) in _COLUMN_CALLS:
                    consts = dict(call.kw_constants)
                    for arg in call.args:
                        name = self._sqlalchemy_type(ctx, arg, module_fid)
                        if name is not None:
                            if not_null and not (consts.get("primary_key") is True or consts.get("nullable") is False):
                                return None
                            return name
            ann = dict(cls.annotations).get(expr[2])
            if ann and ann[0] == "sub" and last_name(ann[1]) in _MAPPED and len(ann[2]) == 1:
                python = self._python_type(ctx, ann[2][0], module_fid)
                if not_null and (ann[2][0][0] == "annotated" or consts.get("nullable") is True) \
                        and consts.get("primary_key") is not True:
                    return None  # ``Mapped[Optional[int]]`` (Optional and Annotated look alike here: unknown)
                return {"int": "Integer", "str": "String"}.get(python or "")
            if expr[2] in spans or ann is not None:
                return None  # the attribute is defined here, with no type we know
        return None

    @staticmethod
    def _sqlalchemy_type(ctx: FunctionContext, arg: Expr, fid: str) -> Optional[str]:
        if arg and arg[0] == "c":  # String(50)
            arg = arg[1]
        v = ctx.project.value(arg, fid) if arg else None
        if v and v[0] == "ext" and v[1].startswith(("sqlalchemy.", "sqlmodel.")):
            name = v[1].rsplit(".", 1)[-1]
            return name if name in _COLUMN_TYPES else None
        return None

    # ------------------------------------------------------------------ the value side
    def _value_type(self, ctx: FunctionContext, expr: Expr) -> Optional[str]:
        """``str`` for a name or attribute whose annotation says so; None when not known."""
        if not expr:
            return None
        summary = ctx.fn.summary
        if expr[0] == "n":
            name = expr[1]
            ann = next((p.annotation for p in summary.params if p.name == name), None) \
                or dict(summary.annotations).get(name)
            return self._python_type(ctx, ann, ctx.fid) if ann else None
        if expr[0] == "a":
            found = {self._field_type(ctx, cid, expr[2]) for cid in self._instances_of(ctx, expr[1])}
            return found.pop() if len(found) == 1 else None  # two classes that disagree: unknown
        return None

    @staticmethod
    def _instances_of(ctx: FunctionContext, expr: Expr) -> set[str]:
        """Project classes ``expr`` is an instance of: its own value, or for a local name every value assigned
        to it here (``token = verify_access_token(token)`` rebinds a parameter annotated ``str``)."""
        sources = [expr]
        if expr and expr[0] == "n":
            sources += [v for name, v in ctx.fn.summary.assigns if name == expr[1]]
        out = set()
        for src in sources:
            v = ctx.project.value(src, ctx.fid)
            if v and v[0] == "instance":
                out.add(v[1])
        return out

    def _field_type(self, ctx: FunctionContext, cid: str, attr: str) -> Optional[str]:
        for c in ctx.project.mro(cid):
            _fs, cls = ctx.project.classes[c]
            ann = dict(cls.annotations).get(attr)
            if ann is not None:
                return self._python_type(ctx, ann, f"{c.split(':', 1)[0]}:{MODULE_SCOPE}")
        return None

    @staticmethod
    def _python_type(ctx: FunctionContext, ann: Expr, fid: str) -> Optional[str]:
        if ann and ann[0] == "annotated":  # Optional[str] -> str
            ann = ann[1]
        v = ctx.project.value(ann, fid) if ann and ann[0] == "n" else None
        if v and v[0] == "ext" and v[1].startswith("builtins."):
            name = v[1].rsplit(".", 1)[-1]
            return name if name in _PYTHON_TYPES else None
        return None


def _text(expr: Expr) -> str:
    from ..analysis.index import expr_text

    return expr_text(expr) or "?"
