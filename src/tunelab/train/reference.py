"""The reference model of the preference stages (dpo, kto, grpo) and its log-probabilities.

With LoRA the reference is the policy itself with its adapter disabled (PEFT's disable_adapter): never a second copy
in memory. Otherwise it is ref_model (+ ref_model_adapters, merged into its weights), or a frozen copy of the
model as it starts training. orpo and simpo use none. Reference log-probabilities are computed without gradient, in
the training compute dtype (the same autocast as the policy's forward).
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from tunelab.config.schema import RunConfig
from tunelab.model.adapters import adapter_folders
from tunelab.model.load import ModelBundle, load_model, resolve
from tunelab.model.precision import Precision
from tunelab.runtime.logging import info
from tunelab.train.logps import labelled_logps, sequence_logps
from tunelab.train.pref_loss import REFERENCE_FREE

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class Reference:
    """Where reference log-probabilities come from: a separate frozen model, or (model None) the policy with its
    adapter disabled."""

    model: torch.nn.Module | None = None

    def context(self, policy: torch.nn.Module) -> AbstractContextManager[None]:
        """The context the reference forward runs in: the policy's adapter disabled when there is no model."""
        return policy.disable_adapter() if self.model is None else nullcontext()

    @torch.no_grad()
    def logps(self, policy: PreTrainedModel | PeftModel,
              batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of log p over each row's labelled tokens, labelled-token count) under the reference; policy is
        the unwrapped training model."""
        with self.context(policy):
            return sequence_logps(self.model if self.model is not None else policy, batch)

    @torch.no_grad()
    def token_logps(self, policy: PreTrainedModel | PeftModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """log p of every labelled token under the reference ([n], the order of labelled_logps)."""
        with self.context(policy):
            return labelled_logps(self.model if self.model is not None else policy, batch)[0]


def needs_reference(config: RunConfig) -> bool:
    """kto always, dpo unless its loss is reference-free (orpo, simpo), grpo unless grpo_beta is 0 (ppo builds its
    own in train/ppo/reference.py)."""
    stage, pref = config.method.stage, config.pref
    return (stage == "kto" or (stage == "dpo" and pref.pref_loss not in REFERENCE_FREE)
            or (stage == "grpo" and pref.grpo_beta != 0.0))


def frozen(model: torch.nn.Module) -> torch.nn.Module:
    """The model in eval mode with no trainable parameter."""
    model.requires_grad_(False)
    return model.eval()


def load_ref_model(config: RunConfig, dtype: torch.dtype) -> torch.nn.Module:
    """ref_model with ref_model_adapters merged into its weights (LLaMA-Factory merges a frozen model's adapters)."""
    from peft import PeftModel

    pref = config.pref
    assert pref.ref_model is not None
    source = resolve(pref.ref_model, config.model.cache_dir)
    model = load_model(source.path, dtype, config.model.trust_remote_code)
    for folder in adapter_folders(pref.ref_model_adapters) if pref.ref_model_adapters else []:
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    info(f"reference model {pref.ref_model} ({source.kind}: {source.path})"
         + (f" with adapters {pref.ref_model_adapters} merged" if pref.ref_model_adapters else ""))
    return frozen(model)


def build_reference(config: RunConfig, precision: Precision, bundle: ModelBundle) -> Reference | None:
    """The reference of this run, loaded by the model layer and handed to the trainer (None: the loss uses none)."""
    if not needs_reference(config):
        return None
    pref = config.pref  # ref_model_quantization_bit is refused with the config (config/pref_checks.py)
    if pref.ref_model is not None:
        return Reference(load_ref_model(config, getattr(torch, precision.weights)))
    if config.method.finetuning_type == "lora":
        info("reference model: the same weights with the LoRA adapter disabled (no second copy)")
        return Reference(None)
    info("reference model: a frozen copy of the model as it starts training")
    # stored like the frozen weights (bf16 under bf16 training): it only ever runs forward, under the same autocast
    return Reference(frozen(copy.deepcopy(bundle.model)).to(getattr(torch, precision.weights)))
