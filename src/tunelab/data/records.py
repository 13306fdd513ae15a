"""The typed record kinds every converter produces and the tokenizer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One turn of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class ChatRecord:
    """An SFT example: optional system, then user/assistant turns ending with an assistant turn."""

    messages: tuple[Message, ...]
    dataset: str
    row: int
    system: str = ""

    def as_dicts(self, default_system: str | None = None) -> list[dict[str, str]]:
        """Messages in the form chat templates take; the system message first when there is one."""
        system = self.system or default_system or ""
        head = [{"role": "system", "content": system}] if system else []
        return head + [{"role": m.role, "content": m.content} for m in self.messages]


@dataclass
class RowIssue:
    """A skipped row, kept for the data report."""

    dataset: str
    row: int
    reason: str


@dataclass
class DatasetReport:
    """What happened to one dataset's rows on the way to training examples."""

    name: str
    file: str | None = None
    rows_read: int = 0
    rows_converted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_rows: list[RowIssue] = field(default_factory=list)
    truncated: int = 0
    turns_dropped_for_length: int = 0
    tokens: int = 0
    tokens_trained: int = 0
    notes: list[str] = field(default_factory=list)

    def skip(self, row: int, reason: str, detail: str = "") -> None:
        """Count a skipped row under its reason; the first 100 are kept with their details."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.skipped_rows) < 100:
            self.skipped_rows.append(RowIssue(self.name, row, detail or reason))
