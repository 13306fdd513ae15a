"""A trial's folder name, made of what varies: {learning_rate: 3e-4, num_train_epochs: 5, finetuning_type: lora}
-> lr3e-4_ep5_lora."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from tunelab.sweep.params import Scalar

# short prefixes for the keys people sweep most; any other key is written in full
PREFIXES = {"learning_rate": "lr", "num_train_epochs": "ep", "lora_rank": "r", "lora_alpha": "alpha",
            "lora_dropout": "drop", "per_device_train_batch_size": "bs", "gradient_accumulation_steps": "ga",
            "max_steps": "steps", "warmup_ratio": "warmup", "warmup_steps": "warmup", "weight_decay": "wd",
            "cutoff_len": "len", "max_samples": "n", "pref_beta": "beta", "seed": "seed", "freeze_trainable_layers":
            "layers", "lr_scheduler_type": "sched"}
# keys whose value alone says what varies (lora, full; a dataset name)
VALUE_ONLY = frozenset({"finetuning_type", "dataset", "stage", "template", "pref_loss", "model_name_or_path"})
MAX_LENGTH = 96
UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")


def number_text(value: float) -> str:
    """3e-4 for 0.0003, 5 for 5.0, 0.1 for 0.1: short and exact to three significant digits."""
    if value == 0 or 1e-2 <= abs(value) < 1e5:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def value_text(value: Scalar) -> str:
    """A value as it appears in a folder name (safe on every file system)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value)
    text = str(value).replace(",", "+").replace("/", "-")
    return UNSAFE.sub("-", text).strip("-.") or "none"


def part(key: str, value: Scalar) -> str:
    """One key's piece of the name."""
    if key in VALUE_ONLY:
        return value_text(value)
    text = value_text(value)
    prefix = PREFIXES.get(key, key)
    return f"{prefix}{text}" if prefix in PREFIXES.values() else f"{prefix}-{text}"


def trial_name(values: Mapping[str, Scalar]) -> str:
    """The folder name of the trial with these varied values, in their order; a long name ends in a hash."""
    name = "_".join(part(key, value) for key, value in values.items()) or "base"
    if len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha1(json.dumps(dict(values), sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{name[:MAX_LENGTH - 9]}_{digest}"
