"""The value the soundness checks return (``asyncmigrate/soundness``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    kind: str
    path: str
    #: line in the analysed (rewritten) file
    line: int
    #: ``module:qualname`` of the function where it shows ("" when it is not inside one)
    fid: str
    #: ``module:qualname`` of the functions whose conversion causes it (their components are left sync)
    causes: tuple[str, ...]
    message: str
    #: what identifies it regardless of line numbers (compared between the original and the rewrite)
    key: tuple = ()

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"
