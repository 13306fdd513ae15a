"""GRPO's arithmetic: group-normalised advantages and the clipped policy loss with a k3 KL penalty (TRL 0.24's
GRPOTrainer with loss_type "grpo": each answer's token losses averaged, then the answers averaged).

All per-token tensors are flat ([n], the labelled tokens of the batch in row-major order) with `rows` giving each
token's batch row, as train/logps.labelled_logps returns them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tunelab.train.logps import per_row_sums

STD_EPSILON = 1e-4  # TRL's: keeps a group whose answers all scored the same at advantage 0


def group_advantages(rewards: torch.Tensor, group: int) -> torch.Tensor:
    """(r - mean of its group) / (standard deviation of its group + 1e-4), groups of `group` consecutive answers;
    the sample standard deviation (n - 1), as TRL's torch.std."""
    grouped = rewards.view(-1, group)
    mean = grouped.mean(dim=1, keepdim=True)
    std = grouped.std(dim=1, keepdim=True)
    return ((grouped - mean) / (std + STD_EPSILON)).reshape(-1)


def group_spread(rewards: torch.Tensor, group: int) -> torch.Tensor:
    """The mean over groups of each group's reward standard deviation (the logged reward_std)."""
    return rewards.view(-1, group).std(dim=1).mean()


@dataclass(frozen=True)
class LossParts:
    """The loss and what is logged with it: the mean KL per completion token."""

    loss: torch.Tensor
    kl: torch.Tensor


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(policy || reference) per token: exp(r - p) - (r - p) - 1, never negative."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
              advantages: torch.Tensor, rows: torch.Tensor, beta: float, epsilon: float) -> LossParts:
    """Clipped surrogate -min(ratio x A, clip(ratio, 1 - eps, 1 + eps) x A) plus beta x k3 KL per token, averaged
    over each answer's tokens, then over the answers."""
    ratio = torch.exp(logps - old_logps)
    advantage = advantages[rows]
    per_token = -torch.min(ratio * advantage, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * advantage)
    kl = logps.new_zeros(())
    if ref_logps is not None and beta != 0.0:
        per_token_kl = k3_kl(logps, ref_logps)
        per_token = per_token + beta * per_token_kl
        kl = per_token_kl.detach().mean() if per_token_kl.numel() else kl
    size = advantages.shape[0]
    counts = per_row_sums(torch.ones_like(logps), rows, size).clamp(min=1.0)
    return LossParts(loss=(per_row_sums(per_token, rows, size) / counts).mean(), kl=kl)
