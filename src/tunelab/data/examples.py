"""The example kinds converters produce and encoders consume: one type per shape of training example.

Every kind keeps LLaMA-Factory's aligned context (its `_system`, `_tools`, `_images`, `_videos`, `_audios`
columns) and where it came from; the conversation part differs: plain text (pt), a prompt and its answer (sft),
a prompt with a chosen and a rejected answer (rm, dpo), a prompt with one answer tagged desirable or not (kto),
and a prompt to generate from with its reference answer when the row has one (ppo, grpo). data/kinds.py maps
each stage to its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

Role = Literal["user", "assistant", "function", "observation"]

# how our roles appear to Hugging Face chat templates (what chat, predict and the API render)
HF_ROLES = {"user": "user", "assistant": "assistant", "function": "assistant", "observation": "tool"}
Conversation = tuple[str, tuple["Message", ...]]  # (" with the chosen answer" or "", the messages)


@dataclass(frozen=True)
class Message:
    """One turn of a conversation (LLaMA-Factory's roles: user, assistant, function, observation)."""

    role: Role
    content: str


@dataclass(frozen=True, kw_only=True)
class Context:
    """What every kind carries besides its conversation: where it came from, system prompt, tools and media."""

    dataset: str
    row: int
    system: str = ""
    tools: str = ""
    images: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    audios: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TextExample(Context):
    """Pre-training text (stage pt): no roles, no template."""

    text: str

    def conversations(self) -> list[Conversation]:
        """The text as one user message (what the media check counts placeholders in)."""
        return [("", (Message("user", self.text),))]


@dataclass(frozen=True, kw_only=True)
class Supervised(Context):
    """A conversation that ends with the answer to learn (stage sft).

    prompt: the turns before the response (odd count, user/observation turns at even positions).
    """

    prompt: tuple[Message, ...]
    response: Message

    @classmethod
    def chat(cls, messages: tuple[Message, ...], dataset: str, row: int, system: str = "") -> Supervised:
        """A supervised example from a whole conversation that ends with the assistant's answer."""
        return cls(prompt=tuple(messages[:-1]), response=messages[-1], dataset=dataset, row=row, system=system)

    @property
    def messages(self) -> tuple[Message, ...]:
        """The conversation with its response: what SFT trains on."""
        return self.prompt + (self.response,)

    def as_dicts(self, default_system: str | None = None) -> list[dict[str, str]]:
        """The conversation as Hugging Face chat templates take it; the system message first when there is one."""
        system = self.system or default_system or ""
        head = [{"role": "system", "content": system}] if system else []
        return head + [{"role": HF_ROLES[m.role], "content": m.content} for m in self.messages]

    def conversations(self) -> list[Conversation]:
        """The one conversation the trainer sees."""
        return [("", self.messages)]

    def prompt_dicts(self, default_system: str | None = None) -> list[dict[str, str]]:
        """The turns before the response, as as_dicts gives them: what a model answers at predict time."""
        return self.as_dicts(default_system)[:-1]

    @property
    def reference(self) -> str:
        """The response: the reference answer when the row is predicted."""
        return self.response.content


@dataclass(frozen=True, kw_only=True)
class Pair(Context):
    """A prompt with a chosen and a rejected answer (stages rm and dpo; LLaMA-Factory's `ranking: true`)."""

    prompt: tuple[Message, ...]
    chosen: Message
    rejected: Message

    def conversations(self) -> list[Conversation]:
        """The prompt with each answer."""
        return [(" with the chosen answer", self.prompt + (self.chosen,)),
                (" with the rejected answer", self.prompt + (self.rejected,))]


@dataclass(frozen=True, kw_only=True)
class Feedback(Context):
    """A prompt with one answer tagged desirable (True) or undesirable (False): stage kto. Its KL partner (another
    example's answer to this prompt) is chosen when a batch is encoded (data/encode/feedback.py)."""

    prompt: tuple[Message, ...]
    response: Message
    desirable: bool
    kl_response: Message | None = None

    def conversations(self) -> list[Conversation]:
        """The one conversation the trainer sees."""
        return [("", self.prompt + (self.response,))]


@dataclass(frozen=True, kw_only=True)
class PromptOnly(Context):
    """A prompt to generate from (stages ppo and grpo), with the row's reference answer when it has one."""

    prompt: tuple[Message, ...]
    answer: Message | None = None

    def conversations(self) -> list[Conversation]:
        """The prompt, with the reference answer when there is one."""
        return [("", self.prompt + ((self.answer,) if self.answer is not None else ()))]

    def prompt_dicts(self, default_system: str | None = None) -> list[dict[str, str]]:
        """The prompt as Hugging Face chat templates take it; the system message first when there is one."""
        system = self.system or default_system or ""
        head = [{"role": "system", "content": system}] if system else []
        return head + [{"role": HF_ROLES[m.role], "content": m.content} for m in self.prompt]

    @property
    def reference(self) -> str:
        """The reference answer, or '' for a row without one."""
        return self.answer.content if self.answer is not None else ""


Example = Union[TextExample, Supervised, Pair, Feedback, PromptOnly]
