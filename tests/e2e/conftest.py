"""Plumbing for the HTTP end-to-end suite of the example backend.

The suite never imports the application: it starts ``uvicorn app.main:app`` in a
subprocess (cwd = the tree under test, ``DATABASE_URL`` = an ordinary *sync* URL) and
talks to it with httpx. Which tree is tested comes from the ``backend_tree`` fixture
(env ``ASYNCMIGRATE_E2E_TREE``, default the legacy fixture). Another test module can run
the same tests on a different tree by overriding ``backend_tree`` (and ``expectation``)
with fixtures of the same name, e.g. in a module that does
``from e2e.test_functional import *`` -- see README.md beside this file.

Databases: sqlite always (a fresh file per server), postgres when
``ASYNCMIGRATE_PG_URL`` is set (a fresh database per server, dropped afterwards).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

REPO_ROOT = Path(__file__).resolve().parents[2]
LEGACY_TREE = REPO_ROOT / "fixtures" / "example_backend"

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Lines in the server log that fail the test using that server.
BAD_LOG_PATTERNS = [
    re.compile(r"coroutine .* was never awaited"),
    re.compile(r"MissingGreenlet"),
    re.compile(r"greenlet_spawn has not been called"),
    re.compile(r"Exception in ASGI application"),
    re.compile(r"Task exception was never retrieved"),
]


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    tree: Path
    db_url: str
    db_kind: str
    base_url: str
    log_path: Path
    workdir: Path
    proc: subprocess.Popen | None = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 120) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def bad_log_lines(self) -> list[str]:
        return [
            line
            for line in self.log_text().splitlines()
            if any(p.search(line) for p in BAD_LOG_PATTERNS)
        ]

    def client(self, **kwargs) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.base_url, **kwargs)

    def async_client(self, **kwargs) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 30.0)
        return httpx.AsyncClient(base_url=self.base_url, **kwargs)


class ServerError(AssertionError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=STOP_TIMEOUT)


@contextmanager
def start_server(
    tree: Path | str,
    db_url: str,
    *,
    db_kind: str | None = None,
    workdir: Path | None = None,
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
    check_log: bool = True,
) -> Iterator[Server]:
    """Run ``uvicorn app.main:app`` from ``tree`` against ``db_url`` until the block exits.

    Waits (bounded) for ``GET /health``. On exit the server is stopped and, when
    ``check_log``, its log is searched for never-awaited coroutines, MissingGreenlet and
    unhandled ASGI exceptions; any of those raises ServerError with the log attached.
    """
    tree = Path(tree).resolve()
    if not (tree / "app" / "main.py").is_file():
        raise ServerError(f"{tree} has no app/main.py")
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="e2e-server-")) if own_workdir else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        EXPORT_DIR=str(workdir / "exports"),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra_env or {})
    server = Server(
        tree=tree,
        db_url=db_url,
        db_kind=db_kind or make_url(db_url).get_backend_name(),
        base_url=f"http://127.0.0.1:{port}",
        log_path=log_path,
        workdir=workdir,
    )
    log_fh = open(log_path, "wb")
    server.proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tree,
        env=env,
        stdout=log_fh,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if server.proc.poll() is not None:
                raise ServerError(
                    f"server exited with {server.proc.returncode} during startup\n{server.log_tail()}"
                )
            try:
                if httpx.get(server.base_url + "/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"/health not ready after {startup_timeout}s\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        _stop(server.proc)
        log_fh.close()
    if check_log:
        bad = server.bad_log_lines()
        if bad:
            raise ServerError(
                "server log contains failures:\n  " + "\n  ".join(bad[:20]) + f"\n--- log tail ---\n{server.log_tail()}"
            )


# ------------------------------------------------------------------------- databases

_db_counter = 0


def _pg_base_url() -> str | None:
    return os.environ.get("ASYNCMIGRATE_PG_URL") or None


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """Yield the sync URL of an empty database of ``kind`` ("sqlite" or "postgres")."""
    global _db_counter
    _db_counter += 1
    if kind == "sqlite":
        path = Path(workdir) / f"app-{_db_counter}-{uuid.uuid4().hex[:6]}.db"
        yield f"sqlite:///{path}"
        return
    if kind != "postgres":
        raise ValueError(kind)
    base = _pg_base_url()
    if not base:
        pytest.skip("ASYNCMIGRATE_PG_URL is not set (start one with scripts/postgres.sh)")
    base_url = make_url(base)
    name = f"am_e2e_{os.getpid()}_{_db_counter}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(base_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    created = False
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created = True
    except sa.exc.ProgrammingError:
        # no CREATEDB privilege: fall back to emptying the given database
        meta = sa.MetaData()
        with admin.connect() as conn:
            meta.reflect(bind=conn)
            meta.drop_all(bind=conn)
    url = base_url.set(database=name) if created else base_url
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        if created:
            _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: sa.Engine, name: str, attempts: int = 5) -> None:
    """Drop a test database; a backend the role may not signal (an autovacuum worker on a
    cluster started without scripts/postgres.sh's grant) only delays it, so retry, then warn:
    a leftover database in a throwaway cluster is not a test failure."""
    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except sa.exc.DBAPIError as exc:
            last = exc
            time.sleep(0.5 * (attempt + 1))
    warnings.warn(f"could not drop test database {name}: {last.orig}", stacklevel=2)


@contextmanager
def running_backend(tree: Path, kind: str, workdir: Path, **kwargs) -> Iterator[Server]:
    """A fresh database of ``kind`` plus a server of ``tree`` on it."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with fresh_database(kind, workdir) as url:
        with start_server(tree, url, db_kind=kind, workdir=workdir, **kwargs) as server:
            yield server


def db_engine(url: str) -> sa.Engine:
    """A sync engine in the test process, for checking what the app wrote."""
    return sa.create_engine(url, poolclass=NullPool)


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# -------------------------------------------------------------------------- fixtures


def _resolve_tree(value: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        path = (REPO_ROOT / path) if (REPO_ROOT / path).exists() else path.resolve()
    return path.resolve()


@pytest.fixture(scope="session")
def backend_tree() -> Path:
    """The backend under test. Override this fixture to test another tree."""
    value = os.environ.get("ASYNCMIGRATE_E2E_TREE")
    tree = _resolve_tree(value) if value else LEGACY_TREE
    if not (tree / "app" / "main.py").is_file():
        pytest.fail(f"ASYNCMIGRATE_E2E_TREE={tree} has no app/main.py")
    return tree


@pytest.fixture(scope="session")
def expectation(backend_tree: Path) -> str:
    """"legacy": the tree must show the blocking pathology; "async": it must not."""
    value = os.environ.get("ASYNCMIGRATE_E2E_EXPECT")
    if value is None:
        value = "legacy" if backend_tree.resolve() == LEGACY_TREE.resolve() else "async"
    if value not in ("legacy", "async"):
        pytest.fail(f"ASYNCMIGRATE_E2E_EXPECT must be legacy or async, not {value!r}")
    return value


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def db_kind(request) -> str:
    if request.param == "postgres" and not _pg_base_url():
        pytest.skip("postgres: ASYNCMIGRATE_PG_URL is not set (start one with scripts/postgres.sh)")
    return request.param


@pytest.fixture(scope="session")
def e2e_workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def report_dir(e2e_workdir: Path) -> Path:
    value = os.environ.get("ASYNCMIGRATE_E2E_REPORT")
    path = Path(value) if value else e2e_workdir / "report"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server(backend_tree, db_kind, tmp_path_factory) -> Iterator[Server]:
    """One server per test module (and database kind), on a fresh database."""
    with running_backend(backend_tree, db_kind, tmp_path_factory.mktemp(f"srv-{db_kind}")) as srv:
        yield srv


@pytest.fixture()
def fresh_server(backend_tree, db_kind, tmp_path_factory) -> Iterator[Server]:
    """A server of its own for one test (latency tests)."""
    with running_backend(backend_tree, db_kind, tmp_path_factory.mktemp(f"fresh-{db_kind}")) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _server_log_guard(request):
    """Fail the test whose requests put a bad line in its server's log (attributes the
    failure to the test, not to the module-scoped server's teardown)."""
    servers = [
        request.getfixturevalue(name)
        for name in ("server", "fresh_server")
        if name in request.fixturenames
    ]
    offsets = [(srv, len(srv.log_text())) for srv in servers]
    yield
    for srv, offset in offsets:
        new_lines = srv.log_text()[offset:].splitlines()
        bad = [line for line in new_lines if any(p.search(line) for p in BAD_LOG_PATTERNS)]
        if bad:
            pytest.fail(
                "server log written during this test contains failures:\n  "
                + "\n  ".join(bad[:20])
                + f"\n--- log tail ---\n{srv.log_tail()}",
                pytrace=False,
            )


@pytest.fixture()
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def db(server: Server) -> Iterator[sa.Engine]:
    engine = db_engine(server.db_url)
    yield engine
    engine.dispose()


# --------------------------------------------------------------------------- reports

_REPORT_LINES: list[str] = []


def write_report(report_dir: Path, name: str, data: dict) -> Path:
    path = Path(report_dir) / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    summary = data.get("summary_line")
    if summary:
        _REPORT_LINES.append(f"{summary}  [{path}]")
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
    return path


def pytest_terminal_summary(terminalreporter):
    if _REPORT_LINES:
        terminalreporter.section("asyncmigrate e2e measurements")
        for line in _REPORT_LINES:
            terminalreporter.write_line(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        funcargs = getattr(item, "funcargs", {}) or {}
        seen = set()
        for value in funcargs.values():
            if isinstance(value, Server) and id(value) not in seen:
                seen.add(id(value))
                report.sections.append(
                    (f"server log ({value.base_url}, {value.log_path})", value.log_tail(200))
                )
