"""Plain text for every output: rule docstrings and messages use reST double backticks, readers see single ones.

Scope: the one conversion every reporter (text, JSON, SARIF, GitHub, ``check``'s
report, ``rules``) applies to a message or summary before printing it.  Why here
and not in the rules: the docstrings are also reST for the docs tooling, and a
message built from source text may contain them too.
"""

from __future__ import annotations


def plain(text: str) -> str:
    """``text`` with reST inline literals (````x````) written as Markdown/plain ones (```x```)."""
    return text.replace("``", "`")
