"""LoRA adapters: fresh ones (with the DoRA, rsLoRA, PiSSA variants), trained ones loaded to continue or to
merge, and the helpers the trainers use on PEFT models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.config.schema import LoraSection
from tunelab.runtime.names import split_names

if TYPE_CHECKING:  # imported where used: the CLI starts without loading torch, transformers or peft
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel


class AdapterError(Exception):
    """A LoRA setting that does not fit the model; the message names the key."""


def linear_module_names(model: PreTrainedModel) -> list[str]:
    """Short names of the Linear layers LoRA can target ('all'), the output head excluded."""
    import torch

    output = model.get_output_embeddings()
    names = {name.split(".")[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and module is not output}
    return sorted(names)


def checked_names(key: str, value: str, available: list[str], listing: str) -> list[str]:
    """The comma-separated names of a key, each of which must be in available; listing ends the error."""
    wanted = split_names(value)
    missing = [name for name in wanted if name not in available]
    if missing:
        raise AdapterError(f"{key}: {', '.join(missing)} not found in the model; {listing}")
    return wanted


def lora_targets(model: PreTrainedModel, lora_target: str) -> list[str]:
    """Resolve lora_target ('all' or names) against the model's modules."""
    available = linear_module_names(model)
    if lora_target.strip() == "all":
        return available
    return checked_names("lora_target", lora_target, available,
                         f"its linear layers are: {', '.join(available)} (or use lora_target: all)")


def module_names(model: torch.nn.Module) -> list[str]:
    """Short names of every module (what additional_target can name)."""
    return sorted({name.split(".")[-1] for name, _ in model.named_modules() if name})


def extra_targets(model: torch.nn.Module, additional_target: str | None) -> list[str] | None:
    """additional_target resolved against the model's modules (trained fully, saved with the adapter)."""
    if not additional_target:
        return None
    return checked_names("additional_target", additional_target, module_names(model),
                         f"modules outside the layers include: {', '.join(top_level_modules(model))}")


def top_level_modules(model: torch.nn.Module) -> list[str]:
    """Short names of the modules that are not inside a numbered layer (embed_tokens, norm, lm_head, ...)."""
    import re

    return sorted({name.split(".")[-1] for name, _ in model.named_modules()
                   if name and not re.search(r"\.\d+(\.|$)", name) and not name.split(".")[-1].isdigit()})


def lora_init(lora: LoraSection) -> bool | str:
    """PEFT's init_lora_weights: zero B (default) or PiSSA with fast SVD iterations (-1: exact SVD)."""
    if not lora.pissa_init:
        return True
    return "pissa" if lora.pissa_iter == -1 else f"pissa_niter_{lora.pissa_iter}"


def apply_lora(model: PreTrainedModel, lora: LoraSection, keep_dtype: bool = False) -> PeftModel:
    """Wrap the model with fresh LoRA adapters; only they (and additional_target) are trainable.
    keep_dtype: adapters in the base weights' dtype (pure_bf16) instead of float32."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.lora_rank, lora_alpha=lora.lora_alpha or 2 * lora.lora_rank,
                        lora_dropout=lora.lora_dropout, target_modules=lora_targets(model, lora.lora_target),
                        modules_to_save=extra_targets(model, lora.additional_target), use_dora=lora.use_dora,
                        use_rslora=lora.use_rslora, init_lora_weights=lora_init(lora), task_type="CAUSAL_LM")
    return get_peft_model(model, config, autocast_adapter_dtype=not keep_dtype)


def adapter_folders(paths: str) -> list[str]:
    """The comma-separated adapter folders, each checked for an adapter_config.json."""
    from pathlib import Path

    folders = split_names(paths)
    for folder in folders:
        if not (Path(folder) / "adapter_config.json").is_file():
            raise AdapterError(f"adapter_name_or_path: {folder} has no adapter_config.json; give the output_dir of "
                               "a LoRA run")
    return folders


def adapters_for_training(model: PreTrainedModel, paths: str, lora: LoraSection,
                          keep_dtype: bool = False) -> tuple[PeftModel, str]:
    """LLaMA-Factory's rule: every adapter but the last is merged into the weights; the last is trained further,
    or merged too with create_new_adapter, which then trains a fresh adapter. Returns (model, what was done)."""
    from peft import PeftModel

    folders = adapter_folders(paths)
    merge, keep = (folders, None) if lora.create_new_adapter else (folders[:-1], folders[-1])
    for folder in merge:
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    merged = f"merged {', '.join(merge)} into the weights; " if merge else ""
    if keep is None:
        return apply_lora(model, lora, keep_dtype), f"{merged}training a new adapter"
    model = PeftModel.from_pretrained(model, keep, is_trainable=True, autocast_adapter_dtype=not keep_dtype)
    config = model.peft_config["default"]
    return model, (f"{merged}continuing adapter {keep} (r={config.r}, alpha={config.lora_alpha}, from its "
                   "adapter_config.json; the lora_* keys apply to new adapters only)")


def load_adapters(model: PreTrainedModel, paths: str, trainable: bool = False) -> PeftModel:
    """Load one or more trained adapters (comma-separated folders) on top of the model."""
    from peft import PeftModel

    folders = adapter_folders(paths)
    peft_model = PeftModel.from_pretrained(model, folders[0], is_trainable=trainable)
    for index, folder in enumerate(folders[1:], start=1):
        peft_model.load_adapter(folder, adapter_name=f"adapter_{index}")
    if len(folders) > 1:
        names = ["default"] + [f"adapter_{i}" for i in range(1, len(folders))]
        peft_model.base_model.set_adapter(names)
    return peft_model


def load_named_adapters(model: PreTrainedModel, named: list[tuple[str, str]]) -> PeftModel:
    """Load trained adapters under the given names onto one PEFT model (the first stays active); a request picks
    one by name, or none ('__base__' in PEFT's mixed batches)."""
    from peft import PeftModel

    (first, folder), rest = named[0], named[1:]
    peft_model = PeftModel.from_pretrained(model, folder, adapter_name=first)
    for name, path in rest:
        peft_model.load_adapter(path, adapter_name=name)
    return peft_model


def keep_input_dtype(model: torch.nn.Module) -> int:
    """Stop PEFT from casting each LoRA input to the adapter's float32 dtype; under autocast the LoRA
    matmuls run in bf16 anyway, so that cast only copies activations. Returns the layers changed."""
    changed = 0
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
            changed += 1
    return changed


def base_model(model: PreTrainedModel | PeftModel) -> PreTrainedModel:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
