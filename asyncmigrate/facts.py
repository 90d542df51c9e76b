"""The SQLAlchemy / FastAPI facts table: the one place that names SQLAlchemy APIs.

Every entry here was verified by running SQLAlchemy 2.0.58 and 2.1.9 (see
``shared/SQLALCHEMY_ASYNC.md`` §1-§3 and ``tests/facts/``, which checks this
table against the installed SQLAlchemy rather than against itself).  Rules,
analysis and codemods import these names; none of them hard-codes a
SQLAlchemy name of its own.
"""

from __future__ import annotations

import re
from typing import Final

# --------------------------------------------------------------------------
# Session classes and factories (qualified names, as imports resolve them).
# --------------------------------------------------------------------------

#: Sync session classes: an annotation with one of these marks a sync session.
SYNC_SESSION_TYPES: Final = frozenset(
    {
        "sqlalchemy.orm.Session",
        "sqlalchemy.orm.session.Session",
        "sqlalchemy.orm.scoped_session",
        "sqlalchemy.orm.scoping.scoped_session",
        "sqlmodel.Session",
        "sqlmodel.orm.session.Session",
        "flask_sqlalchemy.session.Session",
    }
)

#: Async session classes: never blocking; targets of the rewrite.
ASYNC_SESSION_TYPES: Final = frozenset(
    {
        "sqlalchemy.ext.asyncio.AsyncSession",
        "sqlalchemy.ext.asyncio.session.AsyncSession",
        "sqlalchemy.ext.asyncio.async_scoped_session",
        "sqlalchemy.ext.asyncio.scoping.async_scoped_session",
        "sqlmodel.ext.asyncio.session.AsyncSession",
    }
)

#: Calls that build a *factory* of sync sessions (``SessionLocal = sessionmaker(...)``).
SYNC_SESSIONMAKERS: Final = frozenset(
    {
        "sqlalchemy.orm.sessionmaker",
        "sqlalchemy.orm.session.sessionmaker",
        "sqlalchemy.orm.scoped_session",
        "sqlalchemy.orm.scoping.scoped_session",
    }
)

#: Calls that build a factory of async sessions.
ASYNC_SESSIONMAKERS: Final = frozenset(
    {
        "sqlalchemy.ext.asyncio.async_sessionmaker",
        "sqlalchemy.ext.asyncio.session.async_sessionmaker",
        "sqlalchemy.ext.asyncio.async_scoped_session",
    }
)

#: Sync engine constructors.
SYNC_ENGINE_FACTORIES: Final = frozenset(
    {
        "sqlalchemy.create_engine",
        "sqlalchemy.engine.create_engine",
        "sqlalchemy.engine.create.create_engine",
        "sqlmodel.create_engine",
    }
)

ASYNC_ENGINE_FACTORIES: Final = frozenset(
    {
        "sqlalchemy.ext.asyncio.create_async_engine",
        "sqlalchemy.ext.asyncio.engine.create_async_engine",
    }
)

#: ``fastapi.Depends`` and friends: ``param = Depends(dep)`` marks a dependency.
DEPENDS: Final = frozenset({"fastapi.Depends", "fastapi.params.Depends", "fastapi.Security"})

#: ``typing.Annotated`` spellings.
ANNOTATED: Final = frozenset({"typing.Annotated", "typing_extensions.Annotated"})

# --------------------------------------------------------------------------
# Session methods (§1).  Sync Session method name -> what it is on AsyncSession.
# --------------------------------------------------------------------------

#: Methods that do I/O on a sync ``Session`` and are coroutines on ``AsyncSession``
#: (``inspect.iscoroutinefunction`` on 2.0.58 and 2.1.9).
ASYNC_SESSION_COROUTINES: Final = frozenset(
    {
        "execute",
        "scalar",
        "scalars",
        "get",
        "get_one",
        "stream",
        "stream_scalars",
        "commit",
        "rollback",
        "flush",
        "refresh",
        "merge",
        "delete",
        "close",
        "aclose",
        "reset",
        "invalidate",
        "connection",
        "run_sync",
        "close_all",
        # 2.1 only
        "delete_all",
        "merge_all",
    }
)

#: SQLModel's ``AsyncSession`` (``sqlmodel.ext.asyncio.session``) adds ``exec``, a coroutine: ``(await
#: s.exec(stmt)).all()`` (SQLALCHEMY_ASYNC.md §6).  SQLAlchemy's ``AsyncSession`` has no ``exec``, so a session
#: whose ``exec`` is called is a SQLModel one.
SQLMODEL_ASYNC_SESSION_COROUTINES: Final = frozenset({"exec"})

#: Session / AsyncSession methods whose statement argument may not be a plain string under SQLAlchemy 2.0
#: (``ArgumentError: Textual SQL expression ... should be explicitly declared as text(...)``; 1.4 only warned)
TEXTUAL_SQL_METHODS: Final = frozenset({"execute", "scalar", "scalars", "stream", "stream_scalars"})

# --------------------------------------------------------------------------
# SQLAlchemy 1.4 API that 2.0 removed (the 2.0 migration guide).  ``analysis/legacy_api.py`` finds it; each
# entry is checked against the installed 2.x, and against 1.4 when ASYNCMIGRATE_SQLA14_PYTHON names a Python
# that has it (tests/facts/test_sqlalchemy_20.py).
# --------------------------------------------------------------------------

#: ``Engine`` methods of 1.4's "connectionless execution", gone in 2.0 (``AttributeError``): run them on a
#: ``Connection`` (``with engine.begin() as conn: conn.execute(text(...))``).  Nothing rewrites them.
LEGACY_ENGINE_METHODS: Final = frozenset({"execute", "scalar", "table_names", "has_table", "run_callable",
                                          "transaction"})
#: ``Engine`` / ``Session`` methods that give a ``Connection``, whose ``execute`` refuses plain strings in 2.0 too
CONNECTION_MAKERS: Final = frozenset({"connect", "begin", "connection"})
#: constructs that took a list in 1.4 and take positional arguments in 2.0 (``ArgumentError`` on a list):
#: ``select([a, b])`` -> ``select(a, b)``, ``case([(cond, v)], else_=x)`` -> ``case((cond, v), else_=x)``;
#: the positional form works on 1.4 too (``codemods/list_arguments.py``)
LEGACY_LIST_ARGUMENT_CONSTRUCTS: Final = frozenset(
    {f"sqlalchemy.{where}{name}" for where in ("", "sql.", "sql.expression.") for name in ("select", "case")}
)
#: ``MetaData(bind=engine)``: 2.0 has no bound metadata (``TypeError``); nothing rewrites it (every implicit
#: use of ``metadata.bind`` would need an engine)
METADATA_TYPES: Final = frozenset({"sqlalchemy.MetaData", "sqlalchemy.schema.MetaData", "sqlalchemy.sql.schema.MetaData"})
#: ``sessionmaker(autocommit=True)`` / ``Session(autocommit=True)``: 2.0 refuses it (``autocommit=False`` is
#: still accepted); nothing rewrites it (every write would need its own ``begin()``)
LEGACY_SESSION_KWARGS: Final = (("autocommit", True),)

#: SQLModel's ``Relationship()`` takes no ``lazy=``: SQLAlchemy's ``relationship()`` keywords go in its
#: ``sa_relationship_kwargs`` mapping (``Relationship(back_populates="x", sa_relationship_kwargs={"lazy":
#: "selectin"})``); ``lazy="selectin"`` written on it is a ``TypeError`` at import.  Checked in tests/facts.
SQLMODEL_RELATIONSHIP: Final = "sqlmodel.Relationship"
SQLMODEL_RELATIONSHIP_KWARGS: Final = "sa_relationship_kwargs"

#: Every method to ``await`` on a converted session (SQLAlchemy's coroutines and SQLModel's ``exec``).
AWAITED_SESSION_METHODS: Final = ASYNC_SESSION_COROUTINES | SQLMODEL_ASYNC_SESSION_COROUTINES

#: Methods that stay synchronous on ``AsyncSession``: awaiting them is a TypeError.
ASYNC_SESSION_SYNC_METHODS: Final = frozenset(
    {
        "add",
        "add_all",
        "expunge",
        "expunge_all",
        "expire",
        "expire_all",
        "is_modified",
        "in_transaction",
        "in_nested_transaction",
        "get_transaction",
        "get_nested_transaction",
        "get_bind",
        "identity_key",
        "object_session",
        "begin",  # returns AsyncSessionTransaction: ``async with`` or ``await`` it
        "begin_nested",
    }
)

#: Sync-session methods that block (do I/O) and are counted as "session method"
#: findings.  ``query`` is its own category.
SYNC_BLOCKING_SESSION_METHODS: Final = frozenset(
    {
        "commit",
        "rollback",
        "flush",
        "refresh",
        "merge",
        "delete",
        "close",
        "execute",
        "scalar",
        "scalars",
        "get",
        "get_one",
        "connection",
        "bulk_save_objects",
        "bulk_insert_mappings",
        "bulk_update_mappings",
        "merge_all",
        "delete_all",
        "exec",  # SQLModel's Session.exec (a coroutine on sqlmodel's AsyncSession)
    }
)

#: Methods of a ``scoped_session`` registry itself (not proxied to its session) that do I/O: ``remove()`` closes
#: the current session (its transaction is rolled back, its connection returned to the pool).  A coroutine on
#: ``async_scoped_session``; ``sessionmaker`` has no such method, so on a factory receiver it names a registry.
SCOPED_REGISTRY_IO_METHODS: Final = frozenset({"remove"})

#: ``sqlalchemy.inspect``: on a sync ``Engine`` it builds an ``Inspector``, which connects (and its
#: ``get_table_names()``... reflect through that engine): engine I/O (ASM144).
INSPECT_FUNCTIONS: Final = frozenset({"sqlalchemy.inspect", "sqlalchemy.inspection.inspect"})

#: Functions that return the (sync) ``Session`` an ORM object belongs to; under ``AsyncSession`` it is the sync
#: session behind it, whose I/O methods are just as sync.
OBJECT_SESSION_FUNCTIONS: Final = frozenset({"sqlalchemy.orm.object_session", "sqlalchemy.orm.session.object_session",
                                             "sqlalchemy.orm.Session.object_session"})

#: The 2.0-style subset of the above (kept separate for messages / rule codes).
SYNC_20_STYLE_METHODS: Final = frozenset({"execute", "scalar", "scalars", "get", "get_one", "exec"})

#: Session methods that do no I/O themselves but are part of the session's
#: migration surface (counted, never "blocks-loop").
SYNC_NON_IO_SESSION_METHODS: Final = frozenset({"add", "add_all", "expunge", "expunge_all"})

#: Methods of the sync ``Session`` that ``AsyncSession`` does not have (``AttributeError`` on a converted session):
#: ``dir(Session) - dir(AsyncSession)`` on 2.0.58 and 2.1.9.
SYNC_ONLY_SESSION_METHODS: Final = frozenset(
    {"query", "bulk_save_objects", "bulk_insert_mappings", "bulk_update_mappings", "enable_relationship_loading",
     "prepare"}
)

#: Methods that only a SQLAlchemy session has (the name alone is strong evidence).
SESSION_ONLY_METHODS: Final = frozenset(
    {"query", "commit", "rollback", "flush", "refresh", "merge", "add_all", "expunge", "scalars", "bulk_save_objects"}
)

#: Methods whose bare name is common on other objects (``dict.get``, ``list.add``...):
#: on a receiver known only by its *name*, these are not reported.
AMBIGUOUS_METHOD_NAMES: Final = frozenset({"get", "delete", "add", "close", "execute", "scalar", "merge", "connection", "get_one"})

#: Variable / attribute names that suggest a session when nothing else is known.
SESSION_LIKE_NAMES: Final = frozenset(
    {"db", "session", "db_session", "dbsession", "sess", "s", "database_session", "session_db", "db_sess", "orm_session"}
)

#: Methods whose call on a receiver known only by its *name* confirms that it is a session: every
#: session method the scan reports on such a receiver (``AMBIGUOUS_METHOD_NAMES`` excepted), the
#: methods only a session has, and its session-specific sync methods (``get_bind``, ``is_modified``...).
#: ``fix`` converts a name-only receiver only when one of these is called on it.
NAME_ONLY_CONFIRMING_METHODS: Final = SESSION_ONLY_METHODS | (
    (SYNC_BLOCKING_SESSION_METHODS | SYNC_NON_IO_SESSION_METHODS | ASYNC_SESSION_SYNC_METHODS | {"query"})
    - AMBIGUOUS_METHOD_NAMES - {"begin", "expire"}  # transactions and caches have those too
)

#: Top-level packages whose use makes a project a SQLAlchemy project: without an import of one of these
#: anywhere (and without configured session names), a receiver's *name* is no evidence at all.
SQLALCHEMY_PACKAGES: Final = frozenset(
    {"sqlalchemy", "sqlmodel", "flask_sqlalchemy", "fastapi_sqlalchemy", "sqlalchemy_utils", "fastapi_utils",
     "alembic"}
)

#: Third-party packages whose objects are never SQLAlchemy sessions (HTTP clients, other databases, brokers).
#: With the standard library (``sys.stdlib_module_names``, less ``PROVENANCE_NEUTRAL_MODULES``), a value made
#: by one of these is not a session whatever its name (``s = socket.socket()``, ``db = sqlite3.connect(p)``,
#: ``session = requests.Session()``).
NON_SESSION_PACKAGES: Final = frozenset(
    {"requests", "httpx", "aiohttp", "urllib3", "redis", "aioredis", "boto3", "botocore", "aiobotocore", "pymongo",
     "motor", "paramiko", "websockets", "pika", "aio_pika", "elasticsearch", "grpc", "kafka", "aiokafka"}
)

#: Standard-library modules that hand values through (containers, context variables, ``cast``,
#: ``contextlib.closing(SessionLocal())``, ``await asyncio.to_thread(SessionLocal)``...): what they give says
#: nothing about whether it is a session.
PROVENANCE_NEUTRAL_MODULES: Final = frozenset(
    {"typing", "typing_extensions", "contextlib", "contextvars", "functools", "collections", "queue", "weakref",
     "threading", "asyncio", "concurrent", "copy", "abc", "dataclasses", "operator", "itertools", "inspect", "types",
     "builtins", "_thread"}
)

#: Builtins whose result is never a session (``with open(p) as s``, ``s = str(x)``); the other builtins
#: (``getattr``, ``next``, ``min``, ``type``...) can hand one through.
NON_SESSION_BUILTINS: Final = frozenset(
    {"open", "str", "bytes", "bytearray", "int", "float", "complex", "bool", "memoryview", "repr", "format", "len",
     "ord", "chr", "hex", "oct", "bin", "compile", "range", "input", "hash", "id", "print", "sorted", "reversed",
     "enumerate", "zip", "map", "filter", "set", "frozenset", "tuple", "list", "dict", "slice", "divmod", "pow",
     "abs", "round", "sum", "ascii", "isinstance", "issubclass", "callable", "hasattr", "dir"}
)

#: Result methods: always sync, on both ``Result`` and ``ScalarResult``.
RESULT_METHODS: Final = frozenset(
    {"all", "first", "one", "one_or_none", "scalar", "scalar_one", "scalar_one_or_none", "scalars", "mappings", "unique",
     "fetchall", "fetchone", "fetchmany", "partitions", "keys", "columns", "tuples"}
)

#: ``AsyncEngine`` coroutine methods; ``begin()`` is ``async with`` only.
ASYNC_ENGINE_COROUTINES: Final = frozenset({"dispose", "raw_connection"})

#: ``AsyncConnection`` coroutine methods.
ASYNC_CONNECTION_COROUTINES: Final = frozenset(
    {"execute", "scalar", "scalars", "exec_driver_sql", "commit", "rollback", "close", "run_sync", "invalidate",
     "get_raw_connection", "get_isolation_level", "execution_options"}
)

# --------------------------------------------------------------------------
# Legacy Query API (§2): chain methods that build the statement, and terminals.
# --------------------------------------------------------------------------

#: Query methods that map 1:1 onto ``Select`` methods of the same name.
QUERY_BUILDER_SAME_NAME: Final = frozenset(
    {"filter", "filter_by", "where", "order_by", "group_by", "having", "limit", "offset", "join", "outerjoin",
     "distinct", "options", "select_from", "correlate", "execution_options", "with_for_update", "union",
     "union_all", "add_columns", "prefix_with", "suffix_with", "join_from", "outerjoin_from"}
)

#: Query builder methods renamed on Select: legacy name -> Select name.
QUERY_BUILDER_RENAMED: Final = {"with_entities": "with_only_columns"}

#: Same-name methods whose *result* differs: ``Query.union()`` still returns entities, while
#: ``select(User).union(...)`` executes as a CompoundSelect of plain columns (``.scalars()`` gives ids).
QUERY_BUILDER_NOT_EQUIVALENT: Final = frozenset({"union", "union_all"})

#: Both spellings exist on Select; the rewrite uses the 2.0 one: legacy name -> preferred name.
QUERY_BUILDER_PREFERRED: Final = {"filter": "where"}

#: The only builders a bulk ``Query.update()`` / ``Query.delete()`` may follow; ``update(M)`` and
#: ``delete(M)`` have these three too.
QUERY_DML_CRITERIA: Final = frozenset({"filter", "filter_by", "where"})

#: Builders that can repeat an entity's row.  Legacy Query de-duplicates entity rows, Select does not
#: (§2: ``join(User.addresses)`` gives alice twice), so the rewrite adds ``Result.unique()``.
QUERY_JOINS: Final = frozenset({"join", "outerjoin", "join_from", "outerjoin_from", "select_from"})

#: Column operators that take a subquery: a Query passed to them is a statement, never executed.
COLUMN_IN_METHODS: Final = frozenset({"in_", "not_in", "notin_"})

#: Operators whose argument is a subquery or an EXISTS: it never adds a table to the outer FROM.
SUBQUERY_OPERATORS: Final = COLUMN_IN_METHODS | frozenset({"any", "has", "exists"})

#: Modules whose ``select`` / ``func`` / ``update`` / ``delete`` are SQLAlchemy's (an import from one of
#: these is reused by the rewrite instead of adding another).
SQL_CONSTRUCT_MODULES: Final = frozenset(
    {"sqlalchemy", "sqlalchemy.sql", "sqlalchemy.sql.expression", "sqlalchemy.future", "sqlmodel"}
)

#: Callables (last name segment) whose result is an ORM entity inside ``query(...)`` / ``select(...)``.
ENTITY_FACTORIES: Final = frozenset({"aliased", "with_polymorphic"})

#: ``sqlalchemy`` callables (last name segment) whose result is a column expression; ``func.*`` is one too.
COLUMN_FACTORIES: Final = frozenset(
    {"cast", "literal", "literal_column", "case", "type_coerce", "distinct", "null", "true", "false",
     "tuple_", "extract", "and_", "or_", "not_", "label", "over", "within_group", "collate", "between"}
)

#: Terminal Query methods and what each becomes (see ``codemods/query_to_select.py``).
QUERY_TERMINALS: Final = frozenset(
    {"all", "first", "one", "one_or_none", "scalar", "get", "count", "update", "delete", "exists", "paginate",
     "first_or_404", "get_or_404", "one_or_404"}
)

#: Query methods we know and cannot rewrite safely (reported, never guessed).
QUERY_UNSUPPORTED: Final = frozenset(
    {"yield_per", "from_self", "with_parent", "populate_existing", "enable_eagerloads", "with_polymorphic",
     "subquery", "cte", "statement", "as_scalar", "scalar_subquery", "label", "with_session", "merge_result",
     "instances", "params", "reset_joinpoint", "autoflush", "with_hint", "with_labels", "iterate"}
)

# Eager-loading option functions: a collection ``joinedload`` needs ``Result.unique()``.
EAGER_OPTIONS: Final = frozenset(
    {"sqlalchemy.orm.joinedload", "sqlalchemy.orm.selectinload", "sqlalchemy.orm.subqueryload",
     "sqlalchemy.orm.immediateload", "sqlalchemy.orm.contains_eager", "sqlalchemy.orm.lazyload",
     "sqlalchemy.orm.raiseload", "sqlalchemy.orm.noload", "sqlalchemy.orm.defer", "sqlalchemy.orm.undefer",
     "sqlalchemy.orm.load_only", "sqlalchemy.orm.defaultload", "sqlalchemy.orm.strategy_options.joinedload",
     "sqlalchemy.orm.strategy_options.selectinload"}
)
JOINEDLOAD: Final = frozenset({"sqlalchemy.orm.joinedload", "sqlalchemy.orm.strategy_options.joinedload"})

# --------------------------------------------------------------------------
# Engine URLs (§3).
# --------------------------------------------------------------------------

#: Sync driver URL prefix -> async driver URL prefix.  Order matters: longest first.
ASYNC_DRIVER_FOR_URL: Final = (
    ("sqlite+pysqlite://", "sqlite+aiosqlite://"),
    ("sqlite://", "sqlite+aiosqlite://"),
    ("postgresql+psycopg2://", "postgresql+asyncpg://"),
    ("postgresql+pg8000://", "postgresql+asyncpg://"),
    ("postgresql+psycopg://", "postgresql+psycopg://"),  # psycopg 3 serves both
    ("postgresql://", "postgresql+asyncpg://"),
    ("postgres://", "postgresql+asyncpg://"),
    ("mysql+pymysql://", "mysql+aiomysql://"),
    ("mysql+mysqldb://", "mysql+aiomysql://"),
    ("mysql+mysqlconnector://", "mysql+aiomysql://"),
    ("mysql://", "mysql+aiomysql://"),
    ("mariadb+pymysql://", "mariadb+aiomysql://"),
    ("mariadb://", "mariadb+aiomysql://"),
)

#: Already-async drivers (a URL with one of these needs no change).
ASYNC_DRIVERS: Final = frozenset({"aiosqlite", "asyncpg", "psycopg", "psycopg_async", "aiomysql", "asyncmy"})

#: Async driver -> the pip requirement that provides it.
DRIVER_REQUIREMENT: Final = {"aiosqlite": "aiosqlite", "asyncpg": "asyncpg", "aiomysql": "aiomysql", "psycopg": "psycopg[binary]",
                             "psycopg_async": "psycopg[binary]", "asyncmy": "asyncmy"}

#: ``create_engine`` keyword arguments that ``create_async_engine`` rejects (dropped).
ENGINE_KWARGS_DROPPED: Final = frozenset({"encoding", "convert_unicode"})
#: Pool classes rejected by asyncio engines -> accepted replacement.
ASYNC_POOLCLASS: Final = {"QueuePool": "AsyncAdaptedQueuePool", "SingletonThreadPool": None}
#: asyncpg rejects libpq parameters (first connect fails).
ASYNCPG_REJECTED_PARAMS: Final = frozenset({"sslmode", "connect_timeout", "options", "application_name_libpq"})
#: ``create_engine`` keyword arguments that are only no-ops or errors on an asyncio engine: ``future=True`` is
#: accepted and means nothing, ``future=False`` raises ``ArgumentError`` (dropped).
ENGINE_KWARGS_NOOP: Final = frozenset({"future"})
#: psycopg2-dialect keyword arguments: accepted by ``create_engine("postgresql+psycopg2://")``, rejected by
#: asyncpg and aiosqlite engines with ``TypeError: Invalid argument(s) ...`` (``server_side_cursors``:
#: ``AsyncMethodRequired``).  Checked on 2.1.9; dropped from the async engine and reported.
ENGINE_KWARGS_PSYCOPG2_ONLY: Final = frozenset(
    {"executemany_mode", "executemany_batch_page_size", "use_native_hstore", "client_encoding", "server_side_cursors"}
)
#: ``creator=`` returns a sync DBAPI connection: ``create_async_engine(..., creator=...)`` fails at the first
#: connect with ``AwaitRequired`` (2.1.9).  The async form is ``async_creator=``; never guessed, reported.
ENGINE_KWARGS_SYNC_ONLY: Final = frozenset({"creator"})
#: An in-memory SQLite URL gets ``StaticPool`` on aiosqlite (``SingletonThreadPool`` when sync), which rejects
#: these with ``TypeError: Invalid argument(s) 'pool_size' ...`` (2.1.9).  Dropped and reported.
SQLITE_MEMORY_ASYNC_REJECTED_KWARGS: Final = frozenset({"pool_size", "max_overflow", "pool_timeout", "pool_use_lifo"})
#: The URL spellings of an in-memory SQLite database (a sync and an async engine each get their own).
SQLITE_MEMORY_DATABASES: Final = frozenset({"", ":memory:"})

#: ``sessionmaker`` keyword arguments that ``async_sessionmaker`` does not need: ``bind`` becomes the first
#: positional argument; ``autocommit=False`` and ``future=True`` are accepted no-ops (2.1.9).
SESSIONMAKER_KWARGS_DROPPED: Final = frozenset({"bind", "autocommit", "future"})
#: ``expire_on_commit=True`` (the default) makes attribute reads after ``await commit()`` raise MissingGreenlet
#: (§4), so the async factory always sets it to False.
ASYNC_SESSIONMAKER_REQUIRED_KWARGS: Final = (("expire_on_commit", "False"),)
#: Session classes that can be constructed directly (``Session(engine)``), as opposed to factories.
SYNC_SESSION_CLASSES: Final = frozenset(
    {"sqlalchemy.orm.Session", "sqlalchemy.orm.session.Session", "sqlmodel.Session", "sqlmodel.orm.session.Session"}
)
#: Sync session class given as ``class_=`` -> ``(module, name)`` of the async class for ``async_sessionmaker``.
#: A plain SQLAlchemy ``Session`` needs nothing (``class_`` defaults to AsyncSession); any other class becomes
#: ``sync_session_class=`` (verified: ``async_sessionmaker(e, sync_session_class=MySession)`` on 2.1.9).
ASYNC_SESSION_CLASS_FOR: Final = {
    "sqlalchemy.orm.Session": ("sqlalchemy.ext.asyncio", "AsyncSession"),
    "sqlalchemy.orm.session.Session": ("sqlalchemy.ext.asyncio", "AsyncSession"),
    "sqlmodel.Session": ("sqlmodel.ext.asyncio.session", "AsyncSession"),
    "sqlmodel.orm.session.Session": ("sqlmodel.ext.asyncio.session", "AsyncSession"),
}
#: ``scoped_session`` constructors, and the scope function the async one requires (§3: without it,
#: ``TypeError: ... missing 1 required positional argument: 'scopefunc'``).
SYNC_SCOPED_SESSIONS: Final = frozenset({"sqlalchemy.orm.scoped_session", "sqlalchemy.orm.scoping.scoped_session"})
ASYNC_SCOPEFUNC: Final = ("asyncio", "current_task")

#: Event registration on an engine instance; an AsyncEngine raises NotImplementedError, its
#: ``.sync_engine`` takes the same listener (§3).
EVENT_LISTEN: Final = frozenset({"sqlalchemy.event.listen", "sqlalchemy.event.api.listen"})
EVENT_LISTENS_FOR: Final = frozenset({"sqlalchemy.event.listens_for", "sqlalchemy.event.api.listens_for"})

#: FastAPI / Starlette startup and shutdown hooks, which run on the loop even when the handler is a sync ``def``
#: (FastAPI 0.165 calls a sync handler directly, on MainThread): ``@app.on_event("startup")``,
#: ``app.add_event_handler("startup", f)``, ``FastAPI(on_startup=[f], on_shutdown=[g])``.
LIFESPAN_EVENT_DECORATOR: Final = "on_event"
LIFESPAN_EVENT_REGISTRAR: Final = "add_event_handler"
LIFESPAN_EVENTS: Final = frozenset({"startup", "shutdown"})
LIFESPAN_HANDLER_KEYWORDS: Final = frozenset({"on_startup", "on_shutdown"})

#: ``MetaData`` methods that take a sync bind; on the loop they become
#: ``async with e.begin() as conn: await conn.run_sync(metadata.<name>)`` (§3, §8 item 3).
METADATA_DDL_METHODS: Final = frozenset({"create_all", "drop_all"})
#: Sync ``Engine`` methods that do I/O (reported when found on the loop and not rewritten).
ENGINE_IO_METHODS: Final = frozenset({"connect", "begin", "execute", "raw_connection", "dispose"})

#: Lowest versions written into requirements for each async driver package (and greenlet-carrying extra).
#: aiosqlite/asyncpg follow the seed and this project's own pins; the versions actually checked are newer
#: (see the header of SQLALCHEMY_ASYNC.md).
DRIVER_VERSION_FLOOR: Final = {"aiosqlite": "0.20", "asyncpg": "0.29", "aiomysql": "0.2", "asyncmy": "0.2.9", "psycopg": "3.1",
                               "psycopg_async": "3.1"}
#: Requirements that mean "this project uses SQLAlchemy" (and so gets the drivers and the asyncio extra).
SQLALCHEMY_DISTRIBUTIONS: Final = frozenset({"sqlalchemy", "sqlmodel"})
#: The SQLAlchemy extra that pulls in greenlet (optional from 2.1 on, §0).
SQLALCHEMY_ASYNCIO_EXTRA: Final = "asyncio"

_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z0-9_]+)(?:\+(?P<driver>[A-Za-z0-9_]+))?://")


def async_url(url: str) -> str | None:
    """The async-driver form of a sync SQLAlchemy URL, or None when unknown.

    >>> async_url("sqlite:///./app.db")
    'sqlite+aiosqlite:///./app.db'
    >>> async_url("postgresql+psycopg2://u:p@h/db")
    'postgresql+asyncpg://u:p@h/db'
    """
    m = _URL_RE.match(url)
    if not m:
        return None
    if m.group("driver") in ASYNC_DRIVERS:
        return url
    for sync_prefix, async_prefix in ASYNC_DRIVER_FOR_URL:
        if url.startswith(sync_prefix):
            return async_prefix + url[len(sync_prefix):]
    return None


def url_driver(url: str) -> tuple[str, str | None] | None:
    """``(dialect, driver)`` of a URL string, or None if it is not one."""
    m = _URL_RE.match(url)
    return (m.group("scheme"), m.group("driver")) if m else None


def is_sync_url(url: str) -> bool:
    """True when ``create_async_engine`` would reject this URL (a sync driver)."""
    parsed = url_driver(url)
    if parsed is None:
        return False
    return parsed[1] not in ASYNC_DRIVERS and async_url(url) is not None and async_url(url) != url


# --------------------------------------------------------------------------
# Time and other blocking calls (§7): qualified name -> (code, replacement hint).
# --------------------------------------------------------------------------

BLOCKING_SLEEP: Final = frozenset({"time.sleep"})

#: Qualified-name prefixes of blocking calls that are not database calls.
#: Exact names or a prefix ending in "." (every function of that module).
BLOCKING_IO: Final = {
    "builtins.open": ("ASM301", "await asyncio.to_thread(...) or aiofiles.open"),
    "io.open": ("ASM301", "await asyncio.to_thread(...) or aiofiles.open"),
    "pathlib.Path.read_text": ("ASM301", "await asyncio.to_thread(path.read_text)"),
    "pathlib.Path.write_text": ("ASM301", "await asyncio.to_thread(path.write_text, ...)"),
    "pathlib.Path.read_bytes": ("ASM301", "await asyncio.to_thread(path.read_bytes)"),
    "pathlib.Path.write_bytes": ("ASM301", "await asyncio.to_thread(path.write_bytes, ...)"),
    "requests.": ("ASM302", "a shared httpx.AsyncClient, or await run_in_threadpool(requests...)"),
    "urllib.request.urlopen": ("ASM302", "a shared httpx.AsyncClient"),
    "httpx.get": ("ASM302", "a shared httpx.AsyncClient"),
    "httpx.post": ("ASM302", "a shared httpx.AsyncClient"),
    "httpx.put": ("ASM302", "a shared httpx.AsyncClient"),
    "httpx.delete": ("ASM302", "a shared httpx.AsyncClient"),
    "httpx.request": ("ASM302", "a shared httpx.AsyncClient"),
    "subprocess.run": ("ASM303", "asyncio.create_subprocess_exec"),
    "subprocess.call": ("ASM303", "asyncio.create_subprocess_exec"),
    "subprocess.check_call": ("ASM303", "asyncio.create_subprocess_exec"),
    "subprocess.check_output": ("ASM303", "asyncio.create_subprocess_exec"),
    "subprocess.getoutput": ("ASM303", "asyncio.create_subprocess_shell"),
    "subprocess.getstatusoutput": ("ASM303", "asyncio.create_subprocess_shell"),
    "os.system": ("ASM303", "asyncio.create_subprocess_shell"),
    "pandas.read_excel": ("ASM304", "await asyncio.to_thread(pd.read_excel, ...)"),
    "pandas.read_csv": ("ASM304", "await asyncio.to_thread(pd.read_csv, ...)"),
    "pandas.read_sql": ("ASM304", "await asyncio.to_thread(pd.read_sql, ...)"),
    "pandas.read_parquet": ("ASM304", "await asyncio.to_thread(pd.read_parquet, ...)"),
    "pandas.DataFrame.to_excel": ("ASM304", "await asyncio.to_thread(df.to_excel, ...)"),
    "pandas.DataFrame.to_csv": ("ASM304", "await asyncio.to_thread(df.to_csv, ...)"),
}


#: Last name components that can be a blocking call above: a cheap filter before name resolution.
BLOCKING_CALL_NAMES: Final = frozenset(
    {k.rsplit(".", 1)[-1] for k in BLOCKING_IO if not k.endswith(".")}
    | {"get", "post", "put", "patch", "delete", "head", "options", "request"}  # requests.<verb>
    | {q.rsplit(".", 1)[-1] for q in BLOCKING_SLEEP}
)


def blocking_io(qualname: str) -> tuple[str, str] | None:
    """``(code, hint)`` when a call to ``qualname`` is blocking non-DB I/O."""
    hit = BLOCKING_IO.get(qualname)
    if hit is not None:
        return hit
    for key, value in BLOCKING_IO.items():
        if key.endswith(".") and qualname.startswith(key) and qualname.count(".") == key.count("."):
            return value
    return None


# --------------------------------------------------------------------------
# Concurrency boundaries (§5): calls that run their argument somewhere else.
# --------------------------------------------------------------------------

#: ``f(fn, ...)``: ``fn`` runs in a worker thread (so sync code there is debt, not blocking).
THREADPOOL_RUNNERS: Final = frozenset(
    {
        "starlette.concurrency.run_in_threadpool",
        "fastapi.concurrency.run_in_threadpool",
        "anyio.to_thread.run_sync",
        "asyncio.to_thread",
        "asyncio.loop.run_in_executor",  # resolved specially: 2nd argument
        "threading.Thread",  # target=
        "concurrent.futures.ThreadPoolExecutor.submit",
        "concurrent.futures.ProcessPoolExecutor.submit",
    }
)

#: ``f(coro())``: the coroutine runs on the loop (awaited elsewhere).
LOOP_SCHEDULERS: Final = frozenset(
    {"asyncio.create_task", "asyncio.ensure_future", "asyncio.gather", "asyncio.wait_for", "asyncio.shield",
     "asyncio.run", "anyio.run", "asyncio.run_coroutine_threadsafe"}
)

#: Methods whose callable argument FastAPI/Starlette run later, in a thread when sync.
BACKGROUND_ADD_TASK: Final = "add_task"

#: Decorator attribute names that register FastAPI / Starlette routes.
ROUTE_DECORATORS: Final = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "trace", "api_route",
                                     "route", "websocket", "websocket_route"})
#: Decorator / call names that register startup/shutdown/middleware hooks (run on the loop when async).
LIFECYCLE_HOOKS: Final = frozenset({"on_event", "middleware", "exception_handler"})
#: Decorators whose *sync* functions still run on the loop: FastAPI/Starlette's async startup and
#: shutdown call a sync ``on_event`` handler directly (``fastapi/routing.py``: ``handler()``).
LOOP_HOOK_DECORATORS: Final = frozenset({"on_event"})

#: Decorators that make a pytest fixture: a test function's parameter of the fixture's name receives what the
#: fixture returns or yields (``analysis/fixtures.py``).
PYTEST_FIXTURE_DECORATORS: Final = frozenset({"pytest.fixture", "pytest_asyncio.fixture"})
