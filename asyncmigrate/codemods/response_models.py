"""Build a route's response model inside the session: ``await db.run_sync(...)`` (fixes ASM203 for responses).

FastAPI validates an ``async def`` route's return value against its
``response_model`` *after* the route returns, outside any SQLAlchemy greenlet:
a relationship the model reads and the query did not load raises
``MissingGreenlet`` and the client gets HTTP 500 (SQLALCHEMY_ASYNC.md §4).
For converted routes whose response model reads relationships, each
``return value`` becomes

    return await db.run_sync(lambda _session, value: TypeAdapter(R).validate_python(value, from_attributes=True), value)

``run_sync`` runs the validation in the session's greenlet, where lazy loads
work (and do not block the loop), whatever the object's origin: a query, a
service in another module, or a new object whose relationships were never
loaded.  FastAPI then receives an instance of ``R`` and validates it cheaply.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor

from .base import AwaitAware, callee_text


def _response_model(node: cst.FunctionDef) -> Optional[cst.BaseExpression]:
    for dec in node.decorators:
        if isinstance(dec.decorator, cst.Call):
            for arg in dec.decorator.args:
                if arg.keyword is not None and arg.keyword.value == "response_model":
                    return arg.value
    return None


class SerializeInSession(AwaitAware):
    DESCRIPTION = "validate response models inside the session, where relationships can load"
    fixes = ("ASM203",)

    def __init__(self, context) -> None:
        super().__init__(context)
        self._models: list[Optional[cst.BaseExpression]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> Optional[bool]:
        super().visit_FunctionDef(node)
        self._models.append(_response_model(node))
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.BaseStatement:
        self._models.pop()
        return super().leave_FunctionDef(original_node, updated_node)

    @staticmethod
    def _already(value: cst.BaseExpression) -> bool:
        return (isinstance(value, cst.Await) and isinstance(value.expression, cst.Call)
                and (callee_text(value.expression.func) or "").endswith(".run_sync"))

    def leave_Return(self, original_node: cst.Return, updated_node: cst.Return) -> cst.Return:
        session = self.plan.serialize.get(self.scope)
        model = self._models[-1] if self._models else None
        value = updated_node.value
        if session is None or model is None or value is None or self._already(value) or not self.can_await:
            return updated_node
        if isinstance(value, cst.Name) and value.value == "None":
            return updated_node
        if isinstance(value, cst.Call) and (callee_text(value.func) or "").endswith("Response"):
            return updated_node
        if self.plan.pydantic_v1:
            # pydantic 1: ``parse_obj_as`` builds ``R`` from attributes where its ``Config`` has ``orm_mode``, as
            # FastAPI's own response validation does there
            AddImportsVisitor.add_needed_import(self.context, "pydantic", "parse_obj_as")
            validate = cst.Call(cst.Name("parse_obj_as"), [
                cst.Arg(model.deep_clone(), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                cst.Arg(cst.Name("value"))])
        else:
            AddImportsVisitor.add_needed_import(self.context, "pydantic", "TypeAdapter")
            validate = cst.Call(
                func=cst.Attribute(cst.Call(cst.Name("TypeAdapter"), [cst.Arg(model.deep_clone())]),
                                   cst.Name("validate_python")),
                args=[cst.Arg(cst.Name("value")), cst.Arg(cst.Name("True"), keyword=cst.Name("from_attributes"),
                                                           equal=cst.AssignEqual(cst.SimpleWhitespace(""),
                                                                                 cst.SimpleWhitespace("")))],
            )
        lam = cst.Lambda(params=cst.Parameters([cst.Param(cst.Name("_session")), cst.Param(cst.Name("value"))]),
                         body=validate)
        call = cst.Call(func=cst.Attribute(cst.Name(session), cst.Name("run_sync")),
                        args=[cst.Arg(lam), cst.Arg(value)])
        return updated_node.with_changes(value=cst.Await(call))
