"""Per-sequence log-probabilities of the labelled tokens: what the preference stages (dpo, kto), their reference
model and the preference evaluation compare.

Only labelled positions reach the output head (as in train/loss.py), in chunks, so no [batch, length, vocabulary]
logits are ever stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch

from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.train.loss import CHUNK_TOKENS, labelled_hidden

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel


def token_logps(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(label) of each labelled position ([n] float32), chunk by chunk, without gradient."""
    compute_dtype = (torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type)
                     else torch.promote_types(hidden.dtype, weight.dtype))
    w = weight.to(compute_dtype)
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], CHUNK_TOKENS):
        logits = (hidden[start:start + CHUNK_TOKENS].to(compute_dtype) @ w.T).float()
        picked = logits.gather(1, labels[start:start + CHUNK_TOKENS, None])[:, 0]
        out[start:start + CHUNK_TOKENS] = picked - torch.logsumexp(logits, dim=-1)
    return out


def chunk_logps(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                compute_dtype: torch.dtype) -> torch.Tensor:
    """log p(label) of one chunk of labelled positions."""
    logits = (hidden.to(compute_dtype) @ weight.to(compute_dtype).T).float()
    return logits.gather(1, labels[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)


def token_logps_with_grad(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(label) of each labelled position ([n] float32) with gradient; each chunk's logits are recomputed in
    the backward pass instead of being stored (activation checkpointing per chunk)."""
    from torch.utils.checkpoint import checkpoint

    compute_dtype = (torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type)
                     else torch.promote_types(hidden.dtype, weight.dtype))
    parts = [checkpoint(chunk_logps, hidden[i:i + CHUNK_TOKENS], weight, labels[i:i + CHUNK_TOKENS], compute_dtype,
                        use_reentrant=False) for i in range(0, hidden.shape[0], CHUNK_TOKENS)]
    return torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)


class LogpsContext(Protocol):
    """What FrozenHeadLogps keeps on autograd's context: d logp / d hidden of every token, made in forward."""

    saved_tensors: tuple[torch.Tensor]

    def save_for_backward(self, *tensors: torch.Tensor) -> None:
        """Keep tensors for the backward pass."""
        ...


class FrozenHeadLogps(torch.autograd.Function):
    """log p(label) of each labelled position for a frozen output head, with each token's hidden-state gradient
    (onehot - softmax) @ weight made in forward: [n, hidden] kept instead of recomputing [n, vocabulary] logits in
    the backward pass (the upstream gradient is one number per token, applied in backward)."""

    @staticmethod
    def forward(ctx: LogpsContext, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                compute_dtype: torch.dtype) -> torch.Tensor:
        w = weight.to(compute_dtype)
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        grad = torch.empty_like(hidden)
        for start in range(0, hidden.shape[0], CHUNK_TOKENS):
            y = labels[start:start + CHUNK_TOKENS]
            logits = (hidden[start:start + CHUNK_TOKENS].to(compute_dtype) @ w.T).float()
            total = torch.logsumexp(logits, dim=-1)
            # token_logps' arithmetic, so the policy and a reference with the same weights agree to the last bit
            out[start:start + CHUNK_TOKENS] = logits.gather(1, y[:, None])[:, 0] - total
            step = logits.sub_(total[:, None]).exp_().neg_()  # -softmax, in place
            step[torch.arange(y.shape[0], device=y.device), y] += 1.0
            grad[start:start + CHUNK_TOKENS] = (step.to(compute_dtype) @ w).to(hidden.dtype)
        ctx.save_for_backward(grad)
        return out

    @staticmethod
    def backward(ctx: LogpsContext, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        (grad,) = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype)[:, None], None, None, None


def token_rows(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(the sequence of every labelled token, its position in that sequence's shifted labels, the number of
    sequences) in token order: the rows of a padded batch, or the segments of a packed one (cu_seq_lens_q)."""
    labels = batch["labels"]
    keep = labels[:, 1:] != IGNORE_INDEX
    bounds = batch.get("cu_seq_lens_q")
    if bounds is None or labels.shape[0] != 1:
        rows = torch.arange(keep.shape[0], device=keep.device)[:, None].expand_as(keep)[keep]
        local = torch.arange(keep.shape[1], device=keep.device)[None].expand_as(keep)[keep]
        return rows, local, keep.shape[0]
    bounds = bounds.to(device=keep.device, dtype=torch.long)
    index = torch.arange(keep.shape[1], device=keep.device)[keep[0]]
    rows = torch.searchsorted(bounds[1:], index + 1, right=True)  # the segment holding each label
    return rows, index - bounds[rows], bounds.shape[0] - 1


def label_rows(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The sequence of every labelled token (token_rows without the positions)."""
    return token_rows(batch)[0]


def labelled_logps(model: PreTrainedModel | PeftModel,
                   batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p of every labelled token [n] with gradient, the batch row of each [n]) in row-major order."""
    hidden, labels, weight = labelled_hidden(model, batch)
    rows = label_rows(batch)
    if weight.requires_grad or not torch.is_grad_enabled() or not hidden.requires_grad:
        return token_logps_with_grad(hidden, weight, labels), rows
    compute_dtype = (torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type)
                     else torch.promote_types(hidden.dtype, weight.dtype))
    with torch.autocast(hidden.device.type, enabled=False):
        return FrozenHeadLogps.apply(hidden, weight, labels, compute_dtype), rows


def length_weights(batch: dict[str, torch.Tensor], alpha: float) -> torch.Tensor:
    """LD-DPO's weight of every labelled token of a pair batch (chosen sequences, then rejected): 1 up to the
    shorter side's answer length counted from the sequence's first labelled position, alpha past it
    (LLaMA-Factory's get_batch_logps with ld_alpha)."""
    rows, local, count = token_rows(batch)
    lengths = torch.zeros(count, dtype=torch.long, device=rows.device).index_add(0, rows, torch.ones_like(rows))
    first = torch.full((count,), local.numel() + (int(local.max()) if local.numel() else 0) + 1,
                       dtype=torch.long, device=rows.device).scatter_reduce(0, rows, local, "amin")
    half = count // 2
    shorter = torch.minimum(lengths[:half], lengths[half:]).repeat(2)
    front = local < (first + shorter)[rows]
    return torch.where(front, 1.0, alpha).float()


def per_row_sums(values: torch.Tensor, rows: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[batch] sums of per-token values by their row (differentiable)."""
    return torch.zeros(batch_size, dtype=values.dtype, device=values.device).index_add(0, rows, values)


@torch.no_grad()
def sequence_logps(model: PreTrainedModel | PeftModel,
                   batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of log p over each sequence's labelled tokens, number of labelled tokens) for a padded batch of
    input_ids / attention_mask / labels (IGNORE_INDEX where not scored), or a packed one (cu_seq_lens_q: one value
    per segment); both [sequences], float32 and long."""
    hidden, labels, weight = labelled_hidden(model, batch)
    per_token = token_logps(hidden, weight, labels)
    rows, _, count = token_rows(batch)
    return per_row_sums(per_token, rows, count), per_row_sums(torch.ones_like(rows), rows, count)
