"""PPO's arithmetic, as TRL's PPOTrainer (0.8-0.9, the one LLaMA-Factory 0.9.5 drives) computes it: masked
statistics, the adaptive KL coefficient, running score moments, KL-penalised per-token rewards, GAE advantages and
the clipped policy and value losses. Pure functions of tensors; the trainer (train/ppo/trainer.py) calls them.

Tensors here are aligned on the response: [rows, response positions], with `mask` 1 on real response tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PpoHyper:
    """TRL PPOConfig's defaults that LLaMA-Factory leaves as they are (no config key sets them)."""

    gamma: float = 1.0  # discount
    lam: float = 0.95  # GAE lambda
    cliprange: float = 0.2  # policy ratio clip
    cliprange_value: float = 0.2  # value prediction clip around the rollout's values
    vf_coef: float = 0.1  # weight of the value loss in the total loss
    init_kl_coef: float = 0.2
    horizon: float = 10000.0  # adaptive KL controller horizon (in samples)
    ratio_threshold: float = 10.0  # a mini-batch whose mean ratio exceeds this is skipped (loss x 0)


@dataclass(frozen=True)
class Moments:
    """Running mean/std of the reward scores (ppo_score_norm), TRL's RunningMoments fields."""

    mean: float = 0.0
    std: float = 1.0
    var: float = 1.0
    count: float = 1e-24


@dataclass(frozen=True)
class PpoLoss:
    """One mini-batch's losses: `total` = policy + vf_coef x value (the one backpropagated); floats for logging."""

    total: torch.Tensor
    policy: float
    value: float
    ratio: float
    clipfrac: float


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where mask is 1."""
    return (values * mask).sum() / mask.sum()


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance over the masked positions, Bessel-corrected unless unbiased is False."""
    centered = values - masked_mean(values, mask)
    variance = masked_mean(centered**2, mask)
    if unbiased:
        count = mask.sum()
        if count < 2:
            raise ValueError("whitening needs at least 2 response tokens in the experience buffer; raise "
                             "per_device_train_batch_size, gradient_accumulation_steps or max_new_tokens")
        variance = variance * count / (count - 1)
    return variance


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(values - mean) / std over the masked positions; the mean is added back when shift_mean is False."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    return whitened if shift_mean else whitened + mean


def adaptive_kl(value: float, current_kl: float, target: float, horizon: float, n_steps: int) -> float:
    """The KL coefficient after one step (Ziegler et al.'s controller): raised when the KL is above target, lowered
    below it, by at most 20% x n_steps / horizon."""
    error = min(max(current_kl / target - 1.0, -0.2), 0.2)
    return value * (1.0 + error * n_steps / horizon)


def update_moments(moments: Moments, scores: torch.Tensor) -> Moments:
    """The running moments after a batch of scores (parallel variance merge, as TRL's RunningMoments.update)."""
    count = scores.numel()
    var, mean = torch.var_mean(scores.float(), unbiased=False)
    delta = float(mean) - moments.mean
    total = moments.count + count
    old_sum = moments.var * moments.count + delta**2 * moments.count * count / total
    new_var = (old_sum + float(var) * count) / total
    std = (new_var * total / (total - 1)) ** 0.5 if total > 1 else 1.0
    return Moments(mean=moments.mean + delta * count / total, std=std, var=new_var, count=total)


def normalise_scores(scores: torch.Tensor, moments: Moments) -> torch.Tensor:
    """ppo_score_norm: scores centred and scaled by the running moments (TRL use_score_scaling + use_score_norm)."""
    eps = torch.finfo(scores.dtype).eps
    return (scores - moments.mean) / (moments.std + eps)


def kl_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
               kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-token rewards, per-token KL): -kl_coef x (logp - ref logp) at every token, plus the score at each
    row's last response token."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask * torch.arange(1, mask.shape[1] + 1, device=mask.device)).argmax(dim=1)
    rewards[torch.arange(mask.shape[0], device=mask.device), last] += scores
    return rewards, kl


def gae(values: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor, hyper: PpoHyper,
        whiten_rewards: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalised advantage estimation; advantages are whitened over the masked
    positions, returns = raw advantages + values."""
    values, rewards = values * mask, rewards * mask
    if whiten_rewards:
        rewards = masked_whiten(rewards, mask, shift_mean=False)
    last = torch.zeros_like(values[:, 0])
    reversed_advantages = []
    length = rewards.shape[1]
    for t in reversed(range(length)):
        next_values = values[:, t + 1] if t < length - 1 else torch.zeros_like(last)
        delta = rewards[:, t] + hyper.gamma * next_values - values[:, t]
        last = delta + hyper.gamma * hyper.lam * last
        reversed_advantages.append(last)
    advantages = torch.stack(reversed_advantages[::-1], dim=1)
    returns = advantages + values
    return masked_whiten(advantages, mask).detach(), returns.detach()


def ppo_loss(old_logprobs: torch.Tensor, old_values: torch.Tensor, logprobs: torch.Tensor, vpreds: torch.Tensor,
             mask: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor, hyper: PpoHyper) -> PpoLoss:
    """The clipped surrogate policy loss plus vf_coef x the clipped value loss (0 when the ratio runs away)."""
    vclipped = torch.clamp(vpreds, old_values - hyper.cliprange_value, old_values + hyper.cliprange_value)
    value_loss = 0.5 * masked_mean(torch.max((vpreds - returns) ** 2, (vclipped - returns) ** 2), mask)
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - hyper.cliprange, 1.0 + hyper.cliprange)
    policy_loss = masked_mean(torch.max(unclipped, clipped), mask)
    clipfrac = float(masked_mean((clipped > unclipped).float(), mask).detach())
    total = policy_loss + hyper.vf_coef * value_loss
    mean_ratio = float(masked_mean(ratio.detach(), mask))
    if mean_ratio > hyper.ratio_threshold:  # TRL skips such a mini-batch rather than take a huge step
        total = total * 0.0
        return PpoLoss(total, 0.0, 0.0, mean_ratio, clipfrac)
    return PpoLoss(total, float(policy_loss.detach()), float(value_loss.detach()), mean_ratio, clipfrac)
