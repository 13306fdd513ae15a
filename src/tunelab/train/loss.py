"""Causal-LM loss computed only where there are labels, without the full-vocabulary logits of masked tokens."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from tunelab.data.tokenize import IGNORE_INDEX


def base_model(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports_selective_loss(model: Any) -> bool:
    """True for decoder + output-head models whose logits need no post-processing (no soft-capping)."""
    base = base_model(model)
    config = getattr(base, "config", None)
    if config is None or getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return False
    try:
        return base.get_decoder() is not None and base.get_output_embeddings() is not None
    except (AttributeError, NotImplementedError):
        return False


def selective_loss(model: Any, inputs: dict[str, torch.Tensor], num_items: torch.Tensor | int | None) -> torch.Tensor:
    """Sum of token cross-entropies over labelled positions, divided by num_items (or their count).

    Prompt and padding positions never reach the output head, so their logits are never computed.
    """
    base = base_model(model)
    attention_mask = inputs.get("attention_mask")
    if attention_mask is not None and bool(attention_mask.all()):
        attention_mask = None  # no padding: let attention take its causal fast path
    hidden = base.get_decoder()(input_ids=inputs["input_ids"], attention_mask=attention_mask,
                                use_cache=False).last_hidden_state
    labels = inputs["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    selected = hidden[:, :-1][keep]
    logits = base.get_output_embeddings()(selected).float()
    total = F.cross_entropy(logits, labels[keep], reduction="sum")
    denominator = num_items if num_items is not None else keep.sum().clamp(min=1)
    return total / denominator
