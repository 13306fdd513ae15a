"""Direct preference optimisation and its loss family (pref_loss: sigmoid, hinge, ipo, kto_pair, orpo, simpo), with
LLaMA-Factory 0.9.5's pref_ftx, pref_bco_weight, dpo_label_smoothing, simpo_gamma and ld_alpha.

One forward of the chosen and rejected rows together (PairCollator: chosen rows first), only labelled positions
reaching the output head, and one forward of the reference without gradient (with LoRA: the adapter disabled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from tunelab.config.schema import PrefSection
from tunelab.data.bundle import DataBundle
from tunelab.data.collate import PackedPairCollator, PairCollator
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.model.load import ModelBundle
from tunelab.train.logps import length_weights, per_row_sums, token_rows
from tunelab.train.pref_loss import LENGTH_NORMALISED, PairLogps, dpo_losses
from tunelab.train.preference import Figures, PreferenceTrainer
from tunelab.train.trainer import Batch, TrainerOptions

if TYPE_CHECKING:
    from transformers import TrainerCallback, TrainingArguments


def split_pairs(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) halves of a pair batch's per-row values."""
    half = values.shape[0] // 2
    return values[:half], values[half:]


def pair_figures(losses: torch.Tensor, logps: PairLogps, chosen_rewards: torch.Tensor,
                 rejected_rewards: torch.Tensor, pref: PrefSection) -> Figures:
    """The per-step figures of STAGE_PLOTS['dpo'] (plus ORPO's two parts), LLaMA-Factory's definitions."""
    figures = {"rewards/chosen": chosen_rewards.mean().item(), "rewards/rejected": rejected_rewards.mean().item(),
               "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
               "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
               "logps/chosen": logps.chosen.detach().mean().item(),
               "logps/rejected": logps.rejected.detach().mean().item()}
    if pref.pref_loss == "orpo":
        sft = -logps.chosen_avg.detach()
        figures["sft_loss"] = sft.mean().item()
        figures["odds_ratio_loss"] = ((losses.detach() - sft) / pref.pref_beta).mean().item()
    return figures


class DpoTrainer(PreferenceTrainer):
    """The dpo stage's trainer."""

    def pair_logps(self, model: torch.nn.Module, inputs: Batch) -> PairLogps:
        """Policy (and reference) log-probabilities of each pair, summed or length-normalised as the loss needs;
        ld_alpha weighs the policy's tokens past the shorter answer (never the reference's, as LLaMA-Factory)."""
        rows, _, count = token_rows(inputs)
        counts = per_row_sums(torch.ones_like(rows), rows, count).clamp(min=1)
        per_token = self.policy_logps(model, inputs)
        if self.pref.ld_alpha is not None:
            per_token = per_token * length_weights(inputs, self.pref.ld_alpha)
        sums = per_row_sums(per_token, rows, count)
        normalise = self.pref.pref_loss in LENGTH_NORMALISED
        policy = sums / counts if normalise else sums
        chosen, rejected = split_pairs(policy)
        chosen_avg = chosen if normalise else chosen / split_pairs(counts)[0]
        if self.reference is None:
            return PairLogps(chosen=chosen, rejected=rejected, chosen_avg=chosen_avg)
        ref_sums, _ = self.reference_logps(model, inputs)
        ref_chosen, ref_rejected = split_pairs(ref_sums / counts if normalise else ref_sums)
        return PairLogps(chosen, rejected, chosen_avg, ref_chosen, ref_rejected)

    def batch_loss(self, model: torch.nn.Module, inputs: Batch) -> tuple[torch.Tensor, Figures, int]:
        """The mean preference loss of the pairs in the batch."""
        logps = self.pair_logps(model, inputs)
        losses, chosen_rewards, rejected_rewards = dpo_losses(self.pref, logps, self.bco_delta)
        figures = pair_figures(losses, logps, chosen_rewards, rejected_rewards, self.pref)
        return losses.mean(), figures, int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())


def build_trainer(model_bundle: ModelBundle, data_bundle: DataBundle, args: TrainingArguments,
                  callbacks: list[TrainerCallback], options: TrainerOptions | None = None) -> DpoTrainer:
    """A dpo trainer over already-loaded objects (PreferenceTrainer.over: packed pairs where the attention
    takes them)."""
    return DpoTrainer.over(model_bundle, data_bundle, args, callbacks, options,
                           (PackedPairCollator, PairCollator))
