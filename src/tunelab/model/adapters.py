"""Apply a fine-tuning method to a loaded model (this version: LoRA), or load trained adapters."""

from __future__ import annotations

from typing import Any

from tunelab.config.schema import LoraSection


class AdapterError(Exception):
    """A LoRA setting that does not fit the model; the message names the key."""


def linear_module_names(model: Any) -> list[str]:
    """Short names of the Linear layers LoRA can target ('all'), the output head excluded."""
    import torch

    output = model.get_output_embeddings()
    names = {name.split(".")[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and module is not output}
    return sorted(names)


def lora_targets(model: Any, lora_target: str) -> list[str]:
    """Resolve lora_target ('all' or names) against the model's modules."""
    available = linear_module_names(model)
    if lora_target.strip() == "all":
        return available
    wanted = [name.strip() for name in lora_target.split(",") if name.strip()]
    missing = [name for name in wanted if name not in available]
    if missing:
        raise AdapterError(f"lora_target: {', '.join(missing)} not found in the model; its linear layers are: "
                           f"{', '.join(available)} (or use lora_target: all)")
    return wanted


def apply_lora(model: Any, lora: LoraSection) -> Any:
    """Wrap the model with fresh LoRA adapters; only they are trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.lora_rank, lora_alpha=lora.lora_alpha or 2 * lora.lora_rank,
                        lora_dropout=lora.lora_dropout, target_modules=lora_targets(model, lora.lora_target),
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def load_adapters(model: Any, paths: str, trainable: bool = False) -> Any:
    """Load one or more trained adapters (comma-separated folders) on top of the model."""
    from pathlib import Path

    from peft import PeftModel

    folders = [p.strip() for p in paths.split(",") if p.strip()]
    for folder in folders:
        if not (Path(folder) / "adapter_config.json").is_file():
            raise AdapterError(f"adapter_name_or_path: {folder} has no adapter_config.json; give the output_dir of "
                               "a LoRA run")
    peft_model = PeftModel.from_pretrained(model, folders[0], is_trainable=trainable)
    for index, folder in enumerate(folders[1:], start=1):
        peft_model.load_adapter(folder, adapter_name=f"adapter_{index}")
    if len(folders) > 1:
        names = ["default"] + [f"adapter_{i}" for i in range(1, len(folders))]
        peft_model.base_model.set_adapter(names)
    return peft_model


def keep_input_dtype(model: Any) -> int:
    """Stop PEFT from casting each LoRA input to the adapter's float32 dtype; under autocast the LoRA
    matmuls run in bf16 anyway, so that cast only copies activations. Returns the layers changed."""
    changed = 0
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
            changed += 1
    return changed


def base_model(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
