"""Helpers of the database rewrites; no rewrite lives here.

``engine_to_async`` (async engine, factory and dependency twins), ``lifecycle_to_async`` (startup and
shutdown on the async engine) and ``test_overrides`` (test overrides of the session dependency) share:

- :mod:`.syntax`: module-level statements, bindings, argument layout, edits applied by node identity;
- :mod:`.urls`: sync URL -> async URL, at rewrite time or through a generated run-time helper;
- :mod:`.engine_call`: ``create_engine(...)`` -> ``create_async_engine(...)``, argument by argument;
- :mod:`.factory`: ``sessionmaker(...)`` -> ``async_sessionmaker(...)``;
- :mod:`.dependency`: the async twin of a session-yielding generator (``get_db`` -> ``get_async_db``);
- :mod:`.names`: names of the twins in test code, derived from the sync names there;
- :mod:`.overrides`: the syntax of dependency overrides and patches in test code.
"""
