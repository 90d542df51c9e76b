"""The human report: a rich table of counts per file and category, totals, and the findings.

The table has a column per category when the console is wide enough; on a
narrower one (80 columns) it becomes two tables, counts per file (paths
relative to the directory they share, named in the title) and counts per
category, so nothing is cut to "…".
"""

from __future__ import annotations

from typing import Optional

import sys
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..model import BLOCKS_LOOP, DEBT, ScanResult
from .counts import counts
from .plain import plain


def console_for(stream: TextIO = sys.stdout) -> Console:
    """A terminal's own width and colours; when piped, no colour and lines long enough not to wrap.

    ``--color always``/``never`` (click's context colour, ``cli.color_option``) forces colours on or off."""
    import click

    ctx = click.get_current_context(silent=True)
    color = ctx.color if ctx is not None else None
    tty = stream.isatty()
    width = None if tty else _piped_width()
    if color is True:
        return Console(file=stream, highlight=False, force_terminal=True, width=width or None)
    if color is False:
        return Console(file=stream, highlight=False, no_color=True, width=width)
    if tty:
        return Console(file=stream, highlight=False)
    return Console(file=stream, highlight=False, width=width)


def _piped_width() -> int:
    """Piped output is 200 columns wide (nothing wraps in a log) unless ``COLUMNS`` says otherwise, as a
    terminal's own width would: ``COLUMNS=80 asyncmigrate scan app | less`` gets the 80-column layout."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return 200
    return columns if columns >= 40 else 200


_SHORT = {
    "session-dependency": "session dep",
    "session-factory": "SessionLocal()",
    "query": ".query()",
    "session-method": "session methods",
    "sleep": "time.sleep",
    "engine": "sync engine",
    "blocking-io": "other I/O",
    "post-migration": "post-migration",
    "suppression": "suppressions",
}


def _cell(c: Optional[dict]) -> Text:
    if not c or not c["total"]:
        return Text("·", style="dim")
    t = Text(str(c["total"]))
    if c[BLOCKS_LOOP]:
        t.append(f" ({c[BLOCKS_LOOP]}⚠)", style="bold red")
    return t


def render(result: ScanResult, console: Console, show_findings: bool = True, max_chain: int = 6) -> None:
    data = counts(result.findings)
    cats = list(data["categories"])
    if show_findings and result.findings:
        for f in result.findings:
            style = "bold red" if f.severity == BLOCKS_LOOP else "yellow"
            line = Text()
            line.append(f"{f.path}:{f.span.line}:{f.span.column}: ", style="bold")
            line.append(f.code, style=style)
            line.append(f" [{f.severity}] ", style=style)
            line.append(plain(f.message))
            if f.evidence == "name-only":
                line.append("  (name only)", style="dim")
            console.print(line, soft_wrap=True, highlight=False)
            if f.chain and len(f.chain) > 1:
                chain = list(f.chain)
                if len(chain) > max_chain:
                    chain = chain[:2] + ["…"] + chain[-(max_chain - 3):]
                console.print(Text(f"    {f.via}: " + " → ".join(chain), style="dim"), soft_wrap=True,
                              highlight=False)
        console.print()
    if data["files"]:
        table = _wide_table(data, cats)
        if _natural_width(table) <= console.width:
            console.print(table)
        else:
            prefix = _common_directory(list(data["files"]))
            title = f"Blocking calls per file under {prefix}" if prefix else "Blocking calls per file"
            rows = {path[len(prefix):]: row for path, row in data["files"].items()}
            console.print(_narrow_table(title, "file", rows, data["total"]))
            console.print(_narrow_table("Per category", "category",
                                        {_SHORT.get(c, c): data["categories"][c] for c in cats}, data["total"]))
    total = data["total"]
    summary = Text()
    summary.append(f"{total['total']} findings", style="bold")
    summary.append(f" in {len(data['files'])} of {len(result.files)} files: ")
    summary.append(f"{total[BLOCKS_LOOP]} block the event loop today", style="bold red")
    summary.append(f", {total[DEBT]} are migration debt (run in a threadpool or at import)")
    if data["name_only"]:
        summary.append(f"; {data['name_only']} rest on a name only", style="dim")
    if result.suppressed:
        summary.append(f"; {len(result.suppressed)} suppressed", style="dim")
    console.print(summary, highlight=False)
    for e in result.errors:
        loc = f":{e.line}" if e.line else ""
        console.print(Text(f"skipped {e.path}{loc}: {e.message}", style="magenta"), soft_wrap=True, highlight=False)


def _common_directory(paths: list[str]) -> str:
    """The directory every path is under, with its trailing slash ("" when there is none)."""
    dirs = [p.rsplit("/", 1)[0] if "/" in p else "" for p in paths]
    if not dirs or any(not d for d in dirs):
        return ""
    parts = [d.split("/") for d in dirs]
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common) + "/" if common else ""


def _natural_width(table: Table) -> int:
    """The width the table takes when nothing is squeezed (rich's measurement clamps to the console)."""
    from io import StringIO

    buf = StringIO()
    Console(file=buf, width=10_000, no_color=True).print(table)
    return max((len(line.rstrip()) for line in buf.getvalue().splitlines()), default=0)


def _wide_table(data: dict, cats: list[str]) -> Table:
    table = Table(title="Blocking calls per file (n (k⚠) = n findings, k of them block the event loop today)",
                  title_justify="left", show_footer=True)
    table.add_column("file", footer="total", no_wrap=True)
    for c in cats:
        table.add_column(_SHORT.get(c, c), justify="right", footer=_cell(data["categories"][c]))
    table.add_column("blocks-loop", justify="right", style="red", footer=str(data["total"][BLOCKS_LOOP]))
    table.add_column("debt", justify="right", style="yellow", footer=str(data["total"][DEBT]))
    table.add_column("total", justify="right", style="bold", footer=str(data["total"]["total"]))
    for path, row in data["files"].items():
        table.add_row(path, *[_cell(row["categories"].get(c)) for c in cats], str(row[BLOCKS_LOOP]),
                      str(row[DEBT]), str(row["total"]))
    return table


def _narrow_table(title: str, head: str, rows: dict, total: dict) -> Table:
    """Counts only: a long path folds onto a second line instead of being cut."""
    table = Table(title=title, title_justify="left", show_footer=True)
    table.add_column(head, footer="total", overflow="fold")
    table.add_column("blocks-loop", justify="right", style="red", footer=str(total[BLOCKS_LOOP]), no_wrap=True)
    table.add_column("debt", justify="right", style="yellow", footer=str(total[DEBT]), no_wrap=True)
    table.add_column("total", justify="right", style="bold", footer=str(total["total"]), no_wrap=True)
    for name, row in rows.items():
        table.add_row(name, str(row[BLOCKS_LOOP]), str(row[DEBT]), str(row["total"]))
    return table
