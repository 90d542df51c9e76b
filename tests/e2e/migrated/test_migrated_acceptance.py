"""`tests/e2e/test_acceptance.py`, collected again on the tool-migrated backend (see conftest.py)."""

from ..test_acceptance import *  # noqa: F401,F403
