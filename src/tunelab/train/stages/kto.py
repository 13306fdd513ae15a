"""Kahneman-Tversky optimisation on single answers marked desirable or not (kto_tag), LLaMA-Factory 0.9.5's
CustomKTOTrainer over TRL's kto_loss: kto_chosen_weight, kto_rejected_weight, pref_beta, pref_ftx.

The KL estimate comes from each example's KL partner (its prompt with another example's answer, built by
data/encode/feedback.py): the policy's and the reference's log-probabilities of the partners, without gradient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from tunelab.data.bundle import DataBundle
from tunelab.data.collate import FeedbackCollator, PackedFeedbackCollator
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.model.load import ModelBundle
from tunelab.train.logps import per_row_sums, sequence_logps, token_rows
from tunelab.train.pref_loss import FeedbackLogps, kto_kl, kto_losses
from tunelab.train.preference import Figures, PreferenceTrainer
from tunelab.train.trainer import Batch, TrainerOptions

if TYPE_CHECKING:
    from transformers import TrainerCallback, TrainingArguments

SIDES = ("chosen", "rejected")


def partner_batch(inputs: Batch) -> Batch:
    """The KL partners' columns (kl_ keys) as a batch of their own."""
    return {key[3:]: value for key, value in inputs.items() if key.startswith("kl_")}


def target_batch(inputs: Batch) -> Batch:
    """The examples' own columns."""
    return {key: value for key, value in inputs.items() if not key.startswith("kl_") and key != "kto_tags"}


def feedback_figures(logps: FeedbackLogps, chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
                     kl: torch.Tensor) -> Figures:
    """Sums and counts per side (so windows and processes with no example of one side average correctly) and kl."""
    figures = {"kl": float(kl)}
    for side, rewards, values in (("chosen", chosen_rewards, logps.chosen), ("rejected", rejected_rewards,
                                                                              logps.rejected)):
        figures[f"rewards/{side}_sum"] = rewards.nansum().item()
        figures[f"logps/{side}_sum"] = values.detach().nansum().item()
        figures[f"count/{side}"] = float(values.shape[0])
    return figures


class KtoTrainer(PreferenceTrainer):
    """The kto stage's trainer."""

    def feedback_logps(self, model: torch.nn.Module, inputs: Batch) -> FeedbackLogps:
        """Policy and reference log-probability sums of the examples (split by their tag) and of the partners."""
        target = target_batch(inputs)
        rows, _, count = token_rows(target)
        sums = per_row_sums(self.policy_logps(model, target), rows, count)
        counts = per_row_sums(torch.ones_like(rows), rows, count).clamp(min=1)
        partners = partner_batch(inputs)
        with torch.no_grad():
            kl_logps = sequence_logps(self.unwrapped(model), partners)[0]
        ref_sums = self.reference_logps(model, target)[0]
        ref_kl = self.reference_logps(model, partners)[0]
        tags = inputs["kto_tags"].bool()
        return FeedbackLogps(chosen=sums[tags], rejected=sums[~tags], kl=kl_logps, ref_chosen=ref_sums[tags],
                             ref_rejected=ref_sums[~tags], ref_kl=ref_kl, chosen_avg=(sums / counts)[tags])

    def batch_loss(self, model: torch.nn.Module, inputs: Batch) -> tuple[torch.Tensor, Figures, int]:
        """The KTO loss of the batch."""
        logps = self.feedback_logps(model, inputs)
        kl = kto_kl(logps.kl, logps.ref_kl, self.across_processes)
        loss, chosen_rewards, rejected_rewards = kto_losses(self.pref, logps, kl, inputs["kto_tags"].shape[0])
        figures = feedback_figures(logps, chosen_rewards, rejected_rewards, kl)
        return loss, figures, int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())

    def finish_figures(self, figures: Figures) -> Figures:
        """Per-side means from the window's sums and counts (LLaMA-Factory's), and the reward margin."""
        out = {key: value for key, value in figures.items() if "_sum" not in key and not key.startswith("count/")}
        for side in SIDES:
            count = figures.get(f"count/{side}", 0.0)
            if count > 0:
                for key in ("rewards", "logps"):
                    out[f"{key}/{side}"] = figures[f"{key}/{side}_sum"] / count
        if "rewards/chosen" in out and "rewards/rejected" in out:
            out["rewards/margins"] = out["rewards/chosen"] - out["rewards/rejected"]
        return out


def build_trainer(model_bundle: ModelBundle, data_bundle: DataBundle, args: TrainingArguments,
                  callbacks: list[TrainerCallback], options: TrainerOptions | None = None) -> KtoTrainer:
    """A kto trainer over already-loaded objects (PreferenceTrainer.over: packed rows where the attention
    takes them)."""
    return KtoTrainer.over(model_bundle, data_bundle, args, callbacks, options,
                           (PackedFeedbackCollator, FeedbackCollator))
