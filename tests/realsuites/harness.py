"""Run real projects' own test suites before and after ``asyncmigrate fix --write`` (shared/REALSUITES.md).

Opt-in and never part of the normal run: the projects are public repositories extracted outside this
project into ``$ASYNCMIGRATE_REALSUITES/<owner>+<name>/`` at the commits of ``manifest.toml``.  For each
project the harness

1. builds one virtual environment per pin set (``$ASYNCMIGRATE_REALSUITES/.venvs/``, reused while the pins
   are the same): the project's pins plus ``common`` (async drivers, greenlet, pytest plugins);
2. copies the project folder to ``.runs/<name>/before``, renders ``{{cookiecutter.*}}`` placeholders in the
   files the manifest names, collects its tests and runs **each test in its own pytest process on a fresh
   database** (a new SQLite file, or a new PostgreSQL database on scripts/postgres.sh's server, dropped
   afterwards): state never drifts from one test to the next, so a result belongs to that test alone;
3. copies it again to ``.runs/<name>/after``, runs ``asyncmigrate fix . --write`` there (timed; no hand
   edits) and runs the same tests the same way, in the ``pins_after`` environment.

A test passes only when pytest exits 0 and its output has no ``was never awaited`` (a coroutine dropped
on the floor is a write that silently never happened).  The table per project gives: tests, passed
before, passed after, what ``fix`` left for a human, blocks-loop findings of ``scan`` before → after,
and the wall time of ``fix``.  ``.runs/<name>/result.json`` keeps every test's outcome and the tail of
each failure's output.

    python -m tests.realsuites.harness [--only NAME] [--jobs N] [--reuse-before]
    python -m tests.realsuites.harness --extract /work/.mirror/owner+name/repo   # git archive at the pinned commit
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MANIFEST = HERE / "manifest.toml"
ENV_VAR = "ASYNCMIGRATE_REALSUITES"
#: the marker of a coroutine that was created and never awaited: the test "passed" without doing the work
NEVER_AWAITED = "was never awaited"
#: seconds for one test process (fastapi-postgresql retries its database ping for 60 s before failing)
TEST_TIMEOUT = 300
FIX_TIMEOUT = 900
#: environment variables of this process that must not reach a project's test process
NOT_INHERITED = ("PYTHONPATH", "PYTEST_ADDOPTS", "DATABASE_URL", "VIRTUAL_ENV", "PYTHONHOME")


@dataclass(frozen=True)
class Project:
    name: str
    repo: str
    commit: str
    folder: str
    tests: tuple[str, ...]
    db: str
    pins: tuple[str, ...]
    pins_after: tuple[str, ...] = ()
    databases: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    render: tuple[str, ...] = ()

    @property
    def dirname(self) -> str:
        return self.repo.replace("/", "+")


@dataclass
class Outcome:
    test: str
    passed: bool
    returncode: int
    never_awaited: bool
    tail: str = ""


@dataclass
class Report:
    name: str
    tests: int = 0
    before: list[Outcome] = field(default_factory=list)
    after: list[Outcome] = field(default_factory=list)
    left_for_human: Optional[int] = None
    fix_exit: Optional[int] = None
    fix_seconds: Optional[float] = None
    blocks_loop_before: Optional[int] = None
    blocks_loop_after: Optional[int] = None
    fix_stderr_tail: str = ""

    def passed(self, side: str) -> int:
        return sum(o.passed for o in getattr(self, side))

    def regressions(self) -> list[str]:
        """Tests that passed on the original and do not pass on the migrated copy."""
        after = {o.test: o.passed for o in self.after}
        return [o.test for o in self.before if o.passed and not after.get(o.test, False)]


def load_manifest(path: Path = MANIFEST) -> tuple[tuple[str, ...], list[Project]]:
    data = tomllib.loads(path.read_text())
    projects = []
    for p in data["project"]:
        projects.append(Project(
            name=p["name"], repo=p["repo"], commit=p["commit"], folder=p["folder"], tests=tuple(p["tests"]),
            db=p["db"], pins=tuple(p["pins"]), pins_after=tuple(p.get("pins_after", ())),
            databases=tuple(p.get("databases", ())), env=tuple(sorted(p.get("env", {}).items())),
            render=tuple(p.get("render", ()))))
    return tuple(data.get("common", ())), projects


# ---------------------------------------------------------------------------------------------- venvs
def _dist(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower().replace("_", "-")


def pins_for(project: Project, common: tuple[str, ...], after: bool) -> list[str]:
    pins = list(project.pins)
    if after:
        replaced = {_dist(r): r for r in project.pins_after}
        pins = [replaced.pop(_dist(r), r) for r in pins] + list(replaced.values())
    return pins + list(common)


def venv(root: Path, project: Project, pins: list[str]) -> Path:
    """The interpreter of the environment for ``pins``, built once and reused (keyed by the pin set)."""
    key = hashlib.sha256("\n".join(sorted(pins)).encode()).hexdigest()[:10]
    home = root / ".venvs" / f"{project.name}-{key}"
    python = home / "bin" / "python"
    if (home / ".ready").exists():
        return python
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([_base_python(), "-m", "venv", str(home)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
    (home / "pins.txt").write_text("\n".join(pins) + "\n")
    (home / ".ready").write_text("")
    return python


def _base_python() -> str:
    """A plain interpreter of this Python version (``sys.executable`` may itself be a venv's)."""
    return getattr(sys, "_base_executable", None) or sys.executable


# ------------------------------------------------------------------------------------------ databases
@dataclass(frozen=True)
class Postgres:
    host: str
    port: str
    user: str
    password: str
    admin_db: str

    @classmethod
    def start(cls) -> "Postgres":
        url = subprocess.run(["bash", str(REPO / "scripts" / "postgres.sh")], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        m = re.match(r"postgresql(?:\+\w+)?://([^:]+):([^@]+)@([^:/]+):(\d+)/(\w+)", url)
        if not m:
            raise SystemExit(f"scripts/postgres.sh printed no URL: {url!r}")
        return cls(host=m[3], port=m[4], user=m[1], password=m[2], admin_db=m[5])

    def _admin(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=self.admin_db)
        conn.autocommit = True
        try:
            for attempt in range(5):  # DROP ... WITH (FORCE) may meet a backend it cannot signal yet
                try:
                    with conn.cursor() as cur:
                        cur.execute(sql)
                    return
                except psycopg2.errors.InsufficientPrivilege:
                    if attempt == 4:
                        raise
                    time.sleep(0.5 * (attempt + 1))
        finally:
            conn.close()

    def create(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{name}"')

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, name: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{name}"


def _fill(template: str, values: dict[str, str]) -> str:
    return template.format(**values)


# ------------------------------------------------------------------------------------------- the copy
def prepare_copy(src: Path, dst: Path, project: Project) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc",
                                                            ".asyncmigrate_cache"))
    if project.render:
        defaults = _cookiecutter_defaults(src)
        for rel in project.render:
            path = dst / rel
            text = path.read_text()
            path.write_text(re.sub(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}", lambda m: defaults.get(m[1], m[0]), text))


def _cookiecutter_defaults(folder: Path) -> dict[str, str]:
    for parent in [folder, *folder.parents]:
        path = parent / "cookiecutter.json"
        if path.exists():
            return {k: str(v) for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    return {}


# ------------------------------------------------------------------------------------------ the tests
class Runner:
    def __init__(self, root: Path, project: Project, pg: Optional[Postgres]) -> None:
        self.root, self.project, self.pg = root, project, pg
        self.scratch = root / ".runs" / project.name / "scratch"

    def _env(self, python: Path, values: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update({k: _fill(v, values) for k, v in self.project.env})
        return env

    def _fresh(self) -> tuple[dict[str, str], list[str], Path]:
        """Values for the manifest's templates, the databases made for one run, and its scratch folder."""
        token = uuid.uuid4().hex[:10]
        work = self.scratch / token
        work.mkdir(parents=True)
        values = {"work": str(work), "db_name": f"rs_{token}"}
        made: list[str] = []
        if self.project.db == "postgresql":
            assert self.pg is not None
            values.update(pg_host=self.pg.host, pg_port=self.pg.port, pg_user=self.pg.user,
                          pg_password=self.pg.password)
            for template in self.project.databases:
                name = _fill(template, values)
                self.pg.create(name)
                made.append(name)
            values["db_url"] = self.pg.url(values["db_name"])
        else:
            values["db_url"] = f"sqlite:///{work}/app.db"
        return values, made, work

    def _cleanup(self, made: list[str], work: Path) -> None:
        for name in made:
            assert self.pg is not None
            self.pg.drop(name)
        shutil.rmtree(work, ignore_errors=True)

    def _pytest(self, python: Path, cwd: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
        values, made, work = self._fresh()
        try:
            cmd = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-W", "always::RuntimeWarning", *args]
            try:
                return subprocess.run(cmd, cwd=cwd, env=self._env(python, values), capture_output=True, text=True,
                                      timeout=TEST_TIMEOUT)
            except subprocess.TimeoutExpired as e:
                out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
                return subprocess.CompletedProcess(cmd, -9, out + f"\n[harness] timeout after {TEST_TIMEOUT}s", "")
        finally:
            self._cleanup(made, work)

    def collect(self, python: Path, cwd: Path) -> list[str]:
        run = self._pytest(python, cwd, ["--collect-only", "-q", *self.project.tests])
        ids = [line.strip() for line in run.stdout.splitlines() if "::" in line and not line.startswith(" ")]
        if not ids:
            raise RuntimeError(f"{self.project.name}: no tests collected\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
        return ids

    def run_one(self, python: Path, cwd: Path, test: str) -> Outcome:
        run = self._pytest(python, cwd, ["-q", test])
        out = run.stdout + run.stderr
        never = NEVER_AWAITED in out
        return Outcome(test=test, passed=run.returncode == 0 and not never, returncode=run.returncode,
                       never_awaited=never, tail="" if run.returncode == 0 and not never else _failure_tail(out))


def _failure_tail(out: str, limit: int = 2500) -> str:
    """The most telling part of a failed run: the first ``E   `` lines and the summary, else the end."""
    errors = [line for line in out.splitlines() if line.startswith("E   ")][:12]
    summary = [line for line in out.splitlines() if NEVER_AWAITED in line or line.startswith(("FAILED", "ERROR"))]
    text = "\n".join(errors + summary[:8])
    return (text or out[-limit:])[:limit]


def blocks_loop(cwd: Path) -> Optional[int]:
    run = subprocess.run([sys.executable, "-m", "asyncmigrate", "scan", ".", "--format", "json", "-q", "--no-cache"],
                         cwd=cwd, capture_output=True, text=True, timeout=FIX_TIMEOUT)
    try:
        doc = json.loads(run.stdout)
    except json.JSONDecodeError:
        return None
    return sum(1 for f in doc["findings"] if f["severity"] == "blocks-loop")


def run_fix(cwd: Path) -> tuple[int, float, Optional[int], str]:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "asyncmigrate", "fix", ".", "--write", "--no-cache"], cwd=cwd,
                         capture_output=True, text=True, timeout=FIX_TIMEOUT)
    seconds = time.perf_counter() - start
    m = re.search(r"left for a human \((\d+)\)", run.stderr)
    return run.returncode, seconds, int(m[1]) if m else 0, run.stderr


def _previous_before(base: Path) -> Optional[list[Outcome]]:
    """The original's outcomes from the last run (``--reuse-before``: the original does not change)."""
    try:
        data = json.loads((base / "result.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return [Outcome(**o) for o in data.get("before", [])] or None


def run_project(root: Path, project: Project, common: tuple[str, ...], jobs: int = 1,
                pg: Optional[Postgres] = None, log=print, reuse_before: bool = False) -> Report:
    src = root / project.dirname / project.folder
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is missing: extract {project.repo} at {project.commit} into "
                                f"{root / project.dirname}")
    if project.db == "postgresql" and pg is None:
        pg = Postgres.start()
    runner = Runner(root, project, pg)
    base = root / ".runs" / project.name
    report = Report(project.name)
    before_dir, after_dir = base / "before", base / "after"
    prepare_copy(src, before_dir, project)
    py_before = venv(root, project, pins_for(project, common, after=False))
    py_after = venv(root, project, pins_for(project, common, after=True))
    previous = _previous_before(base) if reuse_before else None
    if previous is not None:
        report.before = previous
        tests = [o.test for o in previous]
        log(f"{project.name}: {len(tests)} tests; the original's results are reused from the last run")
    else:
        tests = runner.collect(py_before, before_dir)
        log(f"{project.name}: {len(tests)} tests; running the original")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            report.before = list(pool.map(lambda t: runner.run_one(py_before, before_dir, t), tests))
    report.tests = len(tests)
    report.blocks_loop_before = blocks_loop(before_dir)

    prepare_copy(src, after_dir, project)
    report.fix_exit, report.fix_seconds, report.left_for_human, stderr = run_fix(after_dir)
    report.fix_stderr_tail = stderr[-6000:]
    log(f"{project.name}: fix exited {report.fix_exit} in {report.fix_seconds:.1f}s; running the migrated copy")
    report.blocks_loop_after = blocks_loop(after_dir)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        report.after = list(pool.map(lambda t: runner.run_one(py_after, after_dir, t), tests))
    (base / "result.json").write_text(json.dumps(asdict(report), indent=1))
    return report


def table(report: Report) -> str:
    rows = [("project", "tests", "before", "after", "left for a human", "blocks-loop before→after", "fix wall time"),
            (report.name, str(report.tests), str(report.passed("before")), str(report.passed("after")),
             str(report.left_for_human), f"{report.blocks_loop_before}→{report.blocks_loop_after}",
             f"{report.fix_seconds:.1f} s (exit {report.fix_exit})" if report.fix_seconds is not None else "-")]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def extract(gitdir: str, root: Path) -> Path:
    """``git archive`` of a mirror at the manifest's commit into ``root/<owner>+<name>``."""
    _, projects = load_manifest()
    name = Path(gitdir).resolve().parent.name if Path(gitdir).name == "repo" else Path(gitdir).name
    project = next((p for p in projects if p.dirname == name), None)
    if project is None:
        raise SystemExit(f"{name} is not in the manifest")
    dst = root / project.dirname
    dst.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "--git-dir", gitdir, "archive", project.commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive.stdout, check=True)
    return dst


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="project name(s) from the manifest")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="test processes at a time (default 1)")
    parser.add_argument("--reuse-before", action="store_true",
                        help="take the original's results from the last run's result.json (it does not change)")
    parser.add_argument("--extract", metavar="GITDIR", help="extract a mirror at the manifest's commit and exit")
    args = parser.parse_args(argv)
    if not os.environ.get(ENV_VAR):
        raise SystemExit(f"set {ENV_VAR} to the folder the projects are extracted in")
    root = Path(os.environ[ENV_VAR]).resolve()
    if args.extract:
        print(extract(args.extract, root))
        return 0
    common, projects = load_manifest()
    status = 0
    for project in projects:
        if args.only and project.name not in args.only:
            continue
        report = run_project(root, project, common, jobs=args.jobs, log=lambda m: print(m, file=sys.stderr),
                             reuse_before=args.reuse_before)
        print(table(report))
        for test in report.regressions():
            tail = next(o.tail for o in report.after if o.test == test)
            print(f"  regressed: {test}\n    " + tail.replace("\n", "\n    ")[:800])
        status |= bool(report.regressions())
    return status


if __name__ == "__main__":
    sys.exit(main())
