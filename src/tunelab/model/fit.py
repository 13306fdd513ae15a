"""Settings checked against the model's architecture before its weights load: the model is built on the meta
device from its config.json (no memory, no weights), so a wrong lora_target or freeze_trainable_layers is
reported in seconds, all problems together; and what the model takes besides text (its media encoders), so rows
with images are refused before the weights load."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.errors import ConfigError, Problem
from tunelab.config.schema import RunConfig
from tunelab.data.convert.media import ModelMedia
from tunelab.model import adapters, freeze

if TYPE_CHECKING:  # imported where used: the CLI starts without loading transformers
    from transformers import PreTrainedModel


def meta_model(path: Path, trust_remote_code: bool = False) -> PreTrainedModel:
    """The model's module tree without weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def method_problems(model: PreTrainedModel, config: RunConfig) -> list[Problem]:
    """Every setting of the fine-tuning method that names something this model does not have."""
    method = config.method.finetuning_type
    found: list[Problem] = []
    if method == "freeze":
        try:
            layers = freeze.find_layers(model)
        except freeze.FreezeError as exc:
            return [Problem("finetuning_type", str(exc).split(": ", 1)[1])]
        return [Problem(key, message) for key, message in freeze.problems(layers, config.method)]
    if method != "lora":
        return found
    checks = [lambda: adapters.extra_targets(model, config.lora.additional_target)]
    if not config.model.adapter_name_or_path or config.lora.create_new_adapter:  # a new adapter: its targets
        checks.insert(0, lambda: adapters.lora_targets(model, config.lora.lora_target))
    for check in checks:
        try:
            check()
        except adapters.AdapterError as exc:
            key, message = str(exc).split(": ", 1)
            found.append(Problem(key, message))
    return found


# config.json keys of a media encoder, and the media kinds it takes (documented in docs/data.md)
TOWERS = {"vision_config": ("images", "videos"), "audio_config": ("audios",)}


def model_media(path: Path, name: str, trust_remote_code: bool = False) -> ModelMedia:
    """What the model at path can take besides text, read from its config.json (no weights): images and videos
    with a vision_config, audios with an audio_config."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    kinds = {kind for key, taken in TOWERS.items() if getattr(config, key, None) is not None for kind in taken}
    return ModelMedia(name, frozenset(kinds))


def check_fit(config: RunConfig, path: Path) -> None:
    """Raise one ConfigError with every method setting that does not fit the model at path."""
    problems = method_problems(meta_model(path, config.model.trust_remote_code), config)
    if problems:
        raise ConfigError(problems, f"(against the model {config.model.model_name_or_path})")
