"""The preference losses of stages dpo and kto, as pure functions of per-sequence log-probabilities.

Each formula is LLaMA-Factory 0.9.5's (train/dpo/trainer.py, train/kto/trainer.py) over TRL's DPOTrainer.dpo_loss
and KTOTrainer.kto_loss. kto_pair is TRL 0.8's formula: TRL 0.24 removed it, so LLaMA-Factory 0.9.5 on TRL 0.24
stops with "Unknown loss type" where tunelab trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tunelab.config.schema import PrefSection

REFERENCE_FREE = ("orpo", "simpo")  # losses computed without a reference model
LENGTH_NORMALISED = ("ipo", "orpo", "simpo")  # losses on the mean log-probability per token instead of the sum


@dataclass(frozen=True)
class PairLogps:
    """Per-pair log-probabilities: the policy's (with gradient) and the reference's (none for orpo and simpo).
    chosen/rejected are sums, or means per token for LENGTH_NORMALISED losses; chosen_avg is always the mean."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_avg: torch.Tensor
    ref_chosen: torch.Tensor | None = None
    ref_rejected: torch.Tensor | None = None


class RunningMean:
    """BCO's baseline: the running mean of the batches' mean rewards (TRL's RunningMoments, mean only; the count
    starts at 1e-24 as there, so the first batch sets the mean)."""

    def __init__(self, mean: float = 0.0, count: float = 1e-24) -> None:
        self.mean = mean
        self.count = count

    def update(self, value: float, count: int = 1) -> float:
        """Add the mean of count batches (one per process) and return the new running mean."""
        total = self.count + count
        self.mean += (value - self.mean) * count / total
        self.count = total
        return self.mean


def sigmoid_loss(logits: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """DPO: -log sigmoid(beta * logits), smoothed towards the reversed label by label_smoothing (cDPO)."""
    return (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
            - F.logsigmoid(-beta * logits) * label_smoothing)


def hinge_loss(logits: torch.Tensor, beta: float) -> torch.Tensor:
    """SLiC: relu(1 - beta * logits)."""
    return torch.relu(1 - beta * logits)


def ipo_loss(logits: torch.Tensor, beta: float) -> torch.Tensor:
    """IPO: (logits - 1 / (2 beta))^2, on length-normalised log-probabilities."""
    return (logits - 1 / (2 * beta)) ** 2


def kto_pair_loss(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float) -> torch.Tensor:
    """Paired KTO (TRL 0.8): each side against the other side's batch KL estimate (mean log-ratio, at least 0);
    2n values, chosen ones first."""
    chosen_kl = chosen_logratios.mean().clamp(min=0)
    rejected_kl = rejected_logratios.mean().clamp(min=0)
    return torch.cat((1 - torch.sigmoid(beta * (chosen_logratios - rejected_kl)),
                      1 - torch.sigmoid(beta * (chosen_kl - rejected_logratios))), 0)


def orpo_loss(chosen_avg: torch.Tensor, rejected_avg: torch.Tensor, beta: float) -> torch.Tensor:
    """ORPO: -chosen_avg (the SFT term) + beta * -log sigmoid(log odds(chosen) - log odds(rejected)), where
    log odds(p) = log p - log(1 - p) on the mean log-probabilities."""
    log_odds = (chosen_avg - rejected_avg) - (torch.log1p(-torch.exp(chosen_avg))
                                              - torch.log1p(-torch.exp(rejected_avg)))
    return -chosen_avg + beta * -F.logsigmoid(log_odds)


def simpo_loss(chosen_avg: torch.Tensor, rejected_avg: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """SimPO: -log sigmoid(beta * (chosen_avg - rejected_avg - gamma / beta))."""
    return -F.logsigmoid(beta * ((chosen_avg - rejected_avg) - gamma / beta))


def bco_loss(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float,
             delta: float) -> torch.Tensor:
    """BCO: -log sigmoid(beta * chosen_logratio - delta) - log sigmoid(-(beta * rejected_logratio - delta)), delta
    the running mean of the rewards."""
    return (-F.logsigmoid(beta * chosen_logratios - delta)
            - F.logsigmoid(-(beta * rejected_logratios - delta)))


def batch_reward_mean(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float) -> float:
    """The batch's mean reward over both sides: what BCO's running mean is updated with."""
    return float(torch.cat((chosen_logratios, rejected_logratios)).mean().detach() * beta)


def reference_losses(pref: PrefSection, logps: PairLogps) -> torch.Tensor:
    """Per-pair loss of a loss measured against the reference (sigmoid, hinge, ipo, kto_pair)."""
    assert logps.ref_chosen is not None and logps.ref_rejected is not None, "this loss needs reference logps"
    chosen_logratios = logps.chosen - logps.ref_chosen
    rejected_logratios = logps.rejected - logps.ref_rejected
    logits = (logps.chosen - logps.rejected) - (logps.ref_chosen - logps.ref_rejected)
    beta = pref.pref_beta
    if pref.pref_loss == "sigmoid":
        return sigmoid_loss(logits, beta, pref.dpo_label_smoothing)
    if pref.pref_loss == "hinge":
        return hinge_loss(logits, beta)
    if pref.pref_loss == "ipo":
        return ipo_loss(logits, beta)
    return kto_pair_loss(chosen_logratios, rejected_logratios, beta)


def dpo_losses(pref: PrefSection, logps: PairLogps,
               bco_delta: Callable[[float], float] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-pair losses, chosen rewards, rejected rewards) of pref_loss with pref_bco_weight and pref_ftx mixed
    in as LLaMA-Factory does; bco_delta(batch mean reward) updates BCO's running mean and returns it."""
    beta = pref.pref_beta
    if pref.pref_loss in REFERENCE_FREE:
        if pref.pref_loss == "orpo":
            losses = orpo_loss(logps.chosen, logps.rejected, beta)
        else:
            losses = simpo_loss(logps.chosen, logps.rejected, beta, pref.simpo_gamma)
        chosen_rewards, rejected_rewards = beta * logps.chosen.detach(), beta * logps.rejected.detach()
    else:
        assert logps.ref_chosen is not None and logps.ref_rejected is not None
        losses = reference_losses(pref, logps)
        chosen_logratios, rejected_logratios = logps.chosen - logps.ref_chosen, logps.rejected - logps.ref_rejected
        if pref.pref_bco_weight > 1e-6:
            assert bco_delta is not None, "pref_bco_weight needs the running mean"
            delta = bco_delta(batch_reward_mean(chosen_logratios, rejected_logratios, beta))
            bco = bco_loss(chosen_logratios, rejected_logratios, beta, delta)
            losses = (losses + bco * pref.pref_bco_weight) / (1.0 + pref.pref_bco_weight)
        chosen_rewards, rejected_rewards = beta * chosen_logratios.detach(), beta * rejected_logratios.detach()
    if pref.pref_ftx > 1e-6:
        # kto_pair has 2n losses: the n SFT terms broadcast over its chosen and rejected halves alike (LF's +=)
        sft = -logps.chosen_avg
        losses = losses + pref.pref_ftx * (sft.repeat(losses.shape[0] // sft.shape[0]) if losses.shape != sft.shape
                                           else sft)
    return losses, chosen_rewards, rejected_rewards


@dataclass(frozen=True)
class FeedbackLogps:
    """KTO's per-example log-probabilities (sums): desirable and undesirable examples apart, the KL partners of the
    whole batch, each for the policy and the reference; chosen_avg: the desirable ones' means per token."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    kl: torch.Tensor
    ref_chosen: torch.Tensor
    ref_rejected: torch.Tensor
    ref_kl: torch.Tensor
    chosen_avg: torch.Tensor


def kto_kl(policy_kl: torch.Tensor, ref_kl: torch.Tensor,
           across_processes: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """KTO's KL estimate: mean log-ratio of the KL partners, detached, averaged across processes, at least 0."""
    return across_processes((policy_kl - ref_kl).mean().detach()).clamp(min=0)


def kto_losses(pref: PrefSection, logps: FeedbackLogps, kl: torch.Tensor,
               batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the batch's KTO loss, chosen rewards, rejected rewards): weighted 1 - sigmoid(beta (logratio - kl)) for
    desirable and 1 - sigmoid(beta (kl - logratio)) for undesirable examples, their nan-mean, plus pref_ftx times
    the desirable examples' mean SFT loss scaled by batch_size / desirable count (LLaMA-Factory's rescaling)."""
    beta = pref.pref_beta
    chosen_logratios = logps.chosen - logps.ref_chosen
    rejected_logratios = logps.rejected - logps.ref_rejected
    losses = torch.cat((pref.kto_chosen_weight * (1 - torch.sigmoid(beta * (chosen_logratios - kl))),
                        pref.kto_rejected_weight * (1 - torch.sigmoid(beta * (kl - rejected_logratios)))), 0)
    loss = losses.nanmean()
    if pref.pref_ftx > 1e-6 and logps.chosen.shape[0] > 0:
        loss = loss + pref.pref_ftx * (-logps.chosen_avg).nanmean() / logps.chosen.shape[0] * batch_size
    return loss, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()
