"""The rewrites, in the order ``fix`` applies them to each file (one parse, one fresh instance per file).

The order matters, and each step says why it stands where it does.
"""

from __future__ import annotations

from .await_session_methods import AwaitSessionMethods
from .eager_load import EagerLoadRelationships
from .engine_to_async import EngineToAsync
from .lifecycle_to_async import LifecycleToAsync
from .propagate_async import PropagateAsync
from .query_to_select import QueryToSelect
from .response_models import SerializeInSession
from .session_dependency import SessionDependencyToAsync
from .session_factory import SessionFactoryToAsync
from .sleep_to_asyncio import SleepToAsyncio
from .test_overrides import MigrateTestOverrides

PIPELINE = (
    # Phase 1 first: the async engine, factory and dependency must exist before anything refers to them.
    EngineToAsync,
    # test code only: overrides of the sync dependency and patches of the sync factory get async twins, valued
    # with the test module's async factory, which the previous step has just added beside the sync one
    MigrateTestOverrides,
    # startup/shutdown code reads the async engine the previous step created
    LifecycleToAsync,
    # query chains are matched on their original sync shape, before other steps add awaits inside them
    QueryToSelect,
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
}
