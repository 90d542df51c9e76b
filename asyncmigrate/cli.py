"""Command line: click commands only; the work happens in ``api``, ``baseline`` and ``fix``.

Exit codes, everywhere: 0 nothing to report / gate passed; 1 findings (``scan``),
new findings (``check``) or changes ``fix --check`` would make; 2 usage or
configuration error; 3 the run finished but some files could not be analysed
(each is reported with its reason).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import click

from . import __version__
from .config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from .model import ScanResult

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3
FORMATS = ("text", "json", "sarif", "github")
FAIL_ON = ("any", "blocks-loop")


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


def named_path_errors(paths: Sequence[str]) -> tuple[tuple[str, ...], list]:
    """The named paths that can be analysed, and a :class:`~asyncmigrate.model.FileError` for each one that cannot
    (missing, a broken symlink or loop, unreadable, not a file or directory), worded as discovery words them.

    Decided here, before the cache is consulted, so that a named path that does not exist is always part of the
    result (reported, exit 3) however warm the cache is, in ``scan``, ``check`` and ``fix`` alike.
    """
    import stat

    from .model import FileError
    from .runner import display_path

    ok: list[str] = []
    errors: list = []
    for p in paths:
        if p == "-":
            ok.append(p)
            continue
        try:
            mode = os.stat(p).st_mode
        except OSError as exc:
            errors.append(FileError(display_path(p), "read", f"cannot read: {exc.strerror or exc}"))
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            errors.append(FileError(display_path(p), "read", "not a regular file or directory"))
            continue
        ok.append(p)
    return tuple(ok), errors


def with_errors(result, errors: Sequence) -> "ScanResult":
    """``result`` with the named paths' errors first (a new object: a cached result is never changed)."""
    from .model import ScanResult

    if not errors:
        return result
    return ScanResult(findings=result.findings, errors=[*errors, *result.errors], files=result.files,
                      suppressed=result.suppressed)


def common_options(f):
    """The options ``scan`` and ``check`` share (names and meanings as in Ruff where Ruff has them)."""
    options = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False), help="pyproject.toml to read "
                     "[tool.asyncmigrate] from (default: the nearest one)."),
        click.option("--select", multiple=True, help="Only these rule codes or prefixes (comma-separated, "
                     "repeatable); replaces the configured select and ignore, as in Ruff."),
        click.option("--ignore", multiple=True, help="Skip these rule codes or prefixes."),
        click.option("--extend-select", multiple=True, help="Add these codes or prefixes to the selection."),
        click.option("--extend-ignore", multiple=True, help="Also skip these codes or prefixes."),
        click.option("--exclude", multiple=True, help="gitignore-style patterns to skip, replacing the "
                     "configured exclude (comma-separated, repeatable)."),
        click.option("--extend-exclude", multiple=True, help="Patterns to skip in addition to the configured ones."),
        click.option("--force-exclude", is_flag=True, help="Apply the excludes to paths named on the command line "
                     "too (for pre-commit and editors)."),
        click.option("--fail-on", type=click.Choice(FAIL_ON), default="any", show_default=True,
                     help="Which findings fail the run: any, or only those that block the event loop today."),
        click.option("--show-settings", is_flag=True, help="Print the resolved settings and exit."),
        click.option("--show-files", is_flag=True, help="Print the files that would be analysed and exit."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the summary cache."),
        click.option("--jobs", "-j", type=click.IntRange(1, 256), default=None,
                     help="Worker processes (default: cores)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


COLORS = ("auto", "always", "never")


def _set_color(ctx: click.Context, _param, value: Optional[str]) -> Optional[str]:
    """``--color``: click's own switch (``click.echo`` keeps or strips styles by it) and the rich consoles'
    (``report.text.console_for`` reads it)."""
    if value in ("always", "never"):
        ctx.color = value == "always"
    elif os.environ.get("NO_COLOR"):  # https://no-color.org: auto means no colour then
        ctx.color = False
    return value


def color_option(f):
    """``--color auto|always|never`` (Ruff's flag): auto colours a terminal only (and honours NO_COLOR)."""
    return click.option("--color", type=click.Choice(COLORS), default="auto", show_default=True, expose_value=False,
                        is_eager=True, callback=_set_color,
                        help="Colour the output: on a terminal only (auto), always, or never.")(f)


def format_option(f):
    """``--format``, with Ruff's name ``--output-format`` as an alias."""
    return click.option("--format", "--output-format", "fmt", type=click.Choice(FORMATS), default="text",
                        show_default=True, help="Report format.")(f)


@dataclass
class Prepared:
    """What a command runs on, once the configuration and the command line are resolved."""

    paths: tuple[str, ...]
    config: Config  # the configuration with the selection resolved (pass it to ``analyse_paths``)
    select: tuple[str, ...]
    ignore: tuple[str, ...]
    codes: frozenset[str]
    notes: tuple[str, ...]
    original: Config
    #: named paths that cannot be analysed (reported as skipped: exit 3)
    errors: list


def prepare(paths: Sequence[str], *, config_path=None, select=(), ignore=(), extend_select=(), extend_ignore=(),
            exclude=(), extend_exclude=(), force_exclude=False, show_settings=False, show_files=False,
            config_paths: Optional[Sequence[str]] = None, **_ignored) -> Prepared:
    """Check the paths, load the configuration, apply the command line to it, resolve the rules.

    ``--show-settings`` and ``--show-files`` print here and exit 0.  ``config_paths`` is where the configuration
    is looked for when it differs from ``paths`` (``scan - --stdin-filename F``).
    """
    from .selection import as_arguments, resolve

    paths = tuple(paths) or (".",)
    config = get_config(config_path, list(config_paths or paths))
    paths, path_errors = named_path_errors(paths)
    if exclude:
        config.exclude = list(split_list(exclude))
    config.exclude = config.exclude + list(split_list(extend_exclude))
    config.force_exclude = config.force_exclude or force_exclude
    select, ignore = split_codes(select), split_codes(ignore)
    extend_select, extend_ignore = split_codes(extend_select), split_codes(extend_ignore)
    validate_codes(select + ignore + extend_select + extend_ignore)
    selection = resolve(config, select, ignore, extend_select, extend_ignore)
    if not selection.codes:
        raise click.UsageError("the rule selection leaves no rule to run (see --show-settings)")
    if config.force_exclude:
        paths = tuple(p for p in paths if p == "-" or not force_excluded(p, config))
    run_config, run_select, run_ignore = as_arguments(config, selection)
    prepared = Prepared(paths, run_config, run_select, run_ignore, frozenset(selection.codes), selection.notes, config,
                        path_errors)
    if show_settings:
        click.echo(settings_text(prepared))
        sys.exit(EXIT_OK)
    if show_files:
        from .runner import discover

        discovery = discover(paths, run_config) if paths else None
        for src in discovery.sources if discovery else ():
            click.echo(src.path)
        for e in [*path_errors, *(discovery.errors if discovery else ())]:
            click.echo(f"skipped {e.path}: {e.message}", err=True)
        sys.exit(EXIT_OK)
    for note in selection.notes:
        click.echo(note, err=True)
    return prepared


def split_list(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def force_excluded(path: str, config: Config) -> bool:
    """Whether a path named on the command line matches an exclude pattern (``--force-exclude``)."""
    import pathspec

    if not config.exclude:
        return False
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(config.root)).replace(os.sep, "/")
    if rel.startswith("../"):
        return False
    spec = pathspec.GitIgnoreSpec.from_lines(config.exclude)
    parts = rel.split("/")
    # a file below an excluded directory is excluded too, as when the directory is walked
    candidates = ["/".join(parts[:i]) + "/" for i in range(1, len(parts))] + [rel + ("/" if os.path.isdir(path) else "")]
    return any(spec.match_file(c) for c in candidates if c not in ("./", "/"))


def settings_text(prepared: Prepared) -> str:
    """``--show-settings``: the resolved configuration, as TOML-like ``key = value`` lines."""
    import json

    cfg = prepared.original
    lines = [f"# configuration: {cfg.source or '(defaults: no [tool.asyncmigrate] found)'}",
             f"# paths: {', '.join(prepared.paths) or '(none left after --force-exclude)'}"]
    for key, value in cfg.to_dict().items():
        if key in ("source",):
            continue
        lines.append(f"{key.replace('_', '-')} = {json.dumps(value, sort_keys=True)}")
    lines.append(f"# rules that run ({len(prepared.codes)}): {', '.join(sorted(prepared.codes))}")
    lines += [f"# {n}" for n in prepared.notes]
    return "\n".join(lines)


def failing(findings, fail_on: str) -> bool:
    """Whether these findings fail the run under ``--fail-on``."""
    from .model import BLOCKS_LOOP

    if fail_on == "blocks-loop":
        return any(f.severity == BLOCKS_LOOP for f in findings)
    return bool(findings)


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
@format_option
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to a file.")
@click.option("--summary", "summary_only", is_flag=True, help="Text format: the table only, not every finding.")
@click.option("--statistics", is_flag=True, help="Only a count per rule, most frequent first (text or json).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--stdin-filename", metavar="PATH", help="With `scan -`: the name of the file whose contents come "
              "on stdin (editors); findings, configuration and excludes use this name.")
@common_options
@color_option
def scan(paths, fmt, output, summary_only, statistics, exit_zero, stdin_filename, fail_on, no_cache, jobs, quiet,
         **options) -> None:
    """Report every blocking call, per file and category, split into blocks-loop and debt.

    `scan -` reads one file from stdin (name it with --stdin-filename).
    """
    from .api import analyse_named
    from .selection import apply_per_file_ignores

    paths = paths or (".",)
    if "-" in paths and len(paths) > 1:
        raise click.UsageError("`-` (stdin) cannot be combined with other paths")
    if stdin_filename and paths != ("-",):
        raise click.UsageError("--stdin-filename only applies to `scan -`")
    if statistics and fmt not in ("text", "json"):
        raise click.UsageError("--statistics prints text or json")
    prep = prepare(paths, config_paths=[stdin_filename] if stdin_filename else None, **options)
    if paths == ("-",):
        from .stdin import analyse_stdin

        if stdin_filename and prep.original.force_exclude and force_excluded(stdin_filename, prep.original):
            result = None
        else:
            result = analyse_stdin(stdin_filename, prep.config, prep.select, prep.ignore)
    elif prep.paths:
        run = analyse_named(prep.paths, prep.config, prep.select, prep.ignore, use_cache=not no_cache, jobs=jobs,
                            progress=not quiet and fmt == "text")
        result = run.result
    else:  # every named path was excluded (--force-exclude) or cannot be read
        result = None
    from .model import ScanResult

    result = with_errors(apply_per_file_ignores(result if result is not None else ScanResult(), prep.original),
                         prep.errors)
    if statistics:
        from .report.counts import statistics_json, statistics_text

        emit(statistics_json(result.findings) if fmt == "json" else statistics_text(result.findings), output)
    elif fmt == "text" and not output:
        from .report.text import console_for, render

        render(result, console_for(sys.stdout), show_findings=not summary_only)
    else:
        emit(render_report(result, fmt), output)
    sys.exit(exit_code(failing(result.findings, fail_on) and not exit_zero, bool(result.errors)))


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
@color_option
def rules_cmd(fmt: str) -> None:
    """List every rule: code, name, category and summary."""
    from .rules.base import all_rules
    from .report.docs import rules_json, rules_markdown, rules_table

    if fmt == "markdown":
        click.echo(rules_markdown(all_rules()), nl=False)
    elif fmt == "json":
        click.echo(rules_json(all_rules()))
    else:
        from .report.text import console_for

        console = console_for(sys.stdout)
        console.print(rules_table(all_rules(), console.width))


@main.command()
@click.argument("code")
@color_option
def explain(code: str) -> None:
    """Explain one rule: what it finds, why it matters, the fix, examples."""
    from .rules.base import all_rules
    from .report.docs import rule_markdown

    rules = all_rules()
    cls = rules.get(code.upper())
    if cls is None:
        raise click.UsageError(f"unknown rule code '{code}' (see `asyncmigrate rules`)")
    from rich.markdown import Markdown

    from .report.text import console_for

    console_for(sys.stdout).print(Markdown(rule_markdown(cls)))
