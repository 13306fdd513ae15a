"""Export fixtures: LoRA adapters with non-zero B over the tiny Llama folder, saved as a LoRA run saves them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def save_adapter(base_dir: Path, folder: Path, seed: int, targets: tuple[str, ...] = ("q_proj", "v_proj", "down_proj"),
                 rank: int = 4) -> Path:
    """A LoRA adapter on base_dir whose B matrices are random (so merging changes the logits), saved to folder."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets)))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    peft_model.save_pretrained(folder)
    return folder


@pytest.fixture
def make_adapter(tiny_model_dir: Path, tmp_path: Path) -> Callable[..., Path]:
    """make_adapter(name, seed=0, targets=...): a saved adapter over the tiny Llama folder."""
    def make(name: str = "adapter", seed: int = 0, targets: tuple[str, ...] = ("q_proj", "v_proj", "down_proj"),
             base: Path | None = None) -> Path:
        return save_adapter(base or tiny_model_dir, tmp_path / name, seed, targets)

    return make
