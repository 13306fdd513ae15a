"""Load what a chat/predict run talks to: the base model plus the run's adapter, with the trained template."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tunelab.config.schema import RunConfig
from tunelab.model import adapters
from tunelab.model.adapter_set import NamedAdapter, base_vocab, check_fit, check_tokenizers, saved_tokenizer
from tunelab.model.load import ModelBundle, load_model, load_tokenizer, resolve
from tunelab.model.precision import InferPrecision, decide_infer
from tunelab.model.preflight import check_adapters
from tunelab.runtime.names import split_names
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


def decode_precision(config: RunConfig, device: str = "cpu") -> InferPrecision:
    """The dtype a run decodes in: infer_dtype on the device it decodes on."""
    return decide_infer(config.infer.infer_dtype, on_gpu=device != "cpu")


def load_for_inference(config: RunConfig, from_output_dir: bool = True, dtype: str | None = None,
                       device: str = "cpu", named: Sequence[NamedAdapter] = ()) -> ModelBundle:
    """The model (with adapters when there are any) and the tokenizer whose template it was trained with;
    from_output_dir=False loads model_name_or_path and adapter_name_or_path only, never what output_dir holds.
    dtype: the weights' dtype (default: infer_dtype as decode_precision decides it; export asks for float32).
    device: where the model decodes (the CPU, except prediction workers that each have a GPU).
    named: adapters loaded under their names instead of the config's (`tunelab api --adapters`)."""
    import torch

    source = resolve(trained_model(config) if from_output_dir else config.model.model_name_or_path,
                     config.model.cache_dir)
    adapter = (adapter_paths(config) if from_output_dir and config.method.finetuning_type == "lora"
               else config.model.adapter_name_or_path)
    if named:
        adapter = None
        check_fit(source.path, list(named))  # headers only, naming the adapter that does not fit
    folders = [Path(name) for name in split_names(adapter or "")]
    check_adapters(source.path, folders)  # headers only, before the tokenizer and the weights load
    first = folders[0] if folders else (saved_tokenizer(named[0]) if named else None)
    # a run saves its tokenizer (and chat template) next to the adapter: prefer it, so chat uses what training used
    tokenizer_dir = first if first and (first / "tokenizer_config.json").is_file() else source.path
    tokenizer = load_tokenizer(tokenizer_dir, config.data.template, config.model.trust_remote_code)
    if named:
        check_tokenizers(tokenizer_dir, list(named), base_vocab(source.path), not config.data.template,
                         config.model.trust_remote_code)
    if dtype is None:
        precision = decode_precision(config, device)
        dtype = precision.dtype
        info(f"decoding in {dtype} ({precision.note})")
    model = load_model(source.path, getattr(torch, dtype), config.model.trust_remote_code)
    if adapter:
        model = adapters.load_adapters(model, adapter)
    if named:
        model = adapters.load_named_adapters(model, [(a.name, str(a.path)) for a in named])
    if device != "cpu":
        model = model.to(device)
    return ModelBundle(tokenizer=tokenizer, model=model, source=source)
