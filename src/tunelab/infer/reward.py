"""Which reward model a config names, and loading it as a RewardScorer: for `tunelab predict`, do_predict and
`tunelab api` on a stage rm config or on an rm output folder."""

from __future__ import annotations

from tunelab.config.schema import RunConfig
from tunelab.infer.load import adapter_paths, trained_model
from tunelab.infer.score import RewardScorer, head_folder, load_reward_scorer
from tunelab.model.load import resolve
from tunelab.model.value_head import has_value_head


def reward_sources(config: RunConfig, from_output_dir: bool = True) -> tuple[str, str | None]:
    """(model, adapters) as chat and predict pick them: what a run with this config saved in output_dir, else
    model_name_or_path with adapter_name_or_path."""
    if not from_output_dir:
        return config.model.model_name_or_path, config.model.adapter_name_or_path
    adapters = adapter_paths(config) if config.method.finetuning_type == "lora" else config.model.adapter_name_or_path
    return trained_model(config), adapters


def is_reward_model(config: RunConfig) -> bool:
    """True for stage rm, or when the model or last adapter the config names holds a value head."""
    if config.method.stage == "rm":
        return True
    model, adapters = reward_sources(config)
    return has_value_head(head_folder(resolve(model, config.model.cache_dir).path, adapters))


def load_scorer(config: RunConfig, from_output_dir: bool = True) -> RewardScorer:
    """The config's reward model, in float32 (as chat and predict load models), with its trained template."""
    model, adapters = reward_sources(config, from_output_dir)
    return load_reward_scorer(model, adapters, config.data.template, config.model.trust_remote_code,
                              cache_dir=config.model.cache_dir)
