"""Names of the async twins in test code, derived from the sync names there.

A test module keeps its sync engine and factory, imports the app's, and gets async twins of its own: they
must not take the app's names (``AsyncSessionLocal``, ``get_async_db``), which the test may import too.
"""

from __future__ import annotations

import re
from typing import Mapping


def twin_name(sync: str, app_twins: Mapping[str, str]) -> str:
    """``TestingSessionLocal`` -> ``AsyncTestingSessionLocal``, ``override_get_db`` -> ``override_get_async_db``,
    ``engine`` -> ``async_engine``, ``db_session`` -> ``async_db_session``, ``_override`` -> ``_async_override``.

    A snake_case name holding one of the app's sync names as whole words gets that part replaced by the
    app's twin; any other gets an ``Async``/``async_`` prefix in its own case.
    """
    stripped = sync.lstrip("_")
    private = sync[: len(sync) - len(stripped)]  # ``_override`` -> ``_async_override``
    if stripped[:1].isupper() and "_" not in stripped.rstrip("_"):
        return f"{private}Async{stripped}"
    for old in sorted(app_twins, key=len, reverse=True):
        if old[:1].islower() and re.search(rf"(^|_){re.escape(old)}($|_)", stripped):
            new = re.sub(rf"(^|_){re.escape(old)}($|_)", lambda m: f"{m[1]}{app_twins[old]}{m[2]}", stripped, count=1)
            return private + new
    return f"{private}async_{stripped}"
