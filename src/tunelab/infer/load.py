"""Load what a chat/predict run talks to: the base model plus the run's adapter, with the trained template."""

from __future__ import annotations

from pathlib import Path

from tunelab.config.schema import RunConfig
from tunelab.model import adapters
from tunelab.model.load import ModelBundle, load_model, load_tokenizer, resolve
from tunelab.runtime.logging import info


def adapter_paths(config: RunConfig) -> str | None:
    """adapter_name_or_path, else the adapter a training run with this config saved in output_dir."""
    if config.model.adapter_name_or_path:
        return config.model.adapter_name_or_path
    out = config.train.output_dir
    if out and (Path(out) / "adapter_config.json").is_file():
        info(f"using the adapter trained in {out}")
        return out
    return None


def trained_model(config: RunConfig) -> str:
    """model_name_or_path, or the whole model a freeze/full training run with this config saved in output_dir."""
    out = config.train.output_dir
    if (config.method.finetuning_type != "lora" and out and (Path(out) / "config.json").is_file()
            and not config.model.adapter_name_or_path):
        info(f"using the model trained in {out} ({config.method.finetuning_type} fine-tuning)")
        return out
    return config.model.model_name_or_path


def load_for_inference(config: RunConfig, from_output_dir: bool = True) -> ModelBundle:
    """The model (with adapters when there are any) and the tokenizer whose template it was trained with;
    from_output_dir=False loads model_name_or_path and adapter_name_or_path only, never what output_dir holds."""
    import torch

    source = resolve(trained_model(config) if from_output_dir else config.model.model_name_or_path,
                     config.model.cache_dir)
    adapter = (adapter_paths(config) if from_output_dir and config.method.finetuning_type == "lora"
               else config.model.adapter_name_or_path)
    first = Path(adapter.split(",")[0].strip()) if adapter else None
    # a run saves its tokenizer (and chat template) next to the adapter: prefer it, so chat uses what training used
    tokenizer_dir = first if first and (first / "tokenizer_config.json").is_file() else source.path
    tokenizer = load_tokenizer(tokenizer_dir, config.data.template, config.model.trust_remote_code)
    model = load_model(source.path, torch.float32, config.model.trust_remote_code)
    if adapter:
        model = adapters.load_adapters(model, adapter)
    return ModelBundle(tokenizer=tokenizer, model=model, source=source)
