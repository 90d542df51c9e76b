"""``ListArgumentsToPositional``: ``select([a, b])`` -> ``select(a, b)`` on the callees the plan names, per scope.

The golden tree (``fixtures/codemods/list_arguments/``) runs through ``fix``; these cases pin the edges with a
hand-made plan; tests/facts/test_sqlalchemy_20.py shows both forms' behaviour on 2.x and 1.4.
"""

from __future__ import annotations

import textwrap

import libcst as cst
from libcst.codemod import CodemodContext

from asyncmigrate.codemods.base import FilePlan
from asyncmigrate.codemods.list_arguments import ListArgumentsToPositional


def rewrite(source: str, callees: dict[str, set[str]]) -> str:
    plan = FilePlan(list_arg_callees={scope: frozenset(names) for scope, names in callees.items()})
    context = CodemodContext(scratch={"plan": plan})
    return ListArgumentsToPositional(context).transform_module(cst.parse_module(textwrap.dedent(source))).code


def test_elements_are_spread_keeping_the_other_arguments() -> None:
    code = rewrite('''
        LEVEL = case([(a > 1, "x"), (a > 0, "y")], else_="z")

        def f(t):
            return select([t.c.a, t.c.b]).where(sa.case([(t.c.a == 1, 2)]) == 2)
    ''', {"<module>": {"case"}, "f": {"select", "sa.case"}})
    assert 'LEVEL = case((a > 1, "x"), (a > 0, "y"), else_="z")' in code
    assert "return select(t.c.a, t.c.b).where(sa.case((t.c.a == 1, 2)) == 2)" in code


def test_layout_comprehensions_starred_and_empty_lists() -> None:
    code = rewrite('''
        def f(cols, extra):
            one = select(
                [
                    cols[0],
                    cols[1],
                ]
            )
            two = select([c for c in cols], )
            three = select([*cols, extra])
            four = select([])
            return one, two, three, four
    ''', {"f": {"select"}})
    compile(code, "<rewrite>", "exec")
    assert "select([" not in code and "cols[0]," in code and "cols[1]" in code
    assert "two = select(*[c for c in cols], )" in code
    assert "three = select(*[*cols, extra])" in code
    assert "four = select()" in code


def test_other_scopes_and_callees_are_left_alone() -> None:
    source = '''
        def f(select):
            return select([1, 2])

        def g(t):
            return other([t.c.a]), select(columns)
    '''
    assert rewrite(source, {"g": {"select"}}) == textwrap.dedent(source)
