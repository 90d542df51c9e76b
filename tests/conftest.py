"""Suite-wide: the tool's cache (and its per-user key) go to a directory of this test session, never to
the user's own cache directory; subprocesses inherit it through the environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_user_cache(tmp_path_factory):
    old = os.environ.get("ASYNCMIGRATE_CACHE_DIR")
    os.environ["ASYNCMIGRATE_CACHE_DIR"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if old is None:
        os.environ.pop("ASYNCMIGRATE_CACHE_DIR", None)
    else:
        os.environ["ASYNCMIGRATE_CACHE_DIR"] = old
