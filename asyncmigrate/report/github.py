"""GitHub Actions workflow commands: one annotation per finding, per skipped file, and a summary.

``::error file=app/main.py,line=9,col=12,endLine=9,endColumn=40,title=ASM110 legacy-query::message``

``blocks-loop`` findings are ``::error``, ``debt`` findings ``::warning``; each
file that could not be analysed is an ``::error``; a final ``::notice`` gives the
totals.  Escaping follows the runner's own rules (``actions/toolkit``,
``command.ts``): in the message ``%``, ``\\r`` and ``\\n`` become ``%25``,
``%0D``, ``%0A``; in property values ``:`` and ``,`` also become ``%3A`` and
``%2C``.  Columns are 1-based characters, ``endColumn`` exclusive, as in
:class:`~asyncmigrate.model.Span`.

GitHub shows only a limited number of annotations per step (10 of each kind at
the time of writing); every finding is still printed to the log.
"""

from __future__ import annotations

from ..model import BLOCKS_LOOP, DEBT, FileError, Finding, ScanResult
from .counts import counts
from .plain import plain


def escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **properties: object) -> str:
    """One workflow command; properties whose value is None are left out, in the order given."""
    props = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items() if v is not None)
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message)}"


def finding_command(f: Finding) -> str:
    message = plain(f.message)
    if len(f.chain) > 1:
        message += f" ({f.via} " + " → ".join(f.chain) + ")"
    return command(
        "error" if f.severity == BLOCKS_LOOP else "warning",
        message,
        file=f.path,
        line=f.span.line,
        col=f.span.column or None,
        endLine=f.span.end_line or None,
        endColumn=f.span.end_column or None,
        title=f"{f.code} {f.name}".strip(),
    )


def error_command(e: FileError) -> str:
    return command(
        "error",
        f"skipped: {e.message}",
        file=e.path,
        line=e.line or None,
        col=e.column or None,
        title=f"asyncmigrate: file not analysed ({e.kind})",
    )


def summary(result: ScanResult) -> str:
    total = counts(result.findings)["total"]
    files = len({f.path for f in result.findings})
    text = (f"{total['total']} findings in {files} of {len(result.files)} files: "
            f"{total[BLOCKS_LOOP]} block the event loop today, {total[DEBT]} are migration debt")
    if result.errors:
        text += f"; {len(result.errors)} files skipped"
    return text


def render(result: ScanResult, summary_text: str | None = None) -> str:
    """The commands, one per line; ``summary_text`` replaces the default totals in the final notice."""
    lines = [finding_command(f) for f in result.findings]
    lines += [error_command(e) for e in result.errors]
    lines.append(command("notice", summary_text if summary_text is not None else summary(result),
                         title="asyncmigrate"))
    return "\n".join(lines)
