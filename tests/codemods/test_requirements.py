"""requirements.py: drivers and ``sqlalchemy[asyncio]`` in requirements files and pyproject.toml, edited as text."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from asyncmigrate.codemods.requirements import normalise, requirement_specs, update_requirements

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = {"aiosqlite", "asyncpg"}


def tree(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return tmp_path


def new_texts(root: Path, drivers: set[str] = DRIVERS, warnings: list[str] | None = None) -> dict[str, str]:
    """Run the update, check it is a fixed point, and return ``{relative path: new text}``."""
    changes = update_requirements(root, drivers, warnings=warnings)
    for path, (old, new) in changes.items():
        assert path.read_text() == old  # nothing written
        assert old != new
        path.write_text(new)
    assert update_requirements(root, drivers) == {}  # a second run changes nothing
    return {str(p.relative_to(root)): new for p, (_, new) in changes.items()}


def test_example_backend_requirements(tmp_path: Path) -> None:
    """The example backend: the extra on sqlalchemy, the drivers appended with floors, order kept."""
    root = tree(tmp_path, {"requirements.txt": (ROOT / "fixtures/example_backend/requirements.txt").read_text()})
    assert new_texts(root) == {"requirements.txt": (
        "fastapi>=0.110\n"
        "uvicorn[standard]>=0.29\n"
        "sqlalchemy[asyncio]>=2.0\n"
        "psycopg2-binary>=2.9\n"
        "pydantic>=2.5\n"
        "httpx>=0.27\n"
        "pytest>=8\n"
        "aiosqlite>=0.20\n"
        "asyncpg>=0.29\n"
    )}


def test_present_in_any_spelling_is_not_added_again(tmp_path: Path) -> None:
    root = tree(tmp_path, {"requirements.txt": (
        "# runtime\n"
        "SQLAlchemy[mypy]==2.0.30  # pinned for the ORM\n"
        "AsyncPG==0.30.0\n"
        "--index-url https://pypi.org/simple\n"
        "AioSQLite ; python_version >= '3.10'\n"
    )})
    assert new_texts(root) == {"requirements.txt": (
        "# runtime\n"
        "SQLAlchemy[mypy,asyncio]==2.0.30  # pinned for the ORM\n"
        "AsyncPG==0.30.0\n"
        "--index-url https://pypi.org/simple\n"
        "AioSQLite ; python_version >= '3.10'\n"
    )}


def test_already_complete_is_left_alone(tmp_path: Path) -> None:
    root = tree(tmp_path, {"requirements.txt": "sqlalchemy[asyncio]>=2.0\naiosqlite\nasyncpg>=0.29\n"})
    assert update_requirements(root, DRIVERS) == {}


def test_included_file_gets_no_second_copy(tmp_path: Path) -> None:
    """requirements-dev.txt pulls requirements.txt in with ``-r``: only the latter gets the drivers."""
    root = tree(tmp_path, {
        "requirements.txt": "fastapi\nsqlalchemy>=2\n",
        "requirements-dev.txt": "-r requirements.txt\npytest\n",
    })
    assert new_texts(root) == {"requirements.txt": "fastapi\nsqlalchemy[asyncio]>=2\naiosqlite>=0.20\nasyncpg>=0.29\n"}


def test_requirements_directory(tmp_path: Path) -> None:
    root = tree(tmp_path, {"requirements/base.txt": "sqlalchemy~=2.0\n", "requirements/dev.txt": "-r base.txt\nruff\n"})
    assert new_texts(root, {"asyncpg"}) == {"requirements/base.txt": "sqlalchemy[asyncio]~=2.0\nasyncpg>=0.29\n"}


def test_sqlmodel_only_gets_the_extra_line(tmp_path: Path) -> None:
    root = tree(tmp_path, {"requirements.txt": "sqlmodel>=0.0.14\n"})
    assert new_texts(root, {"aiosqlite"}) == {
        "requirements.txt": "sqlmodel>=0.0.14\nsqlalchemy[asyncio]\naiosqlite>=0.20\n"
    }


def test_no_sqlalchemy_listed_uses_requirements_txt(tmp_path: Path) -> None:
    root = tree(tmp_path, {"requirements.txt": "fastapi", "requirements-test.txt": "pytest\n"})
    assert new_texts(root, {"asyncpg"}) == {"requirements.txt": "fastapi\nasyncpg>=0.29\n"}


def test_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    root = tree(tmp_path, {"requirements.txt": b"fastapi\r\nsqlalchemy>=2.0"})
    changes = update_requirements(root, {"aiosqlite"})
    assert [new for _, new in changes.values()] == ["fastapi\r\nsqlalchemy[asyncio]>=2.0\r\naiosqlite>=0.20\r\n"]


def test_psycopg_driver_and_unknown_driver() -> None:
    warnings: list[str] = []
    assert requirement_specs({"psycopg", "asyncpg", "odbc"}, warnings) == [
        ("asyncpg", "asyncpg>=0.29"), ("psycopg", "psycopg[binary]>=3.1")]
    assert warnings == ["no requirement is known for the async driver 'odbc'; not added"]


@pytest.mark.parametrize(
    ("name", "normal"),
    [("Flask_SQLAlchemy", "flask-sqlalchemy"), ("zope.interface", "zope-interface"), ("AsyncPG", "asyncpg")],
)
def test_normalise(name: str, normal: str) -> None:
    assert normalise(name) == normal


PEP621 = """\
[build-system]
requires = ["setuptools>=68"]

[project]
name = "shop"
dependencies = [
    "fastapi>=0.110",
    "SQLAlchemy>=2.0",  # the ORM
    "psycopg2-binary>=2.9"  # sync driver, kept for the transition
]

[project.optional-dependencies]
test = ["pytest", "aiosqlite"]
"""


def test_pyproject_multiline_array(tmp_path: Path) -> None:
    """Comments kept, a comma added after the old last item, new items in the array's indentation."""
    root = tree(tmp_path, {"pyproject.toml": PEP621})
    new = new_texts(root)["pyproject.toml"]
    assert new == PEP621.replace(
        '    "SQLAlchemy>=2.0",  # the ORM\n'
        '    "psycopg2-binary>=2.9"  # sync driver, kept for the transition\n',
        '    "SQLAlchemy[asyncio]>=2.0",  # the ORM\n'
        '    "psycopg2-binary>=2.9",  # sync driver, kept for the transition\n'
        '    "aiosqlite>=0.20",\n'
        '    "asyncpg>=0.29",\n',
    )
    assert tomllib.loads(new)["project"]["optional-dependencies"] == {"test": ["pytest", "aiosqlite"]}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("dependencies = ['sqlalchemy[mypy]>=2', 'asyncpg']",
         "dependencies = ['sqlalchemy[mypy,asyncio]>=2', 'asyncpg', 'aiosqlite>=0.20']"),
        ('dependencies = ["sqlalchemy", "fastapi",]',
         'dependencies = ["sqlalchemy[asyncio]", "fastapi", "aiosqlite>=0.20", "asyncpg>=0.29",]'),
        ('dependencies = ["sqlalchemy>=2",\n    "fastapi"]',
         'dependencies = ["sqlalchemy[asyncio]>=2",\n    "fastapi", "aiosqlite>=0.20", "asyncpg>=0.29"]'),
    ],
    ids=["single-line", "trailing-comma", "bracket-on-last-item-line"],
)
def test_pyproject_other_array_layouts(tmp_path: Path, before: str, after: str) -> None:
    root = tree(tmp_path, {"pyproject.toml": f'[project]\nname = "x"\n{before}\n'})
    assert new_texts(root) == {"pyproject.toml": f'[project]\nname = "x"\n{after}\n'}


def test_pyproject_without_sqlalchemy_is_left_alone(tmp_path: Path) -> None:
    root = tree(tmp_path, {"pyproject.toml": '[project]\nname = "tool"\ndependencies = ["click"]\n'})
    assert update_requirements(root, DRIVERS) == {}


POETRY = """\
[tool.poetry]
name = "shop"

[tool.poetry.dependencies]
python = "^3.11"
SQLAlchemy = "^2.0"   # the ORM
fastapi = { version = "^0.110", extras = ["all"] }

[tool.poetry.group.dev.dependencies]
pytest = "^8"
"""


def test_poetry_table(tmp_path: Path) -> None:
    root = tree(tmp_path, {"pyproject.toml": POETRY})
    new = new_texts(root, {"asyncpg", "psycopg"})["pyproject.toml"]
    assert new == POETRY.replace(
        'SQLAlchemy = "^2.0"   # the ORM\nfastapi = { version = "^0.110", extras = ["all"] }\n',
        'SQLAlchemy = { version = "^2.0", extras = ["asyncio"] }   # the ORM\n'
        'fastapi = { version = "^0.110", extras = ["all"] }\n'
        'asyncpg = ">=0.29"\n'
        'psycopg = { version = ">=3.1", extras = ["binary"] }\n',
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('sqlalchemy = { version = "^2.0" }', 'sqlalchemy = { version = "^2.0", extras = ["asyncio"] }'),
        ('sqlalchemy = { version = "^2.0", extras = ["mypy"] }',
         'sqlalchemy = { version = "^2.0", extras = ["mypy", "asyncio"] }'),
    ],
)
def test_poetry_inline_tables(tmp_path: Path, line: str, expected: str) -> None:
    root = tree(tmp_path, {"pyproject.toml": f"[tool.poetry.dependencies]\n{line}\naiosqlite = '*'\n"})
    expected_text = f"[tool.poetry.dependencies]\n{expected}\naiosqlite = '*'\n"
    assert new_texts(root, {"aiosqlite"}) == {"pyproject.toml": expected_text}


def test_unhandled_pyproject_layout_is_reported(tmp_path: Path) -> None:
    """A dotted-key ``project.dependencies`` is valid TOML this edit does not handle: reported, not guessed."""
    text = 'project.name = "x"\nproject.dependencies = ["sqlalchemy"]\n'
    root = tree(tmp_path, {"pyproject.toml": text})
    warnings: list[str] = []
    assert update_requirements(root, {"asyncpg"}, warnings=warnings) == {}
    assert warnings == ["pyproject.toml [project].dependencies has a layout this edit does not handle; left alone "
                        "(add: sqlalchemy[asyncio], asyncpg>=0.29)"]


def test_broken_pyproject_is_reported(tmp_path: Path) -> None:
    root = tree(tmp_path, {"pyproject.toml": "[project\n", "requirements.txt": "sqlalchemy\n"})
    warnings: list[str] = []
    changes = update_requirements(root, {"asyncpg"}, warnings=warnings)
    assert [p.name for p in changes] == ["requirements.txt"]
    assert len(warnings) == 1 and warnings[0].startswith("pyproject.toml does not parse")


def test_pip_compile_sources_are_edited_not_their_outputs(tmp_path: Path) -> None:
    """requirements.txt compiled from requirements.in: the .in changes, the .txt is left for pip-compile."""
    compiled = "# generated by pip-compile\nsqlalchemy==2.0.30\n    # via -r requirements.in\n"
    root = tree(tmp_path, {"requirements.in": "fastapi\nsqlalchemy>=2.0\n", "requirements.txt": compiled})
    warnings: list[str] = []
    assert new_texts(root, {"asyncpg"}, warnings) == {
        "requirements.in": "fastapi\nsqlalchemy[asyncio]>=2.0\nasyncpg>=0.29\n"
    }
    assert warnings == ["requirements.txt is compiled from requirements.in; regenerate it after this change"]


def test_hash_pinned_file_is_reported_not_edited(tmp_path: Path) -> None:
    text = "sqlalchemy==2.0.30 \\\n    --hash=sha256:0123abcd\n"
    root = tree(tmp_path, {"requirements.txt": text})
    warnings: list[str] = []
    assert update_requirements(root, {"asyncpg"}, warnings=warnings) == {}
    assert warnings == ["requirements.txt pins hashes; add the async drivers and sqlalchemy[asyncio] where it is "
                        "compiled from, then regenerate it"]


def test_sqlalchemy_pinned_below_2_is_raised_to_2_and_reported(tmp_path):
    """The migrated code needs SQLAlchemy 2.0 (async_sessionmaker); a 1.x pin cannot stay."""
    from asyncmigrate.codemods.requirements import update_requirements

    (tmp_path / "requirements.txt").write_text("SQLAlchemy==1.3.19\nsqlalchemy-utils==0.36.8\npyjwt==1.7.1")
    notes: list[str] = []
    changed = update_requirements(tmp_path, {"asyncpg"}, warnings=notes)
    new = changed[tmp_path / "requirements.txt"][1]
    assert new.splitlines() == ["SQLAlchemy[asyncio]>=2.0", "sqlalchemy-utils==0.36.8", "pyjwt==1.7.1", "asyncpg>=0.29"]
    assert any("below 2.0" in n for n in notes)


def test_sqlalchemy_2_pins_and_markers_are_kept(tmp_path):
    from asyncmigrate.codemods.requirements import update_requirements

    (tmp_path / "requirements.txt").write_text("sqlalchemy==2.0.36 ; python_version >= '3.9'\n")
    notes: list[str] = []
    new = update_requirements(tmp_path, set(), warnings=notes)[tmp_path / "requirements.txt"][1]
    assert new == "sqlalchemy[asyncio]==2.0.36 ; python_version >= '3.9'\n"
    assert notes == []


def test_the_generated_url_helper_adds_no_drivers_on_a_second_run(tmp_path: Path, monkeypatch) -> None:
    """``fix`` emits ``_async_database_url``, which names every driver; the next run must not read it as the
    project's databases (found on Netflix/dispatch: the second run added aiomysql and aiosqlite)."""
    import subprocess
    import sys

    root = tree(tmp_path, {
        "requirements.txt": "fastapi\nsqlalchemy>=2.0\npsycopg2-binary\n",
        "app/__init__.py": "",
        "app/database.py": ("import os\n\nfrom sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n\n"
                            "engine = create_engine(os.environ['DATABASE_URL'])\n"
                            "SessionLocal = sessionmaker(bind=engine)\n\n\n"
                            "def get_db():\n    db = SessionLocal()\n    try:\n        yield db\n    finally:\n"
                            "        db.close()\n"),
        "app/main.py": ("from fastapi import Depends, FastAPI\nfrom sqlalchemy.orm import Session\n\n"
                        "from app.database import get_db\n\napp = FastAPI()\n\n\n@app.get('/')\n"
                        "async def root(db: Session = Depends(get_db)):\n    db.commit()\n    return {}\n"),
    })
    run = [sys.executable, "-m", "asyncmigrate", "fix", "--no-cache", "-q", "."]
    first = subprocess.run(run + ["--write"], cwd=root, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "_async_database_url" in (root / "app" / "database.py").read_text()
    requirements = (root / "requirements.txt").read_text()
    assert "asyncpg" in requirements and "aiomysql" not in requirements and "aiosqlite" not in requirements
    # a second run only updates requirements when it changes code (dispatch's did): ask for its drivers directly
    from asyncmigrate.config import Config
    from asyncmigrate.fix import _drivers, run_fix

    monkeypatch.chdir(root)
    again = run_fix(["."], Config(root=str(root)), root=root, use_cache=False, jobs=1)
    assert again.changes == []
    assert _drivers(root, again.plan) == {"asyncpg"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # caret, tilde, exact, wildcard and ranges that exclude 2.0 are raised, with the extra
        ('SQLAlchemy = "^1.4.36"', 'SQLAlchemy = { version = ">=2.0", extras = ["asyncio"] }'),
        ('sqlalchemy = "~1.4"', 'sqlalchemy = { version = ">=2.0", extras = ["asyncio"] }'),
        ('sqlalchemy = "1.4.54"', 'sqlalchemy = { version = ">=2.0", extras = ["asyncio"] }'),
        ('sqlalchemy = "1.4.*"', 'sqlalchemy = { version = ">=2.0", extras = ["asyncio"] }'),
        ('sqlalchemy = ">=1.3, <2.0"', 'sqlalchemy = { version = ">=2.0", extras = ["asyncio"] }'),
        ('sqlalchemy = { version = "^1.4", extras = ["mypy"] }',
         'sqlalchemy = { version = ">=2.0", extras = ["mypy", "asyncio"] }'),
        ('sqlalchemy = { version = "^1.4", extras = ["asyncio"] }', 'sqlalchemy = { version = ">=2.0", extras = ["asyncio"] }'),
        # constraints that can select 2.0 keep their version
        ('sqlalchemy = ">=1.4"', 'sqlalchemy = { version = ">=1.4", extras = ["asyncio"] }'),
        ('sqlalchemy = "^1.4 || ^2.0"', 'sqlalchemy = { version = "^1.4 || ^2.0", extras = ["asyncio"] }'),
        ('sqlalchemy = "*"', 'sqlalchemy = { version = "*", extras = ["asyncio"] }'),
    ],
)
def test_poetry_pins_below_2_are_raised(tmp_path: Path, line: str, expected: str) -> None:
    root = tree(tmp_path, {"pyproject.toml": f"[tool.poetry.dependencies]\n{line}\naiosqlite = '*'\n"})
    warnings: list[str] = []
    assert new_texts(root, {"aiosqlite"}, warnings) == {
        "pyproject.toml": f"[tool.poetry.dependencies]\n{expected}\naiosqlite = '*'\n"}
    raised = '">=2.0"' in expected and '">=2.0"' not in line
    assert any("pins SQLAlchemy below 2.0" in w for w in warnings) == raised


@pytest.mark.parametrize(("files", "declares"), [
    ({"requirements.txt": "SQLAlchemy>=2.0.1\n"}, True),
    ({"pyproject.toml": '[tool.poetry.dependencies]\nSQLAlchemy = "^2.0"\n'}, True),
    ({"pyproject.toml": '[project]\ndependencies = ["sqlalchemy[asyncio]==2.0.30"]\n'}, True),
    ({"requirements.txt": "SQLAlchemy==1.4.54\nsqlalchemy-utils>=2.0\n"}, False),
    ({"pyproject.toml": '[tool.poetry.dependencies]\nSQLAlchemy = "^1.4.36"\n'}, False),
    ({}, False),
])
def test_declares_sqlalchemy_2(tmp_path: Path, files: dict, declares: bool) -> None:
    from asyncmigrate.codemods.requirements import declares_sqlalchemy_2

    assert declares_sqlalchemy_2(tree(tmp_path, files)) is declares


def test_drivers_follow_urls_written_in_settings_modules(tmp_path: Path) -> None:
    """The database module reads its URL from settings, which default to SQLite; requirements name psycopg2 (the
    production database): the migrated project needs both aiosqlite and asyncpg (fastapi-celery-project's shape)."""
    from click.testing import CliRunner

    from asyncmigrate.cli import main

    root = tree(tmp_path, {
        "requirements.txt": "fastapi\nsqlalchemy==2.0.25\npsycopg2-binary==2.9.9\n",
        "app/__init__.py": "",
        "app/config.py": 'import os\n\nDATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{os.getcwd()}/db.sqlite3")\n',
        "app/database.py": (
            "from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n\n"
            "from app.config import DATABASE_URL\n\n"
            "engine = create_engine(DATABASE_URL)\nSessionLocal = sessionmaker(bind=engine)\n\n\n"
            "def get_db():\n    db = SessionLocal()\n    try:\n        yield db\n    finally:\n        db.close()\n"),
        "app/routes.py": (
            "from fastapi import APIRouter, Depends\nfrom sqlalchemy.orm import Session\n\n"
            "from app.database import get_db\n\nrouter = APIRouter()\n\n\n"
            "@router.post('/n')\nasync def touch(db: Session = Depends(get_db)):\n    db.commit()\n    return {}\n"),
    })
    result = CliRunner().invoke(main, ["fix", str(root), "--write", "--no-cache", "-q"])
    assert result.exit_code == 0, result.output
    wanted = {normalise(line.split(">=")[0]) for line in (root / "requirements.txt").read_text().splitlines()}
    assert {"aiosqlite", "asyncpg"} <= wanted
