"""The typed record kinds every converter produces and the tokenizer consumes.

A `Sample` is LLaMA-Factory's aligned form (its `_prompt`, `_response`, `_system`, `_tools`, `_images`,
`_videos`, `_audios` columns): whatever the file format, converters produce these, and the encoders
(SFT, pre-training, pairwise, KTO) read only these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["user", "assistant", "function", "observation"]
Kind = Literal["sft", "pt", "ranking", "kto"]

# how our roles appear to Hugging Face chat templates (what chat, predict and the API render)
HF_ROLES = {"user": "user", "assistant": "assistant", "function": "assistant", "observation": "tool"}


@dataclass(frozen=True)
class Message:
    """One turn of a conversation (LLaMA-Factory's roles: user, assistant, function, observation)."""

    role: Role
    content: str


@dataclass(frozen=True)
class Sample:
    """One converted row.

    prompt: the turns before the response (odd count, user/observation turns at even positions);
    response: 1 message for sft and kto, 2 (chosen, rejected) for ranking, 0 for pt (the text is prompt[0]).
    """

    prompt: tuple[Message, ...]
    response: tuple[Message, ...]
    dataset: str
    row: int
    system: str = ""
    tools: str = ""
    images: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    audios: tuple[str, ...] = ()
    kto_tag: bool | None = None
    kind: Kind = "sft"

    @classmethod
    def chat(cls, messages: tuple[Message, ...], dataset: str, row: int, system: str = "") -> Sample:
        """An SFT sample from a whole conversation that ends with the assistant's answer."""
        return cls(prompt=tuple(messages[:-1]), response=tuple(messages[-1:]), dataset=dataset, row=row, system=system)

    @property
    def messages(self) -> tuple[Message, ...]:
        """The conversation with the (first) response: what SFT trains on."""
        return self.prompt + self.response[:1]

    def as_dicts(self, default_system: str | None = None) -> list[dict[str, str]]:
        """The conversation as Hugging Face chat templates take it; the system message first when there is one."""
        system = self.system or default_system or ""
        head = [{"role": "system", "content": system}] if system else []
        return head + [{"role": HF_ROLES[m.role], "content": m.content} for m in self.messages]


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
    role: str = "train"  # train, or eval (an eval_dataset)
    rows_read: int = 0
    rows_converted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_rows: list[RowIssue] = field(default_factory=list)
    truncated: int = 0
    turns_dropped_for_length: int = 0
    dropped_for_length: int = 0  # packing: examples longer than cutoff_len, left out
    tokens: int = 0
    tokens_trained: int = 0
    notes: list[str] = field(default_factory=list)

    def skip(self, row: int, reason: str, detail: str = "") -> None:
        """Count a skipped row under its reason; the first 100 are kept with their details."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.skipped_rows) < 100:
            self.skipped_rows.append(RowIssue(self.name, row, detail or reason))
