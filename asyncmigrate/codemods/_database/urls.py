"""Sync URL -> async URL: literals mapped when the rewrite runs, other expressions by a generated helper.

The table is ``facts.ASYNC_DRIVER_FOR_URL`` (SQLALCHEMY_ASYNC.md §3); the run-time helper is that table
emitted as literals, so both paths map a URL the same way.
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import parse_qsl, urlsplit

import libcst as cst

from asyncmigrate import facts

#: name of the generated run-time URL mapper (``_2``, ``_3``... when taken)
URL_HELPER = "_async_database_url"


def url_helper_def(name: str) -> cst.FunctionDef:
    """The run-time URL mapper, emitted from the facts table's pairs as literals."""
    pairs = "\n".join(f'        ("{sync}", "{asyn}"),' for sync, asyn in facts.ASYNC_DRIVER_FOR_URL)
    source = (
        f"def {name}(url: str) -> str:\n"
        '    """``url`` with its sync driver replaced by the async one; other URLs unchanged."""\n'
        "    for sync_prefix, async_prefix in (\n"
        f"{pairs}\n"
        "    ):\n"
        "        if url.startswith(sync_prefix):\n"
        "            return async_prefix + url[len(sync_prefix) :]\n"
        "    return url\n"
    )
    fn = cst.parse_statement(source)
    assert isinstance(fn, cst.FunctionDef)
    return fn.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])


def rename_helper(line: cst.SimpleStatementLine, name: str) -> cst.SimpleStatementLine:
    """``line`` calling the URL helper by ``name`` (when the default name is taken)."""
    if name == URL_HELPER:
        return line

    class _Rename(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
            return updated.with_changes(value=name) if updated.value == URL_HELPER else updated

    result = line.visit(_Rename())
    assert isinstance(result, cst.SimpleStatementLine)
    return result


def scheme(url: str) -> str:
    """The part of a URL safe to quote in a message (no credentials)."""
    return url.split("://", 1)[0] + "://" if "://" in url else url[:20]


def sqlite_memory(url: str) -> bool:
    """A private in-memory SQLite database: every engine on this URL gets its own."""
    parsed = facts.url_driver(url)
    if parsed is None or parsed[0] != "sqlite":
        return False
    database = url.split("://", 1)[1].lstrip("/").split("?", 1)[0]
    return database in facts.SQLITE_MEMORY_DATABASES


def shared_memory_url(url: str, name: str) -> str:
    """``url`` (a private in-memory SQLite URL) as the named, shared-cache in-memory database ``name``.

    Every connection in the process that opens ``file:<name>?mode=memory&cache=shared`` sees one database,
    whatever the driver: a sync pysqlite engine and an async aiosqlite engine share tables and rows (checked
    with StaticPool and NullPool on the async side, across event loops). The database lives while one
    connection to it is open.
    """
    head = url.split("://", 1)[0]
    return f"{head}:///file:{re.sub(r'[^A-Za-z0-9_]', '_', name)}?mode=memory&cache=shared&uri=true"


def string_like(node: cst.BaseExpression, old: str, new: str) -> cst.BaseExpression:
    """A literal for ``new``, in the quotes and prefix of ``node`` when the URL's head is spelled plainly."""
    if isinstance(node, cst.SimpleString):
        raw = node.value[len(node.prefix) + len(node.quote): -len(node.quote)]
        for sync_prefix, async_prefix in facts.ASYNC_DRIVER_FOR_URL:
            if old.startswith(sync_prefix) and raw.startswith(sync_prefix) and new.startswith(async_prefix):
                return node.with_changes(
                    value=node.prefix + node.quote + async_prefix + raw[len(sync_prefix):] + node.quote
                )
    return quoted(new)


def quoted(text: str) -> cst.SimpleString:
    return cst.SimpleString('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')


def asyncpg_rejected_params(async_url: str) -> list[str]:
    """URL query parameters asyncpg rejects at the first connect (libpq-only options)."""
    if not async_url.startswith("postgresql+asyncpg://"):
        return []
    query = urlsplit(async_url).query
    return sorted({k for k, _ in parse_qsl(query)} & facts.ASYNCPG_REJECTED_PARAMS)


def literal_value(node: cst.BaseExpression) -> Optional[str]:
    """The value of a plain (not formatted) string literal."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None
