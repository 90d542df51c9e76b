"""`tests/e2e/test_functional.py`, collected again on the tool-migrated backend (see conftest.py)."""

from ..test_functional import *  # noqa: F401,F403
