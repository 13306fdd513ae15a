"""Apply the configured fine-tuning method (lora, freeze, full) to a loaded model and put every weight in the
dtype the precision decided: trainable weights in float32 (bf16 with pure_bf16), frozen ones in their storage
dtype."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.config.schema import RunConfig
from tunelab.model import adapters
from tunelab.model.freeze import apply_freeze
from tunelab.model.precision import Precision

if TYPE_CHECKING:  # imported where used: the CLI starts without loading torch, transformers or peft
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel


def apply_method(model: PreTrainedModel, config: RunConfig,
                 precision: Precision) -> tuple[PreTrainedModel | PeftModel, str]:
    """The model ready to train and one line saying what trains."""
    import torch

    method = config.method.finetuning_type
    keep = precision.trainable != "float32"
    if method == "lora":
        if config.model.adapter_name_or_path:
            model, what = adapters.adapters_for_training(model, config.model.adapter_name_or_path, config.lora, keep)
        else:
            model, what = adapters.apply_lora(model, config.lora, keep), lora_description(config)
    elif method == "freeze":
        what = apply_freeze(model, config.method)
    else:
        model.requires_grad_(True)
        what = "every weight"
    cast(model, getattr(torch, precision.trainable), getattr(torch, precision.weights))
    trainable, total = adapters.count_parameters(model)
    return model, f"{method}: {what}; {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.2f}%)"


def lora_description(config: RunConfig) -> str:
    """The method line's description of a fresh adapter: rank, alpha, targets and variants."""
    lora = config.lora
    variants = [name for name, on in (("DoRA", lora.use_dora), ("rsLoRA", lora.use_rslora),
                                      ("PiSSA init", lora.pissa_init)) if on]
    if lora.loraplus_lr_ratio:
        variants.append(f"LoRA+ ratio {lora.loraplus_lr_ratio:g}")
    return (f"new adapter r={lora.lora_rank}, alpha={lora.lora_alpha or 2 * lora.lora_rank} on {lora.lora_target}"
            + (f" + {lora.additional_target}" if lora.additional_target else "")
            + (f" ({', '.join(variants)})" if variants else ""))


def cast(model: torch.nn.Module, trainable_dtype: torch.dtype, frozen_dtype: torch.dtype) -> None:
    """Trainable floating-point weights to trainable_dtype, frozen ones to frozen_dtype (in place)."""
    for param in model.parameters():
        if not param.is_floating_point():
            continue
        wanted = trainable_dtype if param.requires_grad else frozen_dtype
        if param.dtype != wanted:
            param.data = param.data.to(wanted)
