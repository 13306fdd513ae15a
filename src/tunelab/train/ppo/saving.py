"""The PPO policy on disk, as LLaMA-Factory 0.9.5 saves it: the LoRA adapter (the policy's own only, never the
reward adapter) or the full model, with value_head.safetensors next to it; written at the end and in every
checkpoint, and read back on resume."""

from __future__ import annotations

from pathlib import Path

from tunelab.model.adapters import base_model
from tunelab.model.value_head import ValueHeadModel, read_value_head, save_value_head

POLICY_ADAPTER = "default"


def is_peft(model: object) -> bool:
    """True for a PEFT-wrapped model."""
    return hasattr(model, "peft_config")


def save_policy(policy: ValueHeadModel, folder: Path) -> None:
    """The policy's adapter (or model) and its value head, into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    model = policy.pretrained_model
    if is_peft(model):
        model.save_pretrained(str(folder), selected_adapters=[POLICY_ADAPTER], safe_serialization=True)
    else:
        model.save_pretrained(str(folder), safe_serialization=True)
    save_value_head(policy, folder)


def load_policy(policy: ValueHeadModel, folder: Path) -> None:
    """Weights saved by save_policy put back into the policy (a resume)."""
    model = policy.pretrained_model
    if is_peft(model):
        from peft import load_peft_weights, set_peft_model_state_dict

        set_peft_model_state_dict(model, load_peft_weights(str(folder)), adapter_name=POLICY_ADAPTER)
    else:
        from transformers.modeling_utils import load_sharded_checkpoint

        if (folder / "model.safetensors").is_file():
            from safetensors.torch import load_file

            result = base_model(model).load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
            if result.unexpected_keys:
                raise ValueError(f"{folder}: weights of another model ({result.unexpected_keys[0]} ...)")
        else:
            load_sharded_checkpoint(base_model(model), str(folder), strict=False)
    policy.load_head_state(read_value_head(folder), folder)
