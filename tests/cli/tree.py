"""A small FastAPI + sync SQLAlchemy project for the CLI tests: one async route (blocks-loop findings), one
``def`` route (debt findings), a script, and ``run(...)`` to invoke the CLI in it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from asyncmigrate.cli import main

DB = '''\
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite:///app.db")
SessionLocal = sessionmaker(bind=engine)


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()
'''

ROUTES = '''\
from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from .db import get_db

router = APIRouter()


@router.get("/items")
async def list_items(db: Session = Depends(get_db)):
    return db.query(Item).all()


@router.get("/plain")
def plain(db: Session = Depends(get_db)):
    db.commit()
    return db.query(Item).first()
'''

SCRIPT = '''\
from app.db import SessionLocal


def main():
    db = SessionLocal()
    db.query(Item).all()
'''


def make_project(root: Path, pyproject: str | None = None) -> Path:
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "db.py").write_text(DB)
    (root / "app" / "routes.py").write_text(ROUTES)
    (root / "scripts").mkdir(exist_ok=True)
    (root / "scripts" / "seed.py").write_text(SCRIPT)
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)
    return root


def run(*args: str, input: str | None = None, color: bool = False) -> Result:
    return CliRunner().invoke(main, list(args), input=input, color=color, catch_exceptions=False)


def scan_json(*args: str) -> tuple[int, dict]:
    res = run("scan", *args, "--format", "json", "--no-cache", "-q")
    return res.exit_code, json.loads(res.stdout)


def codes(doc: dict) -> set[str]:
    return {f["code"] for f in doc["findings"]}


def paths(doc: dict) -> set[str]:
    return {f["path"] for f in doc["findings"]}
