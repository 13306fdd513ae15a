"""Keys that were renamed: the old name is accepted and mapped to the new one."""

from __future__ import annotations

# old name -> current name (transformers and LLaMA-Factory renames users still have in their YAML)
RENAMED: dict[str, str] = {
    "evaluation_strategy": "eval_strategy",
    "lora_r": "lora_rank",
    "model_name": "model_name_or_path",
}
