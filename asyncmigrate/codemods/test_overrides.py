"""Test code ("tests"): what a test suite overrides or patches for the sync session, it does for the async one.

After the migration, converted routes depend on ``get_async_db`` and converted tasks open
``AsyncSessionLocal()``.  A suite that points the app at its test database through the sync names only,
``app.dependency_overrides[get_db] = override_get_db`` or ``monkeypatch.setattr(tasks, "SessionLocal",
TestingSessionLocal)``, would leave the async code on the app's own database.  In test code
(``migration.is_test_file``) this rewrite repeats each such statement for the twin, with the async twin
of the value:

- ``X.dependency_overrides[get_db] = override_get_db`` is followed by
  ``X.dependency_overrides[get_async_db] = override_get_async_db``, an async generator added beside
  ``override_get_db`` that opens its session from the test module's async factory (``database`` names it
  ``AsyncTestingSessionLocal``).  ``del``/``.pop()`` of the key and ``{get_db: ...}`` dict literals follow.
- ``monkeypatch.setattr(tasks, "SessionLocal", TestingSessionLocal)`` (or ``setattr``) is followed by
  ``monkeypatch.setattr(tasks, "AsyncSessionLocal", AsyncTestingSessionLocal, raising=False)``:
  ``raising=False`` because a module with nothing converted has no ``AsyncSessionLocal`` to patch.

The app's names and their twins come from the plan (``FilePlan.app_twins``); a twin key is imported from
the module the sync key is imported from.  Test functions never change: they keep their sync sessions, and
the sync test engine (which creates the tables) stays.  Left alone and reported: overrides whose value is
imported or built by a call, ``mock.patch`` of the sync names, and overrides with no async factory in reach;
an override of the session dependency left without a twin is also recorded (``UNTWINNED``), and ``fix`` keeps
the functions that take that dependency sync, so the suite still reaches them through its override.
An override that yields a session it did not open (a fixture's) gets a twin that opens its own, reported:
the app's async code no longer shares that session's transaction.
"""

from __future__ import annotations

from typing import Optional, Sequence

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import PositionProvider, QualifiedNameProvider

from asyncmigrate import facts
from asyncmigrate.codemods._database.bound_twin import IMPORTS as BOUND_IMPORTS, bound_body, yielded_session
from asyncmigrate.codemods._database.dependency import async_twin, canonical_body, session_source, translated_body
from asyncmigrate.codemods._database.factory import session_class
from asyncmigrate.codemods._database.names import twin_name
from asyncmigrate.codemods._database.overrides import (
    OVERRIDES, Scope, inner_blocks, is_overrides_item, pad_unindented, positional, retarget, session_opener,
    setattr_target, source_text, statements_of,
)
from asyncmigrate.codemods._database.syntax import (
    assignment, bound_names, import_source, is_generator, kwarg,
)
from asyncmigrate.codemods._database.urls import URL_HELPER, url_helper_def
from asyncmigrate.codemods.base import FilePlan, ScopedTransformer, dotted, replace_last_name

DESCRIPTION = "Override and patch the app's async session dependency and factory in tests, as the sync ones are."

#: ``context.scratch`` key: ``(sync dependency name, line)`` of each override of the app's session dependency that
#: got no async twin.  ``fix`` turns them into soundness violations (``fix.untwinned_violations``): the functions
#: that take that dependency stay sync, since converted they would leave the test database the override sets.
UNTWINNED = "untwinned_overrides"

_PATCHERS = frozenset({"patch", "object"})  # mock.patch("a.SessionLocal"), patch.object(mod, "SessionLocal")


class MigrateTestOverrides(ScopedTransformer, VisitorBasedCodemodCommand):
    """Repeat dependency overrides and patches of the app's sync session names for their async twins."""

    DESCRIPTION = DESCRIPTION
    fixes = ()
    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._after: dict[int, list[cst.BaseStatement]] = {}
        self._before: dict[int, list[cst.BaseStatement]] = {}
        self._replace: dict[int, cst.CSTNode] = {}
        self._twins: dict[int, str] = {}  # id(sync override def) -> name of its twin (added once)
        self._pad: dict[int, int] = {}  # id(statement) -> blank lines it needs after a def inserted before it
        self._imports: dict[str, tuple[str, int]] = {}  # app twin used here -> (module, level) to import it from

    # ---- traversal: decide on the whole module, apply by node identity ----

    def visit_Module(self, node: cst.Module) -> Optional[bool]:
        if not self.plan.test_module or not self.plan.app_twins:
            return False
        self._module = node
        self._bound = bound_names(node)
        self._factories, self._engines = self._module_twins(node)
        self._scan(node.body, [], frozenset(self._bound))
        for call in m.findall(node, m.Call()):
            assert isinstance(call, cst.Call)
            self._report_patch(call)
        return True

    def on_leave(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        result = super().on_leave(original_node, updated_node)
        key = id(original_node)
        if key in self._replace:
            return self._replace[key]
        before, after = self._before.get(key), self._after.get(key)
        if before:
            result = pad_unindented(result, self._pad.get(key, 1))
        if before or after:
            return cst.FlattenSentinel([*(before or []), result, *(after or [])])
        return result

    # ---- helpers ----

    def _qnames(self, node: cst.CSTNode) -> set[str]:
        """Qualified names of ``node``; a name an earlier rewrite uses but has only scheduled the import of
        (``async_sessionmaker``, ``create_async_engine``) counts as imported."""
        names = {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}
        if isinstance(node, cst.Name) and node.value not in self._bound:
            for item in self.context.scratch.get(AddImportsVisitor.CONTEXT_KEY, []):
                if (item.alias or item.obj_name) == node.value and not item.relative:
                    names.add(f"{item.module_name}.{item.obj_name}")
        return names

    def _say(self, node: cst.CSTNode, message: str) -> None:
        self.warn(f"line {self.get_metadata(PositionProvider, node).start.line}: {message}")

    def _untwinned(self, key: cst.BaseExpression, node: cst.CSTNode) -> None:
        """Record an override of the app's sync dependency ``key`` that gets no async twin (``UNTWINNED``)."""
        name = (dotted(key) or "").rsplit(".", 1)[-1]
        if name and self.plan.app_twins.get(name) == self.plan.async_dependency:
            line = self.get_metadata(PositionProvider, node).start.line
            self.context.scratch.setdefault(UNTWINNED, []).append((name, line))

    def _module_twins(self, module: cst.Module) -> tuple[dict[str, str], dict[str, str]]:
        """Sync factory -> async factory, sync engine -> async engine, as ``database`` twinned them here.

        The app's factories imported here count too: their twins are imported from the same module.
        """
        values = {}
        for stmt in module.body:
            for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ():
                pair = assignment(small)
                if pair is not None and isinstance(pair[1], cst.Call):
                    values[pair[0]] = self._qnames(pair[1].func)
        factories: dict[str, str] = {}
        engines: dict[str, str] = {}
        self._scoped_factories: set[str] = set()
        for name, q in values.items():
            twin = values.get(twin_name(name, self.plan.app_twins), set())
            if q & facts.SYNC_SESSIONMAKERS and twin & facts.ASYNC_SESSIONMAKERS:
                factories[name] = twin_name(name, self.plan.app_twins)
                if q & facts.SYNC_SCOPED_SESSIONS:
                    self._scoped_factories.add(factories[name])
            elif q & facts.SYNC_ENGINE_FACTORIES and twin & facts.ASYNC_ENGINE_FACTORIES:
                engines[name] = twin_name(name, self.plan.app_twins)
        if not factories:  # the test opens sessions from the app's factory
            for name in self._bound:
                twin = self._app_twin(cst.Name(name))
                if isinstance(twin, cst.Name) and twin.value == self.plan.async_session_factory:
                    factories[name] = twin.value
        return factories, engines

    def _app_twin(self, node: cst.BaseExpression) -> Optional[cst.BaseExpression]:
        """``get_db`` -> ``get_async_db`` (imported from where ``get_db`` is), ``database.get_db`` ->
        ``database.get_async_db``; None for names that are not the app's (defined here, for one)."""
        text = dotted(node)
        if text is None:
            return None
        if isinstance(node, cst.Name):
            source = import_source(self._module, node.value)
            if source is None or source[2] not in self.plan.app_twins:
                return None
            twin = self.plan.app_twins[source[2]]
            if twin not in self._bound:
                self._imports[twin] = (source[0], source[1])
            return cst.Name(twin)
        twin = self.plan.app_twins.get(text.rsplit(".", 1)[-1])
        return replace_last_name(node, twin) if twin else None

    def _report_star_key(self, key: cst.BaseExpression) -> None:
        """An override keyed by an app name that only a ``from m import *`` can bind (``from .utils import *``
        re-exports ``get_db``): neither the key's module nor the override's twin is known in this file, so
        the async override is left for a human, never silently missing."""
        if not isinstance(key, cst.Name) or key.value in self._bound or key.value not in self.plan.app_twins:
            return
        stars = [s for s in m.findall(self._module, m.ImportFrom(names=m.ImportStar()))
                 if isinstance(s, cst.ImportFrom)]
        if stars:
            self._untwinned(key, key)
            star = stars[0]
            where = "." * len(star.relative) + ((dotted(star.module) or "?") if star.module is not None else "")
            self._say(key, f"{key.value} comes from `from {where} import *`; override "
                           f"{self.plan.app_twins[key.value]} too, by hand, with an async twin of the override")

    def _use(self, node: cst.BaseExpression) -> cst.BaseExpression:
        """``node`` as emitted: the app twins it names get imported."""
        for name in m.findall(node, m.Name()):
            assert isinstance(name, cst.Name)
            if name.value in self._imports:
                mod, level = self._imports[name.value]
                self.add_needed_import(mod, name.value, relative=level)
        return node

    # ---- scanning ----

    def _scan(self, body: Sequence[cst.BaseStatement], scopes: list[Scope], used: frozenset[str]) -> None:
        defs = {s.name.value: s for s in body if isinstance(s, cst.FunctionDef)}
        scope = Scope(defs, module_level=not scopes, taken=set(defs) | (set(self._bound) if not scopes else set()),
                       used=used)
        scopes = [*scopes, scope]
        present = {sig for stmt in body for sig in self._signatures(stmt)}
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
                self._statement(stmt, stmt.body[0], scopes, present)
            elif isinstance(stmt, cst.FunctionDef):
                names = frozenset(n.value for n in m.findall(stmt, m.Name()) if isinstance(n, cst.Name))
                self._scan(statements_of(stmt.body), scopes, names)
            elif isinstance(stmt, cst.ClassDef):
                self._scan(statements_of(stmt.body), scopes[:1], used)
            elif isinstance(stmt, cst.BaseCompoundStatement):
                for inner in inner_blocks(stmt):
                    self._scan(inner, scopes, used)

    def _signatures(self, stmt: cst.BaseStatement) -> set[tuple[str, ...]]:
        """What a statement already overrides or patches: ("override", key) / ("setattr", target, attr)."""
        out: set[tuple[str, ...]] = set()
        if not isinstance(stmt, cst.SimpleStatementLine):
            return out
        for small in stmt.body:
            for sub in m.findall(small, m.Subscript(value=m.Attribute(attr=m.Name(OVERRIDES)))):
                assert isinstance(sub, cst.Subscript)
                out.add(("override", source_text(sub.slice[0].slice)))
            for call in m.findall(small, m.Call()):
                assert isinstance(call, cst.Call)
                if m.matches(call.func, m.Attribute(value=m.Attribute(attr=m.Name(OVERRIDES)), attr=m.Name("pop"))) \
                        and call.args:
                    out.add(("override", source_text(call.args[0].value)))
                target = setattr_target(call)
                if target is not None:
                    out.add(("setattr", *target))
            for d in m.findall(small, m.Dict()):
                assert isinstance(d, cst.Dict)
                out |= {("override", source_text(e.key)) for e in d.elements if isinstance(e, cst.DictElement)}
        return out

    def _statement(self, stmt: cst.SimpleStatementLine, small: cst.BaseSmallStatement, scopes: list[Scope],
                   present: set[tuple[str, ...]]) -> None:
        twin: Optional[cst.BaseSmallStatement] = None
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            target = small.targets[0].target
            if is_overrides_item(target):
                assert isinstance(target, cst.Subscript)
                twin = self._override_item(stmt, target, small.value, scopes, present)
            elif m.matches(target, m.Attribute(attr=m.Name(OVERRIDES))) and isinstance(small.value, cst.Dict):
                self._override_dict(stmt, small.value, scopes, present)
        elif isinstance(small, cst.Del) and is_overrides_item(small.target):
            assert isinstance(small.target, cst.Subscript)
            index = small.target.slice[0].slice
            if isinstance(index, cst.Index):
                twin = self._pop_twin(small.target.value, index.value, present)
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            call = small.value
            func = call.func
            if m.matches(func, m.Attribute(value=m.Attribute(attr=m.Name(OVERRIDES)), attr=m.Name("pop"))) \
                    and call.args:
                assert isinstance(func, cst.Attribute)
                twin = self._pop_twin(func.value, call.args[0].value, present)
            elif m.matches(func, m.Attribute(value=m.Attribute(attr=m.Name(OVERRIDES)), attr=m.Name("update"))) \
                    and call.args and isinstance(call.args[0].value, cst.Dict):
                self._override_dict(stmt, call.args[0].value, scopes, present)
            elif setattr_target(call) is not None:
                twin = self._setattr_twin(call, scopes, present)
        if twin is not None:
            self._after.setdefault(id(stmt), []).append(cst.SimpleStatementLine(body=[twin]))

    # ---- dependency overrides ----

    def _override_item(self, stmt: cst.SimpleStatementLine, target: cst.Subscript, value: cst.BaseExpression,
                       scopes: list[Scope], present: set[tuple[str, ...]]) -> Optional[cst.BaseSmallStatement]:
        key = target.slice[0].slice
        if not isinstance(key, cst.Index):
            return None
        twin_key = self._app_twin(key.value)
        if twin_key is None:
            self._report_star_key(key.value)
        if twin_key is None or ("override", source_text(twin_key)) in present:
            return None
        twin_value = self._override_value(stmt, key.value, value, scopes)
        if twin_value is None:
            self._untwinned(key.value, stmt)
            return None
        new_target = target.with_changes(slice=[target.slice[0].with_changes(slice=cst.Index(twin_key))])
        return cst.Assign(targets=[cst.AssignTarget(self._use(new_target))], value=self._use(twin_value))

    def _override_dict(self, stmt: cst.SimpleStatementLine, d: cst.Dict, scopes: list[Scope],
                       present: set[tuple[str, ...]]) -> None:
        elements = list(d.elements)
        for el in d.elements:
            if not isinstance(el, cst.DictElement):
                continue
            twin_key = self._app_twin(el.key)
            if twin_key is None or ("override", source_text(twin_key)) in present:
                continue
            twin_value = self._override_value(stmt, el.key, el.value, scopes)
            if twin_value is None:
                self._untwinned(el.key, stmt)
            else:
                at = elements.index(el)
                new = cst.DictElement(self._use(twin_key), self._use(twin_value), comma=el.comma)
                elements[at] = el.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                elements.insert(at + 1, new)
        if len(elements) != len(d.elements):
            self._replace[id(d)] = d.with_changes(elements=elements)

    def _pop_twin(self, overrides: cst.BaseExpression, key: cst.BaseExpression,
                  present: set[tuple[str, ...]]) -> Optional[cst.BaseSmallStatement]:
        """``del X.dependency_overrides[get_db]`` -> ``X.dependency_overrides.pop(get_async_db, None)``."""
        twin_key = self._app_twin(key)
        if twin_key is None or ("override", source_text(twin_key)) in present:
            return None
        pop = cst.Attribute(value=overrides, attr=cst.Name("pop"))
        return cst.Expr(cst.Call(func=pop, args=[cst.Arg(self._use(twin_key)), cst.Arg(cst.Name("None"))]))

    def _override_value(self, stmt: cst.SimpleStatementLine, key: cst.BaseExpression, value: cst.BaseExpression,
                        scopes: list[Scope]) -> Optional[cst.BaseExpression]:
        """The async twin of an override: an async generator beside the sync one, or made for a lambda."""
        if isinstance(value, cst.Name):
            for scope in reversed(scopes):
                fn = scope.defs.get(value.value)
                if fn is not None:
                    return self._function_twin(fn, scope)
            if value.value in self._factories:  # an override that is the factory itself
                return cst.Name(self._factories[value.value])
        if isinstance(value, cst.Lambda) and not value.params.params:
            scope = scopes[-1]
            key_name = (dotted(key) or "").rsplit(".", 1)[-1]
            name = twin_name(f"override_{key_name}", self.plan.app_twins)
            if name not in scope.taken:
                if not self._factories and isinstance(value.body, cst.Name):  # ``lambda: session`` (a fixture's)
                    self._say(value, f"the lambda overriding {dotted(key)} hands out {value.body.value}; {name} "
                                     f"opens its own on {value.body.value}'s database, so the app's async code does "
                                     "not share that session's transaction")
                    body = self._bound_body(value.body.value)
                else:
                    factory = self._sole_factory(value, f"the lambda overriding {dotted(key)}")
                    if factory is None:
                        return None
                    self._say(value, f"the lambda overriding {dotted(key)} hands out a session; {name} opens its "
                                     f"own from {factory}, so the app's async code does not share that session or "
                                     "its transaction")
                    body = canonical_body(factory, self._scoped(factory), scope.session_var())
                scope.taken.add(name)
                fn = cst.FunctionDef(name=cst.Name(name), params=cst.Parameters(), body=cst.IndentedBlock([]))
                made = self._twin_def(fn, name, body, scope)
                self._before.setdefault(id(stmt), []).append(made)
                self._pad[id(stmt)] = 2 if scope.module_level else 1
                if not scope.module_level:
                    self._before[id(stmt)][-1] = made.with_changes(leading_lines=[])
            return cst.Name(name)
        twin_key = self.plan.app_twins.get((dotted(key) or "").rsplit(".", 1)[-1])
        self._say(value, f"{dotted(key)} is overridden with {source_text(value)!r}, which has no async twin here; "
                         f"override {twin_key} with an async generator by hand")
        return None

    def _function_twin(self, fn: cst.FunctionDef, scope: Scope) -> Optional[cst.Name]:
        name = twin_name(fn.name.value, self.plan.app_twins)
        if id(fn) in self._twins or name in scope.taken:
            return cst.Name(name)
        factories = set(self._factories)
        source = session_source(fn, factories, None, self._qnames) if is_generator(fn) else None
        body: Optional[Sequence[cst.BaseStatement]] = None
        if source is not None and source.factory is not None:
            factory = self._factories[source.factory]
            body, unsupported = translated_body(fn, source, factory)
            if unsupported is not None:
                self._say(unsupported, f"{fn.name.value}() does more with the session than opening, committing and "
                                       f"closing it; {name} only opens and closes one")
            body = body or canonical_body(factory, self._scoped(factory), scope.session_var())
        else:
            opened_by = session_opener(fn)
            if opened_by is not None:
                self._say(fn, f"{fn.name.value}() opens its session with {opened_by}(), which has no async twin here; "
                              f"override {self.plan.async_dependency} by hand")
                return None
            yielded = yielded_session(fn) if not self._factories else None
            if yielded is not None:  # a fixture's own engine and session: reach its database through it
                self._say(fn, f"{fn.name.value}() hands out {yielded}, a session it does not open; {name} opens "
                              f"its own on {yielded}'s database, so the app's async code does not share that "
                              "session's transaction")
                body = self._bound_body(yielded)
            else:
                factory = self._sole_factory(fn, f"{fn.name.value}()")
                if factory is None:
                    return None
                self._say(fn, f"{fn.name.value}() hands out a session it does not open; {name} opens its own from "
                              f"{factory}, so the app's async code does not share that session or its transaction")
                body = canonical_body(factory, self._scoped(factory), scope.session_var())
        self._twins[id(fn)] = name
        scope.taken.add(name)
        self._after.setdefault(id(fn), []).append(self._twin_def(fn, name, body, scope))
        return cst.Name(name)

    def _twin_def(self, fn: cst.FunctionDef, name: str, body: Sequence[cst.BaseStatement],
                  scope: Scope) -> cst.FunctionDef:
        session_module, session_name = session_class(self.plan.sqlmodel)
        self.add_needed_import(session_module, session_name)
        self.add_needed_import("collections.abc", "AsyncIterator")
        twin = async_twin(fn, name, [self._use(s) for s in body], session_name).with_changes(decorators=[])
        return twin if scope.module_level else twin.with_changes(leading_lines=[cst.EmptyLine(indent=False)])

    def _bound_body(self, session: str) -> Sequence[cst.BaseStatement]:
        """The twin body of ``bound_twin``; the run-time URL helper is added before the first def once."""
        defs = [s for s in self._module.body if isinstance(s, (cst.FunctionDef, cst.ClassDef))]
        helper = next((d.name.value for d in defs if isinstance(d, cst.FunctionDef)
                       and d.name.value.startswith(URL_HELPER)), None)
        if helper is None:
            helper, n = URL_HELPER, 1
            while helper in self._bound:
                n += 1
                helper = f"{URL_HELPER}_{n}"
            self._bound.setdefault(helper, [])
            first = defs[0] if defs else self._module.body[-1]
            self._before.setdefault(id(first), []).insert(0, url_helper_def(helper))
            self._pad[id(first)] = 2
        for module, name in BOUND_IMPORTS:
            self.add_needed_import(module, name)
        return bound_body(session, helper, session_class(self.plan.sqlmodel)[1])

    def _scoped(self, factory: str) -> bool:
        return factory in self._scoped_factories

    def _sole_factory(self, node: cst.CSTNode, what: str) -> Optional[str]:
        """The one async factory here, for a twin whose sync side does not say which factory it uses."""
        twins = sorted(set(self._factories.values()))
        if len(twins) == 1:
            return twins[0]
        self._say(node, f"{what} gets no async twin: {'no' if not twins else 'more than one'} async session "
                        "factory in this module to open its session from")
        return None

    # ---- patches ----

    def _setattr_twin(self, call: cst.Call, scopes: list[Scope],
                      present: set[tuple[str, ...]]) -> Optional[cst.BaseSmallStatement]:
        target = setattr_target(call)
        assert target is not None
        where, attr = target
        twin_attr = self.plan.app_twins.get(attr)
        if twin_attr is None or ("setattr", where, twin_attr) in present:
            return None
        string_form = isinstance(call.args[0].value, cst.SimpleString) and len(positional(call)) == 2
        value = positional(call)[1 if string_form else 2].value
        twin_value: Optional[cst.BaseExpression] = None
        if isinstance(value, cst.Name) and value.value in self._factories:
            twin_value = cst.Name(self._factories[value.value])
        elif isinstance(value, cst.Name) and value.value in self._engines:
            twin_value = cst.Name(self._engines[value.value])
        elif isinstance(value, cst.Name) and any(value.value in s.defs for s in scopes):
            scope = next(s for s in reversed(scopes) if value.value in s.defs)
            twin_value = self._function_twin(scope.defs[value.value], scope)
        if twin_value is None:
            self._say(call, f"{attr} is patched with {source_text(value)!r}, which has no async twin here; patch "
                            f"{twin_attr} by hand")
            return None
        if string_form:
            old = call.args[0].value
            assert isinstance(old, cst.SimpleString)
            args = [call.args[0].with_changes(value=retarget(old, twin_attr)),
                    call.args[1].with_changes(value=twin_value)]
        else:
            args = [call.args[0], call.args[1].with_changes(value=cst.SimpleString(f'"{twin_attr}"')),
                    call.args[2].with_changes(value=twin_value)]
        if isinstance(call.func, cst.Attribute):  # monkeypatch: the module may have no twin to patch
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(kwarg("raising", cst.Name("False")))
        return cst.Expr(self._use(call.with_changes(args=args)))

    def _report_patch(self, call: cst.Call) -> None:
        func = dotted(call.func) or ""
        if func.rsplit(".", 1)[-1] not in _PATCHERS:
            return
        for arg in call.args[:2]:
            if isinstance(arg.value, cst.SimpleString) and isinstance(arg.value.evaluated_value, str):
                attr = arg.value.evaluated_value.rsplit(".", 1)[-1]
                if attr in self.plan.app_twins:
                    self._say(call, f"{func}() of {attr} is not repeated for {self.plan.app_twins[attr]}; patch it "
                                    "too, with an async counterpart")
                    return


def run_on_source(code: str, plan: FilePlan) -> tuple[str, list[str]]:
    """Rewrite one module's source; returns ``(new code, warnings)``."""
    package = plan.module.rpartition(".")[0] if plan.module else None
    context = CodemodContext(scratch={"plan": plan}, full_module_name=plan.module or None, full_package_name=package)
    new = MigrateTestOverrides(context).transform_module(cst.parse_module(code))
    return new.code, list(context.warnings)
