"""Causal-LM loss computed only where there are labels, in chunks, without storing full-vocabulary logits.

The standard loss materialises fp32 logits for every position (batch x length x vocabulary) and runs a
log-softmax forward and backward over them. Here only labelled positions reach the output head, and
each chunk's gradient (softmax - one-hot) is turned into the hidden-state gradient right away, so the
logits of a chunk are freed before the next one is computed. The value is the same cross-entropy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F

from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.model.adapters import base_model

if TYPE_CHECKING:  # imported where used: the CLI starts without loading transformers or peft
    from peft import PeftModel
    from transformers import PreTrainedModel

CHUNK_TOKENS = 128  # measured on CPU: chunks of 128 rows keep the fp32 logits in cache (2048: 1.7x slower)
WEIGHT_GRAD_TOKENS = 512  # rows of logit gradient staged per output-head weight-gradient GEMM (a trained head)
WEIGHT_GRAD_SLICE = 8192  # vocabulary rows per GEMM of a flush: each slice's product is added while in cache


def supports_selective_loss(model: PreTrainedModel | PeftModel) -> bool:
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


class WeightGradient:
    """The output head's gradient, sum over chunks of grad.T @ hidden, accumulated in float32.

    Each chunk's logit gradient is staged (in the compute dtype) until WEIGHT_GRAD_TOKENS rows are there, and
    then the staged rows are added in GEMMs of WEIGHT_GRAD_SLICE vocabulary rows: one [vocabulary, hidden] float32
    accumulation per WEIGHT_GRAD_TOKENS tokens instead of one per chunk (with a 49k vocabulary that pass costs more
    than the GEMM of a 128-token chunk), and no [vocabulary, hidden] product in the compute dtype beside the sum.
    Measured at 0.5B's shape (bench/README.md): 0.8x the time of one product per flush, and the loss's peak
    above the decoder's activations down from 554 to about 300 MiB.
    """

    def __init__(self, hidden: torch.Tensor, weight: torch.Tensor, compute_dtype: torch.dtype) -> None:
        rows = min(max(WEIGHT_GRAD_TOKENS, CHUNK_TOKENS), hidden.shape[0])
        self.hidden, self.dtype = hidden, compute_dtype
        self.staged = torch.empty(rows, weight.shape[0], dtype=compute_dtype, device=hidden.device)
        self.first, self.count = 0, 0  # hidden row of the first staged chunk, staged rows
        self.sum: torch.Tensor | None = None
        self.shape = weight.shape

    def add(self, grad: torch.Tensor, start: int) -> None:
        """Stage one chunk's logit gradient (rows start.. of hidden); flush when the stage is full."""
        if self.count + grad.shape[0] > self.staged.shape[0]:
            self.flush()
        if self.count == 0:
            self.first = start
        self.staged[self.count:self.count + grad.shape[0]] = grad
        self.count += grad.shape[0]

    def flush(self) -> None:
        """Add the staged chunks' part of the gradient to the float32 sum, a slice of the vocabulary at a time, and
        empty the stage."""
        if self.count == 0:
            return
        hidden = self.hidden[self.first:self.first + self.count].to(self.dtype)
        first = self.sum is None
        if self.sum is None:
            self.sum = torch.empty(self.shape, dtype=torch.float32, device=self.hidden.device)
        for row in range(0, self.shape[0], WEIGHT_GRAD_SLICE):
            part = self.staged[:self.count, row:row + WEIGHT_GRAD_SLICE].T @ hidden
            if first:
                self.sum[row:row + WEIGHT_GRAD_SLICE].copy_(part)
            else:
                self.sum[row:row + WEIGHT_GRAD_SLICE].add_(part)  # float32 += compute dtype, one pass
        self.count = 0

    def total(self) -> torch.Tensor:
        """The whole gradient, in float32 (zeros when no chunk was added)."""
        self.flush()
        if self.sum is None:
            return torch.zeros(self.shape, dtype=torch.float32, device=self.hidden.device)
        return self.sum


class ChunkContext(Protocol):
    """What ChunkedCrossEntropy reads and keeps on autograd's context: the gradients are made in forward."""

    needs_input_grad: tuple[bool, ...]  # hidden, weight, labels, compute_dtype
    saved_tensors: tuple[torch.Tensor | None, torch.Tensor | None]  # the gradients of hidden and weight
    weight_dtype: torch.dtype

    def save_for_backward(self, *tensors: torch.Tensor | None) -> None:
        """Keep tensors for the backward pass."""
        ...


class ChunkedCrossEntropy(torch.autograd.Function):
    """sum(cross_entropy(hidden @ weight.T, labels)) with the gradient computed chunk by chunk in forward."""

    @staticmethod
    def forward(ctx: ChunkContext, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                compute_dtype: torch.dtype) -> torch.Tensor:
        w = weight.to(compute_dtype)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        weight_grads = WeightGradient(hidden, weight, compute_dtype) if ctx.needs_input_grad[1] else None
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
            if weight_grads is not None:
                weight_grads.add(grad, start)
        grad_weight = weight_grads.total() if weight_grads is not None else None
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx: ChunkContext,
                 grad_output: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        grad_hidden, grad_weight = ctx.saved_tensors
        scale = grad_output.to(torch.float32)
        out_hidden = (grad_hidden * scale.to(grad_hidden.dtype)) if grad_hidden is not None else None
        out_weight = scaled(grad_weight, scale, ctx.weight_dtype) if grad_weight is not None else None
        return out_hidden, out_weight, None, None


def scaled(grad: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(grad * scale).to(dtype), rounded once, a slice of WEIGHT_GRAD_SLICE rows at a time: a multiply into an
    output of another dtype computes into a temporary of the input's dtype first, which for the whole float32
    head gradient would be one more [vocabulary, hidden] float32 tensor at the start of the backward pass."""
    out = torch.empty_like(grad, dtype=dtype)
    for row in range(0, grad.shape[0], WEIGHT_GRAD_SLICE):
        torch.mul(grad[row:row + WEIGHT_GRAD_SLICE], scale, out=out[row:row + WEIGHT_GRAD_SLICE])
    return out


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


def labelled_hidden(model: PreTrainedModel | PeftModel,
                    inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoder's last hidden states at the positions that predict a label, those labels, and the output
    head's weight: what every selective computation (loss, accuracy) starts from."""
    base = base_model(model)
    model_inputs = {key: value for key, value in inputs.items() if key != "labels"}
    mask = model_inputs.get("attention_mask")
    if mask is not None and bool(mask.all()):
        model_inputs["attention_mask"] = None  # no padding: let attention take its causal fast path
    hidden = base.get_decoder()(**model_inputs, use_cache=False).last_hidden_state
    labels = inputs["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    return hidden[:, :-1][keep], labels[keep], base.get_output_embeddings().weight


def selective_loss(model: PreTrainedModel | PeftModel, inputs: dict[str, torch.Tensor],
                   num_items: torch.Tensor | int | None) -> torch.Tensor:
    """Sum of token cross-entropies over labelled positions, divided by num_items (or their count).

    Prompt and padding positions never reach the output head, so their logits are never computed.
    """
    hidden, labels, weight = labelled_hidden(model, inputs)
    total = chunked_cross_entropy_sum(hidden, weight, labels)
    denominator = num_items if num_items is not None else max(labels.shape[0], 1)
    return total / denominator
