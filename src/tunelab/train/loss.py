"""Causal-LM loss computed only where there are labels, in chunks, without storing full-vocabulary logits.

The standard loss materialises fp32 logits for every position (batch x length x vocabulary) and runs a
log-softmax forward and backward over them. Here only labelled positions reach the output head, and
each chunk's gradient (softmax - one-hot) is turned into the hidden-state gradient right away, so the
logits of a chunk are freed before the next one is computed. The value is the same cross-entropy.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from tunelab.data.tokenize import IGNORE_INDEX
from tunelab.model.adapters import base_model

CHUNK_TOKENS = 128  # measured on CPU: chunks of 128 rows keep the fp32 logits in cache (2048: 1.7x slower)


def supports_selective_loss(model: Any) -> bool:
    """True for decoder + output-head models whose logits need no post-processing (no soft-capping, no bias)."""
    base = base_model(model)
    config = getattr(base, "config", None)
    if config is None or getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return False
    try:
        head = base.get_output_embeddings()
        return base.get_decoder() is not None and isinstance(head, torch.nn.Linear) and head.bias is None
    except (AttributeError, NotImplementedError):
        return False


class ChunkedCrossEntropy(torch.autograd.Function):
    """sum(cross_entropy(hidden @ weight.T, labels)) with the gradient computed chunk by chunk in forward."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                compute_dtype: torch.dtype) -> torch.Tensor:
        w = weight.to(compute_dtype)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        for start in range(0, hidden.shape[0], CHUNK_TOKENS):
            h = hidden[start:start + CHUNK_TOKENS].to(compute_dtype)
            y = labels[start:start + CHUNK_TOKENS]
            log_probs = torch.log_softmax((h @ w.T).float(), dim=-1)  # one fused pass over the chunk
            total -= log_probs.gather(1, y[:, None]).sum()
            grad = log_probs.exp_()  # softmax, in place
            grad[torch.arange(y.shape[0], device=y.device), y] -= 1.0
            grad = grad.to(compute_dtype)
            if grad_hidden is not None:
                grad_hidden[start:start + CHUNK_TOKENS] = (grad @ w).to(hidden.dtype)
            if grad_weight is not None:
                grad_weight += (grad.T @ h).float()
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        grad_hidden, grad_weight = ctx.saved_tensors
        scale = grad_output.to(torch.float32)
        out_hidden = (grad_hidden * scale.to(grad_hidden.dtype)) if grad_hidden is not None else None
        out_weight = (grad_weight * scale).to(ctx.weight_dtype) if grad_weight is not None else None
        return out_hidden, out_weight, None, None


def chunked_cross_entropy_sum(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of token cross-entropies of hidden @ weight.T against labels, in the autocast dtype when active."""
    if torch.is_autocast_enabled(hidden.device.type):
        compute_dtype = torch.get_autocast_dtype(hidden.device.type)
    else:
        compute_dtype = torch.promote_types(hidden.dtype, weight.dtype)
    if not torch.is_grad_enabled() or not (hidden.requires_grad or weight.requires_grad):
        w = weight.to(compute_dtype)
        return sum((F.cross_entropy((hidden[i:i + CHUNK_TOKENS].to(compute_dtype) @ w.T).float(),
                                    labels[i:i + CHUNK_TOKENS], reduction="sum")
                    for i in range(0, hidden.shape[0], CHUNK_TOKENS)), torch.zeros((), device=hidden.device))
    with torch.autocast(hidden.device.type, enabled=False):
        return ChunkedCrossEntropy.apply(hidden, weight, labels, compute_dtype)


def selective_loss(model: Any, inputs: dict[str, torch.Tensor], num_items: torch.Tensor | int | None) -> torch.Tensor:
    """Sum of token cross-entropies over labelled positions, divided by num_items (or their count).

    Prompt and padding positions never reach the output head, so their logits are never computed.
    """
    base = base_model(model)
    model_inputs = {key: value for key, value in inputs.items() if key != "labels"}
    mask = model_inputs.get("attention_mask")
    if mask is not None and bool(mask.all()):
        model_inputs["attention_mask"] = None  # no padding: let attention take its causal fast path
    hidden = base.get_decoder()(**model_inputs, use_cache=False).last_hidden_state
    labels = inputs["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    total = chunked_cross_entropy_sum(hidden[:, :-1][keep], base.get_output_embeddings().weight, labels[keep])
    denominator = num_items if num_items is not None else keep.sum().clamp(min=1)
    return total / denominator
