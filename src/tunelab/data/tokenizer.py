"""The tokenizer as tunelab uses it (data, infer): the few attributes and methods of a transformers tokenizer we call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Tokenizer(Protocol):
    """What encoding, packing, rendering and decoding call on a Hugging Face tokenizer (PreTrainedTokenizerBase)."""

    bos_token: str | None
    eos_token: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int | None
    chat_template: str | dict[str, str] | None

    def __call__(self, text: str | list[str], add_special_tokens: bool = ...) -> dict[str, list]:
        """Token ids of a text or a batch of texts (the `input_ids` key)."""
        ...

    def __len__(self) -> int:
        """The vocabulary size, added tokens included."""
        ...

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]:
        """Token ids of one text."""
        ...

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = ...) -> str:
        """The text of some token ids."""
        ...

    def convert_tokens_to_ids(self, token: str) -> int:
        """The id of a named token."""
        ...

    def get_vocab(self) -> dict[str, int]:
        """Token -> id."""
        ...

    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: object) -> str | list[int]:
        """The chat template applied to messages."""
        ...
