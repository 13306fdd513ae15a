"""Attention over packed sequences: several examples in one row, each attending only to itself.

The padding-free collator concatenates a batch into one row and passes `cu_seq_lens_q/k` (cumulative
example lengths, flash-attention's varlen convention) with position ids that restart per example.
Here each example's slice runs through SDPA with `is_causal=True`, so no padding is computed, no
mask is materialised, and the causal kernels skip the upper triangle. On a GPU with flash-attention
installed, transformers' own `flash_attention_2` reads the same arguments.
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "tunelab_packed_sdpa"
NATIVE_VARLEN = ("flash_attention_2", "flash_attention_3")  # read cu_seq_lens_q/k themselves


def packed_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          **kwargs: Any) -> tuple[torch.Tensor, None]:
    """SDPA per packed example (query/key/value: [1, heads, tokens, dim]); plain SDPA without cu_seq_lens."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.pop("cu_seq_lens_q", None)
    for name in ("cu_seq_lens_k", "max_length_q", "max_length_k"):
        kwargs.pop(name, None)
    if bounds is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    edges = bounds.tolist()
    outputs = [sdpa_attention_forward(module, query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
                                      None, dropout=dropout, scaling=scaling, is_causal=True)[0]
               for start, end in zip(edges[:-1], edges[1:]) if end > start]
    return torch.cat(outputs, dim=1), None


def register() -> str:
    """Make the packed attention selectable by name (idempotent); returns the name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_sdpa_attention)
    return NAME


def use_packed_attention(model: Any) -> bool:
    """Switch a model whose attention is sdpa or eager to the packed SDPA attention (flash-attention, which
    reads cu_seq_lens itself, stays as it is); False if it cannot take packed rows."""
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", None)
    if implementation in NATIVE_VARLEN:
        return True
    if implementation not in ("sdpa", "eager", NAME):
        return False
    try:
        model.set_attn_implementation(register())
    except (ValueError, AttributeError, NotImplementedError):
        return False
    return True


def uses_packed_attention(model: Any) -> bool:
    """True when the model (or the one under a PEFT wrapper) takes padding-free packed rows: the packed SDPA
    attention, or flash-attention's varlen path."""
    from tunelab.model.adapters import base_model

    implementation = getattr(getattr(base_model(model), "config", None), "_attn_implementation", None)
    return implementation == NAME or implementation in NATIVE_VARLEN
