"""Fixtures of the ppo tests: a LoRA reward model folder on the tiny Llama, as a stage rm run saves one."""

from __future__ import annotations

from pathlib import Path

import pytest


def save_reward_adapter(model_dir: Path, folder: Path, seed: int = 1) -> Path:
    """A LoRA adapter with non-zero weights and a value head, saved as `stage: rm` saves them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunelab.model.value_head import ValueHeadModel, save_value_head

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft.save_pretrained(str(folder))
    save_value_head(ValueHeadModel(peft, dropout=0.0), folder)
    return folder


@pytest.fixture(scope="session")
def reward_adapter_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A LoRA reward model of the tiny Llama (adapter + value_head.safetensors); read-only."""
    return save_reward_adapter(tiny_model_dir, tmp_path_factory.mktemp("reward"))
