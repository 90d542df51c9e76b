"""Rule objects: code, name, message, explanation and examples, registered on definition.

A rule is a class.  Its docstring holds the Ruff-style sections (What it
does / Why it matters / Example / Use instead / Fix safety) that ``explain``,
``rules`` and ``docs/rules.md`` render; ``examples`` are ``Bad``/``Good``
sources that ``tests/rules/test_examples.py`` runs: a ``Bad`` must fire
exactly its own code, a ``Good`` must fire nothing.

Rules do not parse and do not resolve names: they read the project index
(``analysis/``) through a :class:`FunctionContext` and yield :class:`Hit`
objects.  ``engine.py`` turns hits into findings (severity, chain,
fingerprint, suppressions).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Iterator, Literal, Optional

from ..model import CallSite, Span

if TYPE_CHECKING:
    from ..analysis.callgraph import CallGraph
    from ..analysis.sessions import Fn, Project

#: How a rule's severity follows the code's context:
#: ``context``      blocks-loop on the loop, debt elsewhere;
#: ``debt``         always debt (a migration item that does no I/O on the loop);
#: ``loop-only``    reported only where it runs on the loop;
#: ``loop-or-migrating``  on the loop, or (as debt) in functions the migration turns async;
#: ``always-blocks``  always blocks-loop, the error level, wherever the code runs: for mistakes in
#:                    already-async code (post-migration, ASM2xx) that fail at runtime, on the loop or off it.
SeverityPolicy = Literal["context", "debt", "loop-only", "loop-or-migrating", "always-blocks"]

CATEGORIES = (
    "session-dependency",
    "session-factory",
    "query",
    "session-method",
    "sleep",
    "engine",
    "blocking-io",
    "post-migration",
    "suppression",
)


@dataclass(frozen=True)
class Bad:
    """An example that must fire the rule (and only it)."""

    source: str
    fixed: Optional[str] = None
    count: int = 1
    #: other codes the example fires as well (a query needs a session from somewhere)
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Good:
    """An example that must fire nothing."""

    source: str


@dataclass(frozen=True)
class Hit:
    span: Span
    detail: dict
    evidence: str = ""
    snippet: str = ""


@dataclass
class FunctionContext:
    project: "Project"
    graph: "CallGraph"
    fid: str
    fn: "Fn"
    #: functions the migration turns async (they, or what they call, use a sync session)
    migrating: frozenset

    @property
    def on_loop(self) -> bool:
        return self.graph.on_loop(self.fid)

    def receiver_of(self, call: CallSite):
        func = call.func
        if func is None or func[0] != "a":
            return None
        return self.project.receiver(func[1], self.fid, call.in_lambda)

    def resolve(self, call: CallSite):
        return self.project.call_target(call, self.fid)

    def qualified_name(self, call: CallSite) -> Optional[str]:
        v = self.resolve(call)
        return v[1] if v is not None and v[0] == "ext" else None


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    family: ClassVar[str]
    category: ClassVar[str]
    message: ClassVar[str]
    severity: ClassVar[SeverityPolicy] = "context"
    #: phase 1 rules run first; their session findings define ``FunctionContext.migrating``
    phase: ClassVar[int] = 1
    examples: ClassVar[tuple] = ()
    #: the codemods that fix this rule's findings (filled from ``codemods`` modules' ``fixes``)
    registry: ClassVar[dict[str, type["Rule"]]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls) or not getattr(cls, "code", None):
            return
        if cls.code in Rule.registry and Rule.registry[cls.code] is not cls:
            raise TypeError(f"rule code {cls.code} is defined twice")
        Rule.registry[cls.code] = cls

    def check(self, ctx: FunctionContext) -> Iterator[Hit]:  # pragma: no cover - interface
        raise NotImplementedError

    def format(self, hit: Hit) -> str:
        try:
            return self.message.format(**hit.detail)
        except (KeyError, IndexError):
            return self.message

    @classmethod
    def explanation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.explanation().splitlines()[0] if cls.__doc__ else cls.name


def all_rules() -> dict[str, type[Rule]]:
    """Every registered rule, by code (importing the rule modules registers them)."""
    import importlib
    import pkgutil

    from .. import rules as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "base":
            importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(sorted(Rule.registry.items()))


def selected(codes: dict[str, type[Rule]], select: tuple[str, ...], ignore: tuple[str, ...]) -> list[Rule]:
    """Rules whose code matches a ``--select`` prefix and no ``--ignore`` prefix."""
    out = []
    for code, cls in codes.items():
        if select and not any(code.startswith(s.upper()) for s in select):
            continue
        if any(code.startswith(i.upper()) for i in ignore):
            continue
        out.append(cls())
    return out
