"""What a path says about its code: test code is judged, and migrated, differently."""

from __future__ import annotations


def is_test_file(path: str) -> bool:
    """pytest-style test modules and everything under ``tests/``/``test/``, and ``conftest.py``.

    Test code keeps its sync sessions (the sync engine stays during the migration), only its dependency
    overrides move; and an async test calling production code says nothing about where production runs it.
    """
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    return (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            or any(p in ("tests", "test") for p in parts[:-1]))
