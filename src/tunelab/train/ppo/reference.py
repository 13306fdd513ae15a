"""PPO's reference policy, whose log-probabilities the KL penalty compares against: with LoRA the policy's own
weights with its adapters disabled (no second copy), otherwise a frozen copy of the starting model or `ref_model`
(+ `ref_model_adapters`, merged), as LLaMA-Factory 0.9.5's create_ref_model chooses."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch

from tunelab.model.adapters import base_model, load_adapters
from tunelab.model.load import load_model, resolve
from tunelab.train.ppo.rollout import Rollout, response_logps

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel


class Reference:
    """Log-probs of the reference policy: `model` when given (frozen), else the policy with adapters disabled."""

    def __init__(self, model: PreTrainedModel | None) -> None:
        self.model = model.eval().requires_grad_(False) if model is not None else None

    @torch.no_grad()
    def logps(self, policy: PreTrainedModel | PeftModel, rollout: Rollout) -> torch.Tensor:
        """[rows, response length] log p of each response token under the reference."""
        if self.model is not None:
            self.model.to(rollout.input_ids.device)  # no-op once there (the Trainer moves only the policy)
            return response_logps(self.model, rollout)
        was_training = policy.training
        policy.eval()
        try:
            with policy.disable_adapter():
                return response_logps(policy, rollout)
        finally:
            policy.train(was_training)


def build_reference(policy: PreTrainedModel | PeftModel, finetuning_type: str, ref_model: str | None,
                    ref_adapters: str | None, trust_remote_code: bool, cache_dir: str | None) -> Reference:
    """The reference for this run: ref_model when set, the adapter-disabled policy under LoRA, else a frozen copy
    of the policy as it starts (taken before any step)."""
    if ref_model:
        model = load_model(resolve(ref_model, cache_dir).path, base_model(policy).dtype, trust_remote_code)
        if ref_adapters:
            model = load_adapters(model, ref_adapters).merge_and_unload()
        return Reference(model.to(base_model(policy).device))
    if finetuning_type == "lora":
        return Reference(None)
    return Reference(copy.deepcopy(base_model(policy)))
