"""The summary cache and the result cache: what a run re-analyses, and that cached runs agree with cold ones."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from asyncmigrate.analysis.orm import orm_index
from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from asyncmigrate.runner import Cache, discover, summarise

SOURCE = '''
import time
from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session, relationship

router = APIRouter()


def get_db():
    yield None


@router.get("/items/{n}")
async def read_item(n: int, db: Session = Depends(get_db)):
    time.sleep(1)
    return db.query(Item).filter(Item.id == n).first()


class Item:
    children = relationship("Child")
'''


def _tree(root: Path, files: int = 60) -> Config:
    pkg = root / "app"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for i in range(files):  # enough files for the worker pool
        (pkg / f"m{i}.py").write_text(SOURCE.replace("read_item", f"read_item_{i}"))
    return Config(root=str(root), cache_dir=str(root / ".cache"))


def _dump(run):
    r = run.result
    return ([(f.path, f.code, f.span, f.severity, f.fingerprint, f.chain) for f in r.findings],
            [(e.path, e.kind, e.message) for e in r.errors], r.files)


def test_cached_runs_agree_with_a_cold_run(tmp_path, monkeypatch):
    config = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    cold = analyse_paths(["app"], config, use_cache=False, jobs=2)
    first = analyse_paths(["app"], config, jobs=2)
    assert first.summaries.analysed == 61
    warm = analyse_paths(["app"], config, jobs=2)
    assert warm.summaries.analysed == 0 and warm.analysis is None  # result cache
    (tmp_path / "app" / "m3.py").write_text(SOURCE + "\n# changed\n")
    (tmp_path / "app" / "m3.py").write_text(SOURCE.replace("read_item", "read_item_3"))  # back as it was
    again = analyse_paths(["app"], config, jobs=2, need_analysis=True)
    assert again.summaries.analysed == 0
    assert _dump(cold) == _dump(first) == _dump(warm) == _dump(again)
    assert [s for s in cold.summaries.summaries] == [s for s in again.summaries.summaries]


def test_the_other_side_reuses_and_keeps_the_cache(tmp_path, monkeypatch):
    """``check --diff-against``: the ref's files equal to cached ones are not parsed again, and the
    work tree's next scan still finds every one of its summaries."""
    config = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    analyse_paths(["app"], config, jobs=2)
    discovery = discover(["app"], config)
    other = {s.path: Path(s.fs_path).read_bytes() for s in discovery.sources}
    other["app/m5.py"] = other["app/m5.py"] + b"\nimport os\n"
    side = summarise(discovery, config, jobs=2, overrides=other, keep_others=True)
    assert side.analysed == 1
    assert any(s.path == "app/m5.py" and "os" in dict(s.imports) for s in side.summaries)
    # the work tree, unchanged: nothing analysed, and still served without reading the summaries
    work = summarise(discover(["app"], config), config, jobs=2)
    assert work.analysed == 0 and work._load is not None
    # the other side again: everything from the cache now
    assert summarise(discovery, config, jobs=2, overrides=other, keep_others=True).analysed == 0


def test_a_damaged_cache_entry_is_a_miss(tmp_path, monkeypatch):
    config = _tree(tmp_path, files=3)
    monkeypatch.chdir(tmp_path)
    analyse_paths(["app"], config)
    cache = Cache(Path(config.root, config.cache_dir), config.analysis_key())
    src = discover(["app"], config).sources[1]
    digest = next(k[2] for k in (cache._read_entries() or cache.entries) if k[0] == src.path)
    cache.entries[(src.path, src.module, digest)] = b"not a pickle"
    assert cache.get(src, digest) is None


def test_a_project_is_freed_with_its_analysis(tmp_path, monkeypatch):
    """Nothing global keeps an analysed project alive (``check --diff-against`` runs two, one after the other)."""
    config = _tree(tmp_path, files=3)
    monkeypatch.chdir(tmp_path)
    run = analyse_paths(["app"], config, use_cache=False, need_analysis=True)
    assert run.result.findings
    assert orm_index(run.analysis.project).relationship("app.m0:Item", "children") is not None
    project = weakref.ref(run.analysis.project)
    del run
    gc.collect()
    assert project() is None


def _count_reads(monkeypatch) -> list[str]:
    from asyncmigrate import runner

    reads: list[str] = []
    real = runner._read

    def counting(src, max_size):
        reads.append(src.path)
        return real(src, max_size)

    monkeypatch.setattr(runner, "_read", counting)
    return reads


def test_unchanged_files_are_not_read_again(tmp_path, monkeypatch):
    """A file whose size, mtime, ctime and inode are those recorded keeps its digest without being read."""
    from asyncmigrate import runner

    config = _tree(tmp_path, files=8)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "_SETTLED_NS", -10**12)  # every file counts as settled (no waiting in a test)
    analyse_paths(["app"], config, jobs=1)
    reads = _count_reads(monkeypatch)
    warm = analyse_paths(["app"], config, jobs=1)
    assert reads == [] and warm.summaries.analysed == 0


def test_a_rewrite_that_keeps_size_and_mtime_is_still_seen(tmp_path, monkeypatch):
    """Same size, mtime put back with ``os.utime``: the ctime (which ``utime`` cannot set) still differs."""
    import os

    from asyncmigrate import runner

    config = _tree(tmp_path, files=8)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "_SETTLED_NS", -10**12)
    first = analyse_paths(["app"], config, jobs=1)
    assert any(f.path == "app/m3.py" and f.code == "ASM130" for f in first.result.findings)
    target = tmp_path / "app" / "m3.py"
    st = target.stat()
    target.write_text(target.read_text().replace("time.sleep(1)", "time.sleep(2)"))  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    reads = _count_reads(monkeypatch)
    again = analyse_paths(["app"], config, jobs=1)
    assert "app/m3.py" in reads and again.summaries.analysed == 1
    assert [f.snippet for f in again.result.findings if f.path == "app/m3.py" and f.code == "ASM130"] == ["time.sleep(2)"]


def test_files_changed_just_now_are_not_recorded(tmp_path, monkeypatch):
    """Within the settling time a file is always read: a second write in the same clock tick cannot hide."""
    config = _tree(tmp_path, files=8)
    monkeypatch.chdir(tmp_path)
    analyse_paths(["app"], config, jobs=1)  # the files were written a moment ago
    reads = _count_reads(monkeypatch)
    analyse_paths(["app"], config, jobs=1)
    assert len(reads) == 9
