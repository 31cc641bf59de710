"""Flow problems as values an admin can act on: file, line, column and a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from routing.flow import Flow

Path = tuple[str | int, ...]
"""Where a value sits in a flow file: keys and list indexes from the top."""


@dataclass(frozen=True, order=True)
class FlowError:
    """One problem in a flow file, located at a 1-based line and column."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class FlowInvalid(Exception):
    """A flow that cannot be used; carries every problem found, in file order."""

    def __init__(self, errors: list[FlowError]) -> None:
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class Reporter(Protocol):
    """What a check of a flow is given: the flow, and a way to note a located error."""

    flow: Flow

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        """Note a problem at `path` (`at_key`: at the key rather than its value)."""
