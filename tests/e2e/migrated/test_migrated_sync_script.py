"""`tests/e2e/test_sync_script.py`, collected again on the tool-migrated backend (see conftest.py)."""

from ..test_sync_script import *  # noqa: F401,F403
