"""bench/recall.py's own logic on made-up trees: the file draw, label loading, one-to-one matching,
the metrics, and one real scan of a tiny backend (the script's paths must match the scan's)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "recall.py"


@pytest.fixture(scope="module")
def recall():
    spec = importlib.util.spec_from_file_location("bench_recall", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_recall"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------ the draw


def test_candidates_are_parsable_sessionish_non_test_files(recall, tmp_path):
    write(tmp_path, {
        "app/crud.py": "def f(db):\n    return db.query(X).all()\n",
        "app/util.py": "def g():\n    return 1\n",                      # nothing session-like
        "app/broken.py": "def h(db:\n",                                 # does not parse
        "app/tests/test_crud.py": "def test(db):\n    db.commit()\n",    # a test file
        "conftest.py": "import sqlalchemy\nSession = 1\n",               # a test file too
        ".venv/lib/x.py": "db = 1\n",                                    # skipped directory
    })
    assert recall.candidates(tmp_path) == ["app/crud.py"]
    assert recall.candidates(tmp_path, tests=True) == ["app/tests/test_crud.py", "conftest.py"]


def test_draw_is_reproducible_and_tops_up_with_test_files(recall, tmp_path):
    write(tmp_path, {f"app/m{i}.py": "db = None\n" for i in range(30)})
    a = recall.draw(tmp_path, "o/r", 12, 10)
    assert a == recall.draw(tmp_path, "o/r", 12, 10)
    assert len(a) == 10 and len(set(a)) == 10 and a == sorted(a)
    # another seed or another repository name gives another draw (30 choose 10: a clash is negligible)
    assert recall.draw(tmp_path, "o/r", 13, 10) != a
    assert recall.draw(tmp_path, "o/other", 12, 10) != a

    small = tmp_path / "small"
    write(small, {"app/a.py": "db = 1\n", "app/b.py": "db = 2\n", "tests/test_a.py": "db = 3\n",
                  "tests/test_b.py": "db = 4\n", "tests/test_c.py": "x = 4\n"})
    got = recall.draw(small, "o/s", 12, 3)
    assert got[:2] == ["app/a.py", "app/b.py"]
    assert got[2] in ("tests/test_a.py", "tests/test_b.py")
    assert recall.draw(small, "o/s", 12, 10) == ["app/a.py", "app/b.py", "tests/test_a.py", "tests/test_b.py"]


def test_check_draw_compares_a_label_file_with_its_draw(recall, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    write(corpus / "o+r", {f"app/m{i}.py": "db = None\n" for i in range(15)})
    files = recall.draw(corpus / "o+r", "o/r", 7, 3)
    labels = tmp_path / "labels"
    labels.mkdir()
    doc = 'repo = "o/r"\nseed = 7\nk = 3\n' + "".join(f'[[file]]\npath = "{f}"\nuses = []\n' for f in files)
    (labels / "o+r.toml").write_text(doc, encoding="utf-8")
    assert recall.main(["--labels", str(labels), "--corpus", str(corpus), "--check-draw"]) == 0
    assert "o/r: same files as the draw" in capsys.readouterr().out
    other = next(f"app/m{i}.py" for i in range(15) if f"app/m{i}.py" not in files)
    (labels / "o+r.toml").write_text(doc.replace(files[0], other), encoding="utf-8")
    assert recall.main(["--labels", str(labels), "--corpus", str(corpus), "--check-draw"]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out and other in out and files[0] in out


# ------------------------------------------------------------------ labels


LABELS = '''
repo = "o/r"
commit = "abc"
held_out = false

[[file]]
path = "app/crud.py"
uses = [
  { line = 3, category = "session-dependency" },
  { line = 4, category = "query" },
  { line = 5, category = "session-method", note = "add" },
  { line = 6, category = "session-method", note = "commit" },
]
not_a_use = [ { line = 9, note = "a set's add" } ]

[[file]]
path = "app/empty.py"
uses = []
'''


def test_load_labels(recall, tmp_path):
    p = tmp_path / "o+r.toml"
    p.write_text(LABELS, encoding="utf-8")
    rl = recall.load_labels(p)
    assert (rl.repo, rl.commit, rl.held_out, rl.dirname) == ("o/r", "abc", False, "o+r")
    assert rl.files == ["app/crud.py", "app/empty.py"]
    assert [(lb.line, lb.category) for lb in rl.labels] == [
        (3, "session-dependency"), (4, "query"), (5, "session-method"), (6, "session-method")]
    assert rl.not_a_use == {("app/crud.py", 9)}
    assert (rl.seed, rl.k) == (12, 10)  # the defaults when a label file does not say

    p.write_text(LABELS.replace('"query"', '"queries"'), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown category"):
        recall.load_labels(p)


def test_hits_keep_labelled_categories_and_strip_a_prefix(recall):
    doc = {"findings": [
        {"path": "./app/crud.py", "line": 4, "end_line": 4, "category": "query", "code": "ASM110"},
        {"path": "o+r/app/crud.py", "line": 5, "end_line": 5, "category": "session-method"},
        {"path": "app/crud.py", "line": 7, "end_line": 7, "category": "sleep"},
    ]}
    hits = recall.hits_from_json(doc, "o+r/")
    assert [(h.path, h.line, h.category) for h in hits] == [
        ("app/crud.py", 4, "query"), ("app/crud.py", 5, "session-method")]


# ------------------------------------------------------------------ matching and metrics


def L(recall, line, cat, path="a.py"):
    return recall.Label(path, line, cat)


def H(recall, line, cat, end=None, path="a.py"):
    return recall.Hit(path, line, end or line, cat)


def test_match_counts_found_missed_and_false_positives(recall):
    labels = [L(recall, 3, "query"), L(recall, 5, "session-method"), L(recall, 8, "engine")]
    hits = [H(recall, 3, "query"),
            H(recall, 5, "query"),                 # right line, wrong category: a false positive
            H(recall, 9, "session-method"),        # a line nobody labelled, checked by hand
            H(recall, 12, "engine"),               # unreviewed
            H(recall, 3, "query", path="b.py")]    # a file outside the draw: ignored
    m = recall.match(labels, hits, ["a.py"], {("a.py", 9)})
    assert [lb.line for lb in m.found] == [3]
    assert [lb.line for lb in m.missed] == [5, 8]
    assert [h.line for h in m.matched] == [3]
    assert sorted((h.line, h.category, ok) for h, ok in m.false) == [
        (5, "query", False), (9, "session-method", True), (12, "engine", False)]


def test_match_is_one_to_one_exact_lines_first(recall):
    # a chain spanning lines 10-12 found once; two labels inside it: only one can be found
    labels = [L(recall, 10, "query"), L(recall, 11, "query")]
    m = recall.match(labels, [H(recall, 10, "query", end=12)], ["a.py"])
    assert [lb.line for lb in m.found] == [10] and [lb.line for lb in m.missed] == [11]
    # the exact-line finding goes to its own label even when a spanning finding comes first
    labels = [L(recall, 20, "session-method"), L(recall, 21, "session-method")]
    hits = [H(recall, 20, "session-method", end=21), H(recall, 21, "session-method")]
    m = recall.match(labels, hits, ["a.py"])
    assert len(m.found) == 2 and not m.missed and not m.false
    # a label inside a span, with no exact finding, is found by containment
    m = recall.match([L(recall, 31, "query")], [H(recall, 30, "query", end=33)], ["a.py"])
    assert len(m.found) == 1 and not m.false
    # two findings on one line for one label: the second is a false positive
    m = recall.match([L(recall, 40, "session-method")], [H(recall, 40, "session-method")] * 2, ["a.py"])
    assert len(m.found) == 1 and len(m.false) == 1


def test_ratio(recall):
    assert recall.ratio(0, 0) == "n/a"
    assert recall.ratio(1, 3) == "33.3%"
    assert recall.ratio(5, 5) == "100.0%"


def test_main_with_scan_json_prints_the_table_and_lists(recall, tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "o+r.toml").write_text(LABELS, encoding="utf-8")
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "o+r.json").write_text(json.dumps({"findings": [
        {"path": "app/crud.py", "line": 3, "end_line": 3, "category": "session-dependency", "code": "ASM102"},
        {"path": "app/crud.py", "line": 4, "end_line": 4, "category": "query", "code": "ASM110",
         "evidence": "name-only"},
        {"path": "app/crud.py", "line": 6, "end_line": 6, "category": "session-method", "code": "ASM120"},
        {"path": "app/crud.py", "line": 9, "end_line": 9, "category": "session-method", "code": "ASM121"},
        {"path": "app/other.py", "line": 1, "end_line": 1, "category": "query", "code": "ASM110"},
    ]}), encoding="utf-8")
    assert recall.main(["--labels", str(labels), "--scan-json", str(scans), "--misses", "--false-positives"]) == 0
    out = capsys.readouterr().out
    # 4 labels, 3 found; 4 findings in labelled files, 3 true, one of them (the query) by name only
    assert "| o/r       |      4 |     3 |  75.0% |        4 |    3 |     75.0% |                 1 |" in out
    assert "| session-method     |      2 |     1 |  50.0% |        2 |    1 |     50.0% |                 0 |" in out
    assert "| query              |      1 |     1 | 100.0% |        1 |    1 |    100.0% |                 1 |" in out
    assert "o+r/app/crud.py:5 session-method  add" in out
    assert "o+r/app/crud.py:9 session-method ASM121 [] confirmed" in out
    assert "other.py" not in out


def test_main_without_corpus_says_so(recall, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(recall.CORPUS_ENV, raising=False)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "o+r.toml").write_text(LABELS, encoding="utf-8")
    assert recall.main(["--labels", str(labels)]) == 1
    assert "no labelled repository found" in capsys.readouterr().out


# ------------------------------------------------------------------ one real scan


BACKEND = {
    "app/__init__.py": "",
    "app/db.py": '''from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine("sqlite://")
SessionLocal = sessionmaker(bind=engine)


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()
''',
    "app/routes.py": '''from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

from app.db import get_db

app = FastAPI()
seen = set()


@app.get("/users")
async def users(db: Session = Depends(get_db)):
    seen.add(1)
    return db.query(User).all()
''',
}

BACKEND_LABELS = '''
repo = "made/up"
commit = ""

[[file]]
path = "app/db.py"
uses = [
  { line = 4, category = "engine" },
  { line = 5, category = "engine" },
  { line = 9, category = "session-factory" },
  { line = 13, category = "session-method" },
]

[[file]]
path = "app/routes.py"
uses = [
  { line = 11, category = "session-dependency" },
  { line = 13, category = "query" },
]
not_a_use = [ { line = 12, note = "a set" } ]
'''


def test_a_real_scan_of_a_tiny_backend_matches_its_labels(recall, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    write(corpus / "made+up", BACKEND)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "made+up.toml").write_text(BACKEND_LABELS, encoding="utf-8")
    assert recall.main(["--labels", str(labels), "--corpus", str(corpus), "--misses", "--false-positives"]) == 0
    out = capsys.readouterr().out
    assert "| made/up   |      6 |     6 | 100.0% |        6 |    6 |    100.0% |                 0 |" in out
    assert "Misses (0)" in out and "False positives (0)" in out
