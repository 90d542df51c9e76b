"""The rewrites, in the order ``fix`` applies them to each file (one parse, one fresh instance per file).

The order matters, and each step says why it stands where it does.
"""

from __future__ import annotations

from ..facts import TEXTUAL_SQL_METHODS
from .await_session_methods import AwaitSessionMethods
from .demote_to_def import DemoteToDef
from .driver_casts import CastDriverParameters
from .eager_load import EagerLoadRelationships
from .engine_to_async import EngineToAsync
from .lifecycle_to_async import LifecycleToAsync
from .list_arguments import ListArgumentsToPositional
from .offload_to_threadpool import OffloadToThreadpool
from .propagate_async import PropagateAsync
from .query_to_select import QueryToSelect
from .response_models import SerializeInSession
from .session_dependency import SessionDependencyToAsync
from .session_factory import SessionFactoryToAsync
from .sleep_to_asyncio import SleepToAsyncio
from .test_overrides import MigrateTestOverrides
from .textual_sql import TextualSqlToText
from .tidy_imports import TidyImports

PIPELINE = (
    # comparisons are found by their position in the original file: before anything moves them
    CastDriverParameters,
    # Phase 1 first: the async engine, factory and dependency must exist before anything refers to them.
    EngineToAsync,
    # test code only: overrides of the sync dependency and patches of the sync factory get async twins, valued
    # with the test module's async factory, which the previous step has just added beside the sync one
    MigrateTestOverrides,
    # startup/shutdown code reads the async engine the previous step created
    LifecycleToAsync,
    # query chains are matched on their original sync shape, before other steps add awaits inside them
    QueryToSelect,
    # plain-string SQL on a converted session: its receiver is still the sync one the plan names; independent
    # of the await the next step puts around the same call
    TextualSqlToText,
    # 1.4 list arguments (``select([a])``): after QueryToSelect, whose ``select(X)`` never takes a list;
    # matched by callee text, which nothing renames
    ListArgumentsToPositional,
    # then every remaining coroutine method on a converted session gets its await
    AwaitSessionMethods,
    # factories and dependencies are renamed after the body is rewritten, so session receivers still match
    SessionFactoryToAsync,
    SessionDependencyToAsync,
    SleepToAsyncio,
    # def -> async def and awaits at call sites, which depend on nothing above having changed names
    PropagateAsync,
    # after propagation, so a route that just became ``async def`` can await ``run_sync`` in its returns
    SerializeInSession,
    # model files: loader strategies; independent of everything above
    EagerLoadRelationships,
    # last, on the finished file (after the scheduled imports and the await parentheses): imports the rewrite made
    # unused go, added ones move to their isort section, generated lines past the line length are split
    TidyImports,
)

#: rewrite name (for ``--select``) -> class
BY_NAME = {
    "database": EngineToAsync,
    "lifecycle": LifecycleToAsync,
    "query": QueryToSelect,
    "await": AwaitSessionMethods,
    "factory": SessionFactoryToAsync,
    "dependency": SessionDependencyToAsync,
    "sleep": SleepToAsyncio,
    "propagate": PropagateAsync,
    "responses": SerializeInSession,
    "eager": EagerLoadRelationships,
    "tests": MigrateTestOverrides,
    "text": TextualSqlToText,
    "casts": CastDriverParameters,
    "list-args": ListArgumentsToPositional,
    "tidy": TidyImports,
}


#: the thread-pool bridge (``fix --strategy threadpool|auto``, ``bridge.py``), run after the native pipeline on what
#: it left: a coroutine the plan demotes has nothing to offload, so the order between the two does not matter
BRIDGES = {
    "demote": DemoteToDef,
    "offload": OffloadToThreadpool,
}


_ENGINE_WORDS = ("create_engine", "sessionmaker", "scoped_session", "Session")
_LIFECYCLE_WORDS = ("create_engine", "create_all", "drop_all", "dispose", "pool")


def _has_sessions(plan, code: str) -> bool:
    return any(plan.sessions.values())


#: rewrite -> "the plan gives it something to do in this file" (plan, current code).  Each full libcst transform
#: costs about as much as the parse, so ``fix`` skips a rewrite whose gate is false.  A gate may only say False
#: where the rewrite would change nothing: every entry reads exactly the plan fields its rewrite starts from
#: (``tests/codemods/test_gates.py`` runs every fixture tree and the example backend with and without gates and
#: compares the output).  Rewrites without a gate always run.
GATES = {
    # module-level engines, session factories and dependencies; test modules twin their own
    EngineToAsync: lambda plan, code: bool(plan.test_module or plan.sync_dependencies or plan.sync_factories
                                           or plan.sync_engines or plan.derived_engines
                                           or any(w in code for w in _ENGINE_WORDS)),
    # every change starts at a sync engine reference: the plan's, a ``create_engine`` result, or a name used as
    # an engine in DDL, ``dispose()`` or ``.pool``
    LifecycleToAsync: lambda plan, code: bool(plan.sync_engines or any(w in code for w in _LIFECYCLE_WORDS)),
    MigrateTestOverrides: lambda plan, code: plan.test_module,
    # every match starts at a receiver the plan marks as a converted session
    QueryToSelect: _has_sessions,
    AwaitSessionMethods: _has_sessions,
    TextualSqlToText: lambda plan, code: bool(_has_sessions(plan, code) or plan.sql_receivers)
                                         and any(m in code for m in TEXTUAL_SQL_METHODS),
    SessionFactoryToAsync: lambda plan, code: bool(plan.sessions),
    SleepToAsyncio: lambda plan, code: "sleep" in code,
    PropagateAsync: lambda plan, code: bool(plan.make_async or plan.await_calls or plan.run_calls
                                            or plan.async_with_calls or plan.acm),
    SerializeInSession: lambda plan, code: bool(plan.serialize),
    EagerLoadRelationships: lambda plan, code: bool(plan.relationships),
    CastDriverParameters: lambda plan, code: bool(plan.driver_casts),
    ListArgumentsToPositional: lambda plan, code: bool(plan.list_arg_callees),
}


def needed(rewrite: type, plan, code: str) -> bool:
    """Whether ``rewrite`` can change anything in a file with this plan and code (see ``GATES``)."""
    gate = GATES.get(rewrite)
    return gate is None or bool(gate(plan, code))
