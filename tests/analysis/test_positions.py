"""Finding columns are character columns on the line as the parser counts lines.

``str.splitlines`` also splits at form feeds, ``\\x1c``-``\\x1e``, ``\\x85`` and ``\\u2028``; the parser does
not, so a column computed from those lines read the wrong line in a non-ASCII file.
"""

from __future__ import annotations

import pytest

from tests.helpers import findings

SOURCE = (
    "import time\n"
    "# page one\x0cpage two\n"
    "async def handle_the_request():\n"
    '    label = "caf\u00e9"; time.sleep(1)\n'
)


@pytest.mark.parametrize("separator", ["\x0c", "\x1c", "\x85", "\u2028"])
def test_column_after_a_character_splitlines_splits_at(separator: str) -> None:
    found = findings({"app.py": SOURCE.replace("\x0c", separator)}, codes=["ASM130"])
    assert [(f.span.line, f.span.column) for f in found] == [(4, 21)]
    assert SOURCE.split("\n")[4 - 1][21 - 1:].startswith("time.sleep(1)")


def test_column_counts_characters_not_bytes() -> None:
    found = findings({"app.py": 'import time\nasync def h():\n    x = "\u00e9\u00e9\u00e9"; time.sleep(1)\n'}, codes=["ASM130"])
    assert [(f.span.line, f.span.column, f.span.end_column) for f in found] == [(3, 16, 29)]
