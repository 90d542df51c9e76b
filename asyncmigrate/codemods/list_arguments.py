"""1.4's list arguments become positional ones: ``select([a, b])`` -> ``select(a, b)``, ``case([...])`` -> ``case(...)``.

SQLAlchemy 2.0 refuses the 1.4 list form (``ArgumentError``; ``facts.LEGACY_LIST_ARGUMENT_CONSTRUCTS``,
checked in tests/facts), and the positional form already works on 1.4, so a project whose pin the migration
raises to 2.0 keeps working either way.  The plan names the callee texts that are SQLAlchemy's ``select`` /
``case`` in each scope (``FilePlan.list_arg_callees``, from ``analysis/legacy_api.py``, which resolves the
imports); a call to one of them whose first argument is a list display has the list's elements spread into
the call: ``case([(c, 1)], else_=0)`` -> ``case((c, 1), else_=0)``.  A list comprehension or any other list
expression is passed as ``*[...]``.  Nothing else is touched.
"""

from __future__ import annotations

import libcst as cst

from .base import ScopedTransformer, dotted


class ListArgumentsToPositional(ScopedTransformer):
    DESCRIPTION = "pass select()/case() elements positionally instead of in a list (SQLAlchemy 2.0)"
    fixes = ()

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        callees = self.plan.list_arg_callees.get(self.function_scope, frozenset())
        if dotted(original_node.func) not in callees or not updated_node.args:
            return updated_node
        first, rest = updated_node.args[0], list(updated_node.args[1:])
        if first.keyword is not None or first.star:
            return updated_node
        value = first.value
        if isinstance(value, cst.List) and not any(isinstance(e, cst.StarredElement) for e in value.elements):
            # each element keeps the comma that followed it in the list (and so the layout)
            spread = [cst.Arg(value=e.value, comma=e.comma) for e in value.elements]
        elif isinstance(value, (cst.List, cst.ListComp)):
            spread = [cst.Arg(value=value, star="*")]
        else:
            return updated_node
        if not spread:  # ``select([])``: 2.0's ``select()``
            return updated_node.with_changes(args=rest)
        # the last element is followed by what followed the list: the comma before the next argument, or none
        spread[-1] = spread[-1].with_changes(comma=first.comma)
        return updated_node.with_changes(args=spread + rest)
