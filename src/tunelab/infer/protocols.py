"""What the inference code calls on a model, as a Protocol; the tokenizer's is data/tokenizer.py's (one surface for
encoding and decoding), re-exported here.

Hugging Face tokenizers and causal LMs (plain or PEFT-wrapped) satisfy them; tests pass tiny stand-ins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from tunelab.data.tokenizer import Tokenizer

if TYPE_CHECKING:
    import torch
    from transformers import GenerationConfig, PretrainedConfig
    from transformers.modeling_outputs import CausalLMOutputWithPast

__all__ = ["CausalLM", "Tokenizer"]


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
