"""Which pydantic a project is written for (``migration.pydantic_v1``), which picks how ``SerializeInSession``
validates a response inside the session: ``parse_obj_as`` for pydantic 1, ``TypeAdapter`` for pydantic 2.
The golden trees are ``fixtures/codemods/response_models/`` (one per version)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from asyncmigrate.api import analyse_paths
from asyncmigrate.config import Config
from asyncmigrate.migration import pydantic_v1

V1_SETTINGS = "from pydantic import BaseSettings\n\nclass Settings(BaseSettings):\n    url: str = ''\n"
V1_ORM = "from pydantic import BaseModel\n\nclass Out(BaseModel):\n    id: int\n\n    class Config:\n        orm_mode = True\n"
V2_CONFIG = "from pydantic import BaseModel, ConfigDict\n\nclass Out(BaseModel):\n    model_config = ConfigDict()\n"
V2_SETTINGS = "from pydantic_settings import BaseSettings\n\nclass Settings(BaseSettings):\n    url: str = ''\n"
NEUTRAL = "from pydantic import BaseModel\n\nclass Out(BaseModel):\n    id: int\n"


@pytest.mark.parametrize("files, expected", [
    ([V1_SETTINGS], True),
    ([V1_ORM], True),
    ([V1_ORM, V1_SETTINGS, NEUTRAL], True),
    ([V2_CONFIG], False),
    ([V1_ORM, V2_CONFIG], False),  # pydantic 2 still accepts ``orm_mode`` (renamed, with a warning)
    ([V1_ORM, V2_SETTINGS], False),
    ([NEUTRAL], False),  # no evidence: pydantic 2, what FastAPI installs
])
def test_pydantic_version_from_the_code(tmp_path: Path, files: list[str], expected: bool) -> None:
    pkg = tmp_path / "app"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for i, source in enumerate(files):
        (pkg / f"m{i}.py").write_text(textwrap.dedent(source))
    run = analyse_paths([str(tmp_path)], Config(), use_cache=False, need_analysis=True)
    assert pydantic_v1(run.analysis.project) is expected
