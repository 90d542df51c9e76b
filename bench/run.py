"""Speed and memory of asyncmigrate beside Ruff, flake8-async and a bare parse, in one run.

    python bench/run.py                 # >= 1,000,000 lines (see bench/corpus.py)
    python bench/run.py --quick         # >= 100,000 lines, a minute or two
    python bench/run.py --lines 2e6 -j 2 --repeat 3 --json out.json

Every tool gets exactly the same files: the assembled corpus is copied into a
temporary tree (so that one file can be changed without touching the
originals) and each tool is given the same explicit list of files, with its own
configuration files ignored (``--isolated``; asyncmigrate gets a configuration
that turns ``.gitignore`` handling off, and ``ASYNCMIGRATE_CACHE_DIR`` puts its
cache in the temporary directory).  ``--compare-ref REF`` also runs the cold and
warm scans with asyncmigrate as it was at git ``REF`` (``git archive`` into the
temporary directory, first on ``PYTHONPATH``), for ratios measured in the same run.  Each step runs as a subprocess; the table shows its wall time,
the CPU time of its whole process tree, and its peak memory: the sum of the RSS
of the process and all its descendants, sampled every 20 ms (an upper bound:
pages shared between forked workers count once per process), and in brackets
the largest single process (``wait4``'s ``ru_maxrss``, exact).

See bench/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import corpus as corpus_mod  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


# ----------------------------------------------------------------------------- measuring
@dataclass
class Measurement:
    wall: float
    cpu: float  # user + system of the process and its waited-for descendants
    peak_tree_rss: int  # bytes, sampled sum over the process tree
    max_rss: int  # bytes, largest single process (ru_maxrss)
    returncode: int
    stdout: str = ""
    stderr: str = ""


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss(pid: int) -> int:
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss(p)
        todo += _children(p)
    return total


def measure(cmd: Sequence[str], cwd: Path, env: Optional[dict] = None, interval: float = 0.02) -> Measurement:
    """Run ``cmd``; wall time, CPU time and peak memory of its whole process tree."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(proc.pid))
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 (not Popen.wait) to get this child's own resource usage, descendants included
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measurement(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            peak_tree_rss=max(peak[0], usage.ru_maxrss * 1024),
            max_rss=usage.ru_maxrss * 1024,
            returncode=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def best_of(n: int, run: Callable[[], Measurement], prepare: Optional[Callable[[], None]] = None) -> Measurement:
    """The fastest of ``n`` runs (the usual way to see through a busy machine); memory: the largest."""
    results = []
    for _ in range(max(1, n)):
        if prepare:
            prepare()
        results.append(run())
    best = min(results, key=lambda m: m.wall)
    best.peak_tree_rss = max(m.peak_tree_rss for m in results)
    best.max_rss = max(m.max_rss for m in results)
    return best


# ----------------------------------------------------------------------------- the rows
@dataclass
class Row:
    key: str
    label: str
    m: Optional[Measurement] = None
    output: str = ""  # what the tool reported (findings, errors)
    note: str = ""
    na: str = ""  # why the row could not run
    failed: bool = False  # the tool crashed: its time is not comparable
    targets: list[tuple[str, Optional[bool]]] = field(default_factory=list)


def _tail(text: str, n: int = 1) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " / ".join(lines[-n:])[:160]


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.jobs = args.jobs
        self.py = sys.executable
        self.work = Path(tempfile.mkdtemp(prefix="asyncmigrate-bench-"))
        self.tree = self.work / "tree"
        self.filelist = self.work / "files.txt"
        self.am_cache = self.work / "asyncmigrate-cache"
        # inside the tree: ``check`` finds the git work tree from the configuration's directory
        self.am_config = self.tree / "pyproject.toml"
        self.rows: dict[str, Row] = {}
        self.files: list[str] = []
        self.lines = 0
        self.per_corpus: dict[str, tuple[int, int]] = {}
        self.env = dict(os.environ)
        self.env.pop("ASYNCMIGRATE_CORPUS", None)
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.env["PYTHONWARNINGS"] = "ignore"
        self.env["NO_COLOR"] = "1"
        # the cache's place is the user's choice (environment), never the project's configuration
        self.env["ASYNCMIGRATE_CACHE_DIR"] = str(self.am_cache)

    # ---- setup ----------------------------------------------------------------------
    def assemble(self) -> None:
        order = [name.strip() for name in self.args.corpus.split(",") if name.strip()]
        found = corpus_mod.find_corpora()
        by_kind: dict[str, list] = {}
        for c in found:
            by_kind.setdefault(c.kind, []).append(c)
        chosen = []
        for name in order:
            key = {"backends": "backend", "stdlib": "stdlib", "site-packages": "site-packages"}.get(name, name)
            chosen += by_kind.get(key, [])
        min_lines = self.args.lines or None
        fl = corpus_mod.assemble(min_lines, chosen)
        self.per_corpus = fl.per_corpus
        self.lines = fl.lines
        roots = {c.name: c.root for c in chosen}
        for path, _ in fl.files:
            for name, root in roots.items():
                try:
                    rel = path.relative_to(root)
                except ValueError:
                    continue
                dst = self.tree / name / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dst)
                self.files.append(str(Path(name) / rel))
                break
        self.filelist.write_text("".join(f + "\n" for f in self.files), encoding="utf-8", errors="surrogateescape")
        self.tree.mkdir(parents=True, exist_ok=True)
        self.am_config.write_text(
            "[tool.asyncmigrate]\n"
            "respect-gitignore = false\n",
            encoding="utf-8",
        )

    def touched_file(self) -> str:
        """A mid-sized file of the list: the one changed between runs."""
        sizes = sorted((os.path.getsize(self.tree / f), f) for f in self.files)
        return sizes[len(sizes) // 2][1]

    def touch(self, rel: str, text: str) -> None:
        with open(self.tree / rel, "a", encoding="utf-8") as f:
            f.write(text)

    # ---- tools ----------------------------------------------------------------------
    def am(self, *args: str) -> list[str]:
        return [self.py, "-m", "asyncmigrate", *args]

    def ruff(self) -> Optional[list[str]]:
        exe = Path(self.py).parent / "ruff"
        if exe.exists():
            return [str(exe)]
        found = shutil.which("ruff")
        return [found] if found else None

    def has_module(self, name: str) -> bool:
        return subprocess.run([self.py, "-c", f"import {name}"], capture_output=True).returncode == 0

    def am_has(self, command: str, option: Optional[str] = None) -> bool:
        proc = subprocess.run(self.am(command, "--help"), capture_output=True, text=True, cwd=self.work, env=self.env)
        return proc.returncode == 0 and (option is None or option in proc.stdout)

    def run(self, cmd: Sequence[str], cwd: Optional[Path] = None, prepare: Optional[Callable[[], None]] = None,
            repeat: Optional[int] = None) -> Measurement:
        n = self.args.repeat if repeat is None else repeat
        return best_of(n, lambda: measure(cmd, cwd or self.tree, self.env), prepare)

    def row(self, key: str, label: str) -> Row:
        r = Row(key, label)
        self.rows[key] = r
        return r

    # ---- steps ----------------------------------------------------------------------
    def scan_json(self, m: Measurement) -> str:
        try:
            doc = json.loads(m.stdout)
        except ValueError:
            return f"exit {m.returncode}: {_tail(m.stderr) or 'no JSON'}"
        errors = doc.get("errors", [])
        seen = doc.get("files_scanned", 0) + len({e["path"] for e in errors})
        total = doc["counts"]["total"]["total"]
        text = f"{total} findings in {doc['files_scanned']:,} files, {len(errors)} not analysed"
        if seen < len(self.files):
            text += f" (MISSING {len(self.files) - seen} files)"
        return text

    def step_scan(self) -> None:
        files = self.files
        scan = self.am("scan", "--config", str(self.am_config), "--format", "json", "-q", "-j", str(self.jobs), *files)

        def cold_prepare() -> None:
            shutil.rmtree(self.am_cache, ignore_errors=True)

        r = self.row("cold", "asyncmigrate scan, cold (empty cache)")
        r.m = self.run(scan, prepare=cold_prepare)
        r.output = self.scan_json(r.m)
        if r.m.returncode not in (0, 1, 3):
            r.output = f"CRASHED (exit {r.m.returncode}): {_tail(r.m.stderr)}"
            r.failed = True
        r = self.row("warm", "asyncmigrate scan, warm (nothing changed)")
        r.m = self.run(scan)
        r.output = self.scan_json(r.m)
        info = self.probe()
        if info:
            r.note = f"result cache {'hit' if not info['project_pass'] else 'MISSED: the project pass ran'}"
        # the same with a fixed PYTHONHASHSEED: the result cache's key must not depend on it
        r = self.row("warm-seed", "asyncmigrate scan, warm, PYTHONHASHSEED=0 (diagnostic)")
        env = dict(self.env, PYTHONHASHSEED="0")
        measure(scan, self.tree, env)  # stores a result under this seed
        r.m = best_of(self.args.repeat, lambda: measure(scan, self.tree, env))
        r.output = self.scan_json(r.m)
        rel = self.touched_file()
        r = self.row("touched", "asyncmigrate scan, one file changed")
        counter = [0]

        def touch_prepare() -> None:
            counter[0] += 1
            self.touch(rel, f"\n# changed by bench/run.py ({counter[0]})\n")

        r.m = self.run(scan, prepare=touch_prepare)
        r.output = self.scan_json(r.m)
        r.note = f"changed: {rel}"
        if self.args.compare_ref:
            self.compare_ref(scan)
        # what the run re-analysed, from the API (untimed; one more change so that nothing is cached)
        self.touch(rel, "\n# changed by bench/run.py (verification)\n")
        info = self.probe()
        if info:
            ran = "yes" if info["project_pass"] else "no"
            r.note += f"; re-analysed {info['analysed']} file(s), project pass: {ran}"
            self.touched_ok = info["analysed"] == 1 and info["project_pass"]
        else:
            r.note += "; could not verify"
            self.touched_ok = None

    def compare_ref(self, scan: list[str]) -> None:
        """Cold and warm scans with asyncmigrate at ``--compare-ref`` (its cache goes where that version puts
        it; the tree is the same)."""
        ref = self.args.compare_ref
        code = self.work / "ref"
        code.mkdir(exist_ok=True)
        repo = Path(__file__).resolve().parents[1]
        archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "asyncmigrate"], capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
        env = dict(self.env, PYTHONPATH=str(code))
        old_cache = self.work / "ref-cache"

        def cold_prepare() -> None:
            shutil.rmtree(old_cache, ignore_errors=True)
            shutil.rmtree(self.tree / ".asyncmigrate_cache", ignore_errors=True)

        for key, label, prepare in (("ref-cold", f"asyncmigrate scan at {ref}, cold", cold_prepare),
                                    ("ref-warm", f"asyncmigrate scan at {ref}, warm", None)):
            r = self.row(key, label)
            r.m = best_of(self.args.repeat, lambda: measure(scan, self.tree, env), prepare)
            r.output = self.scan_json(r.m)

    def probe(self) -> Optional[dict]:
        """An untimed run through ``asyncmigrate.api``: files re-analysed, and whether the project pass ran."""
        code = (
            "import json, sys\n"
            "from pathlib import Path\n"
            "from asyncmigrate.api import analyse_paths\n"
            "from asyncmigrate.config import load_config\n"
            "files = Path(sys.argv[1]).read_text(encoding='utf-8', errors='surrogateescape').split('\\n')\n"
            "files = [f for f in files if f]\n"
            "run = analyse_paths(files, load_config(Path(sys.argv[2])), jobs=int(sys.argv[3]))\n"
            "print(json.dumps({'analysed': run.summaries.analysed, 'project_pass': run.analysis is not None}))\n"
        )
        proc = subprocess.run([self.py, "-c", code, str(self.filelist), str(self.am_config), str(self.jobs)],
                              cwd=self.tree, env=self.env, capture_output=True, text=True)
        try:
            return json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(f"probe failed: {_tail(proc.stderr, 3)}", file=sys.stderr)
            return None

    def step_check(self) -> None:
        r = self.row("check", "asyncmigrate check --diff-against, one file changed")
        if not self.am_has("check", "--diff-against"):
            r.na = "asyncmigrate check --diff-against is not available yet"
            return
        if shutil.which("git") is None:
            r.na = "git is not installed"
            return
        git = ["git", "-C", str(self.tree), "-c", "user.name=bench", "-c", "user.email=bench@localhost",
               "-c", "commit.gpgsign=false"]
        # a scratch repository of the copied tree (in the temporary directory, never the project's)
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "bench base"], check=True)
        rel = self.touched_file()
        self.touch(rel, "\n\nasync def _bench_added(db):\n    import time\n    time.sleep(1)\n")
        cmd = self.am("check", "--diff-against", "HEAD", "--config", str(self.am_config), "--format", "json", "-q",
                      "-j", str(self.jobs), *self.files)
        r.m = self.run(cmd)
        r.note = f"changed: {rel}"
        try:
            doc = json.loads(r.m.stdout)
            new = doc.get("new", doc.get("findings", []))
            r.output = f"exit {r.m.returncode}, {len(new) if isinstance(new, list) else new} new finding(s)"
        except ValueError:
            r.output = f"exit {r.m.returncode}: {_tail(r.m.stderr) or _tail(r.m.stdout)}"

    def step_ruff(self) -> None:
        ruff = self.ruff()
        cold, warm = self.row("ruff-cold", "ruff check --select ASYNC --no-cache"), self.row(
            "ruff-warm", "ruff check --select ASYNC, warm cache")
        if ruff is None:
            cold.na = warm.na = "ruff is not installed"
            return
        base = [*ruff, "check", "--isolated", "--select", "ASYNC", "--output-format", "concise", "--exit-zero"]
        cold.m = self.run([*base, "--no-cache", *self.files])
        cold.output = _tail(cold.m.stdout)
        cache = self.work / "ruff-cache"
        warm_cmd = [*base, "--cache-dir", str(cache), *self.files]
        measure(warm_cmd, self.tree, self.env)  # fill the cache
        warm.m = self.run(warm_cmd)
        warm.output = _tail(warm.m.stdout)

    def step_flake8(self) -> None:
        r = self.row("flake8", f"flake8 --select ASYNC -j{self.jobs} (flake8-async)")
        if not self.has_module("flake8") or not self.has_module("flake8_async"):
            r.na = "flake8 / flake8-async are not installed"
            return
        cmd = [self.py, "-m", "flake8", "--isolated", "--select", "ASYNC", "-j", str(self.jobs), "--exit-zero",
               *self.files]
        r.m = self.run(cmd, repeat=self.args.repeat_slow)
        n = len([ln for ln in r.m.stdout.splitlines() if ln.strip()])
        r.output = f"{n} findings"
        if r.m.returncode:
            r.output = f"CRASHED (exit {r.m.returncode}) after {n} findings: {_tail(r.m.stderr)}"
            r.failed = True

    def step_parse(self, parser: str) -> None:
        r = self.row(parser, f"bare {parser} parse of every file, Pool({self.jobs})")
        if not self.has_module(parser):
            r.na = f"{parser} is not installed"
            return
        cmd = [self.py, str(HERE / "parse_only.py"), parser, str(self.filelist), "-j", str(self.jobs)]
        r.m = self.run(cmd, repeat=self.args.repeat_slow if parser == "libcst" else None)
        try:
            doc = json.loads(r.m.stdout.strip().splitlines()[-1])
            r.output = f"{doc['parsed']} parsed, {doc['failed']} failed"
        except (ValueError, IndexError):
            r.output = f"exit {r.m.returncode}: {_tail(r.m.stderr)}"

    def step_fix(self) -> None:
        r = self.row("fix", "asyncmigrate fix --diff fixtures/example_backend")
        src = REPO / "fixtures" / "example_backend"
        if not src.is_dir():
            r.na = "fixtures/example_backend is missing"
            return
        if not self.am_has("fix", "--diff"):
            r.na = "asyncmigrate fix is not available yet"
            return
        dst = self.work / "example_backend"
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", ".asyncmigrate_cache", "*.db"))
        r.m = self.run(self.am("fix", "--diff", "--no-cache", "-q", "."), cwd=dst)
        lines = r.m.stdout.splitlines()
        changed = sum(1 for ln in lines if ln.startswith("+++ "))
        r.output = f"exit {r.m.returncode}, diff of {changed} file(s), {len(lines)} lines"
        if r.m.returncode not in (0, 1):
            r.output += f": {_tail(r.m.stderr)}"

    # ---- targets ----------------------------------------------------------------------
    def judge(self) -> None:
        def wall(key: str) -> Optional[float]:
            row = self.rows.get(key)
            return row.m.wall if row is not None and row.m is not None and not row.failed else None

        def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
            return a / b if a is not None and b else None

        def add(key: str, text: str, value: Optional[float], limit: float, strict: bool = False) -> None:
            row = self.rows.get(key)
            if row is None:  # a step left out (--skip / --only)
                return
            if value is None:
                row.targets.append((f"{text}: n/a", None))
                return
            ok = value < limit if strict else value <= limit
            row.targets.append((f"{text}: {value:.2f}×", ok))

        cold = self.rows.get("cold")
        if cold is not None and (cold.m is None or cold.m.returncode not in (0, 1, 3) or cold.failed):
            cold.targets.append(("scan crashed", False))
        add("cold", "< flake8-async", ratio(wall("cold"), wall("flake8")), 1.0, strict=True)
        add("cold", "≤ 1.3× libcst parse", ratio(wall("cold"), wall("libcst")), 1.3)
        add("warm", "≤ 2× ruff warm", ratio(wall("warm"), wall("ruff-warm")), 2.0)
        if "ref-warm" in self.rows:
            add("warm", "≤ 1× the same scan at --compare-ref", ratio(wall("warm"), wall("ref-warm")), 1.0)
        if "warm-seed" in self.rows:
            add("warm-seed", "≤ 2× ruff warm", ratio(wall("warm-seed"), wall("ruff-warm")), 2.0)
        ok = getattr(self, "touched_ok", None)
        if "touched" in self.rows:
            self.rows["touched"].targets.append(("re-analyses only the changed file + project pass", ok))
        for key in ("cold", "warm", "touched", "check"):
            row = self.rows.get(key)
            if row is not None and row.m is not None:
                mib = row.m.peak_tree_rss / MIB
                label = "peak RSS < 1 GiB" + ("" if self.lines >= 1_000_000 else f" (at {self.lines:,} lines)")
                row.targets.append((f"{label}: {mib:.0f} MiB", mib < 1024))
        fix = self.rows.get("fix")
        if fix is not None:
            if fix.m is None:
                fix.targets.append(("< 10 s: n/a", None))
            else:
                fix.targets.append((f"< 10 s: {fix.m.wall:.1f} s", fix.m.wall < 10 and fix.m.returncode in (0, 1)))

    # ---- the table --------------------------------------------------------------------
    def render(self) -> None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console(width=self.args.width, highlight=False, soft_wrap=False)
        load = os.getloadavg()
        console.print(
            f"asyncmigrate bench: {len(self.files):,} files, {self.lines:,} lines "
            f"({', '.join(f'{k} {v[0]:,}/{v[1]:,}' for k, v in self.per_corpus.items())}); "
            f"-j {self.jobs}, best of {self.args.repeat} (flake8/libcst: {self.args.repeat_slow}); "
            f"{os.cpu_count()} CPUs, load average now {load[0]:.1f}; Python {platform.python_version()}"
        )
        table = Table(show_lines=True)
        table.add_column("step")
        table.add_column("wall s", justify="right")
        table.add_column("CPU s", justify="right")
        table.add_column("peak RSS MiB\ntree (1 proc)", justify="right")
        table.add_column("output")
        table.add_column("targets")
        order = ["cold", "warm", "warm-seed", "touched", "ref-cold", "ref-warm", "check", "ruff-cold", "ruff-warm", "flake8", "libcst", "ast",
                 "fix"]
        for key in order:
            row = self.rows.get(key)
            if row is None:
                continue
            targets = Text()
            for i, (text, ok) in enumerate(row.targets):
                if i:
                    targets.append("\n")
                verdict, style = ("PASS", "green") if ok else ("n/a", "dim") if ok is None else ("FAIL", "bold red")
                targets.append(f"{verdict} ", style=style)
                targets.append(text)
            label = row.label + (f"\n{row.note}" if row.note else "")
            if row.m is None:
                table.add_row(label, "n/a", "n/a", "n/a", row.na, targets)
                continue
            m = row.m
            table.add_row(label, f"{m.wall:.2f}", f"{m.cpu:.1f}",
                          f"{m.peak_tree_rss / MIB:.0f} ({m.max_rss / MIB:.0f})", row.output, targets)
        console.print(table)
        if self.args.keep:
            console.print(f"kept: {self.work}")

    def to_json(self) -> dict:
        return {
            "files": len(self.files),
            "lines": self.lines,
            "per_corpus": self.per_corpus,
            "jobs": self.jobs,
            "cpus": os.cpu_count(),
            "rows": {k: {"label": r.label, "measurement": asdict(r.m) if r.m else None, "output": r.output,
                         "note": r.note, "na": r.na, "targets": r.targets}
                     for k, r in self.rows.items()},
        }


def _count(text: str) -> int:
    return int(float(text.replace("_", "").replace(",", "")))


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller corpus (100,000 lines)")
    ap.add_argument("--lines", type=_count, default=None,
                    help="lines to assemble (default 1,000,000; --quick 100,000; 0 = every file found)")
    ap.add_argument("--corpus", default="stdlib,site-packages,backends",
                    help="corpora in the order they are drawn from (default: stdlib,site-packages,backends; "
                         "backends come from $ASYNCMIGRATE_CORPUS)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="worker processes for every tool (default 2)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per step; the fastest is shown (default 1)")
    ap.add_argument("--repeat-slow", type=int, default=None,
                    help="runs for the slow reference steps, flake8 and libcst (default: --repeat)")
    ap.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary tree")
    ap.add_argument("--compare-ref", default=None, metavar="REF",
                    help="also time cold and warm scans with asyncmigrate at this git ref (same run, same files)")
    ap.add_argument("--width", type=int, default=160, help="table width (default 160)")
    ap.add_argument("--skip", default="",
                    help="comma-separated steps to leave out: scan, ruff, flake8, libcst, ast, check, fix "
                         "(e.g. --skip flake8 while iterating; their rows and ratios show n/a)")
    ap.add_argument("--only", default="",
                    help="comma-separated steps to run, the others left out (same names as --skip)")
    args = ap.parse_args(argv)
    if args.lines is None:
        args.lines = 100_000 if args.quick else 1_000_000
    if args.repeat_slow is None:
        args.repeat_slow = args.repeat
    bench = Bench(args)
    try:
        bench.assemble()
        if not bench.files:
            print("no Python files found", file=sys.stderr)
            return 2
        steps: list[tuple[str, Callable[[], None]]] = [
            ("scan", bench.step_scan),
            ("ruff", bench.step_ruff),
            ("flake8", bench.step_flake8),
            ("libcst", lambda: bench.step_parse("libcst")),
            ("ast", lambda: bench.step_parse("ast")),
            ("check", bench.step_check),
            ("fix", bench.step_fix),
        ]
        names = [name for name, _ in steps]
        skip = {n.strip() for n in args.skip.split(",") if n.strip()}
        only = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = (skip | only) - set(names)
        if unknown:
            print(f"unknown step(s): {', '.join(sorted(unknown))} (steps: {', '.join(names)})", file=sys.stderr)
            return 2
        for name, step in steps:
            if name in skip or (only and name not in only):
                continue
            print(f"… {name}", file=sys.stderr, flush=True)
            step()
        bench.judge()
        bench.render()
        if args.json:
            args.json.write_text(json.dumps(bench.to_json(), indent=2, default=str), encoding="utf-8")
    finally:
        if not args.keep:
            shutil.rmtree(bench.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
