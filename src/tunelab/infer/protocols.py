"""What the inference code calls on a tokenizer and a model: the small surface it relies on, as Protocols.

Hugging Face tokenizers and causal LMs (plain or PEFT-wrapped) satisfy them; tests pass tiny stand-ins.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch
    from transformers import GenerationConfig, PretrainedConfig
    from transformers.modeling_outputs import CausalLMOutputWithPast


class Tokenizer(Protocol):
    """A Hugging Face tokenizer: text to ids, ids to text, the chat template and the special ids."""

    eos_token_id: int | None
    pad_token_id: int | None
    chat_template: str | dict[str, str] | None

    def __call__(self, text: str, add_special_tokens: bool = True) -> Mapping[str, list[int]]:
        """Token ids of text (under 'input_ids')."""
        ...

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of token ids."""
        ...


class CausalLM(Protocol):
    """A Hugging Face causal language model (plain or wrapped in PEFT) in inference."""

    training: bool
    config: PretrainedConfig
    generation_config: GenerationConfig | None

    def __call__(self, *, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                 past_key_values: object, use_cache: bool, **extra: int) -> CausalLMOutputWithPast:
        """One forward pass; logits and the updated cache."""
        ...

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The weights (the first one tells the device)."""
        ...

    def eval(self) -> CausalLM:
        """Switch to inference mode (no dropout)."""
        ...

    def train(self, mode: bool = True) -> CausalLM:
        """Switch training mode back."""
        ...
