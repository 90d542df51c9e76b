"""Command line: click commands only; the work happens in ``api``, ``baseline`` and ``fix``.

Exit codes, everywhere: 0 nothing to report / gate passed; 1 findings (``scan``),
new findings (``check``) or changes ``fix --check`` would make; 2 usage or
configuration error; 3 the run finished but some files could not be analysed
(each is reported with its reason).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

import click

from . import __version__
from .config import Config, ConfigError, load_config

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3
FORMATS = ("text", "json", "sarif", "github")


def split_codes(values: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        out += [c.strip().upper() for c in v.split(",") if c.strip()]
    return tuple(out)


def validate_codes(codes: Sequence[str]) -> None:
    from .rules.base import all_rules

    known = all_rules()
    for c in codes:
        if not any(k.startswith(c) for k in known):
            raise click.UsageError(f"'{c}' matches no rule code (see `asyncmigrate rules`)")


def get_config(config_path: Optional[str], paths: Sequence[str]) -> Config:
    try:
        config = load_config(Path(config_path) if config_path else None, Path(paths[0]) if paths else None)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    for note in config.notes:
        click.echo(f"warning: {note}", err=True)
    return config


def common_options(f):
    f = click.option("--config", "config_path", type=click.Path(dir_okay=False), help="pyproject.toml to read "
                     "[tool.asyncmigrate] from (default: the nearest one).")(f)
    f = click.option("--select", multiple=True, help="Only these rule codes or prefixes (comma-separated, repeatable).")(f)
    f = click.option("--ignore", multiple=True, help="Skip these rule codes or prefixes.")(f)
    f = click.option("--no-cache", is_flag=True, help="Do not read or write the summary cache.")(f)
    f = click.option("--jobs", "-j", type=click.IntRange(1, 256), default=None, help="Worker processes (default: cores).")(f)
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(f)
    return f


def emit(text: str, output: Optional[str]) -> None:
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


class LazyGroup(click.Group):
    """Commands that live in their own modules (``check`` in baseline.py, ``fix`` in fix.py) are imported only
    when they run or when help lists them: ``scan`` must not pay for libcst, which only ``fix`` needs."""

    lazy = {"check": ("asyncmigrate.baseline", "check_command"), "fix": ("asyncmigrate.fix", "fix_command")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            import importlib

            module, attribute = self.lazy[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asyncmigrate")
def main() -> None:
    """Find blocking sync-SQLAlchemy calls in async Python backends and migrate them to async SQLAlchemy 2.0."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to a file.")
@click.option("--summary", "summary_only", is_flag=True, help="Text format: the table only, not every finding.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@common_options
def scan(paths, fmt, output, summary_only, exit_zero, config_path, select, ignore, no_cache, jobs, quiet) -> None:
    """Report every blocking call, per file and category, split into blocks-loop and debt."""
    from .api import analyse_paths

    paths = paths or (".",)
    config = get_config(config_path, paths)
    select, ignore = split_codes(select), split_codes(ignore)
    validate_codes(select + ignore)
    run = analyse_paths(paths, config, select, ignore, use_cache=not no_cache, jobs=jobs,
                        progress=not quiet and fmt == "text")
    result = run.result
    if fmt == "text" and not output:
        from rich.console import Console

        from .report.text import render

        console = Console(highlight=False) if sys.stdout.isatty() else Console(highlight=False, width=200)
        render(result, console, show_findings=not summary_only)
    else:
        emit(render_report(result, fmt), output)
    sys.exit(exit_code(bool(result.findings) and not exit_zero, bool(result.errors)))


def render_report(result, fmt: str) -> str:
    if fmt == "json":
        from .report.json import render
        return render(result)
    if fmt == "sarif":
        from .report.sarif import render
        return render(result)
    if fmt == "github":
        from .report.github import render
        return render(result)
    from io import StringIO

    from rich.console import Console

    from .report.text import render

    buf = StringIO()
    render(result, Console(file=buf, width=160, no_color=True, highlight=False))
    return buf.getvalue().rstrip("\n")


def exit_code(failed: bool, skipped: bool) -> int:
    if skipped:
        return EXIT_SKIPPED
    return EXIT_FINDINGS if failed else EXIT_OK


@main.command("rules")
@click.option("--format", "fmt", type=click.Choice(("text", "markdown", "json")), default="text")
def rules_cmd(fmt: str) -> None:
    """List every rule: code, name, category and summary."""
    from .rules.base import all_rules
    from .report.docs import rules_json, rules_markdown, rules_table

    if fmt == "markdown":
        click.echo(rules_markdown(all_rules()), nl=False)
    elif fmt == "json":
        click.echo(rules_json(all_rules()))
    else:
        from rich.console import Console

        Console().print(rules_table(all_rules()))


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Explain one rule: what it finds, why it matters, the fix, examples."""
    from .rules.base import all_rules
    from .report.docs import rule_markdown

    rules = all_rules()
    cls = rules.get(code.upper())
    if cls is None:
        raise click.UsageError(f"unknown rule code '{code}' (see `asyncmigrate rules`)")
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(rule_markdown(cls)))
