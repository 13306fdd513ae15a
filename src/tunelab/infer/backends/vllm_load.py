"""What a vLLM run loads, from the config: the model folder, the adapters as LoRAs (the run's own, or the API's
named ones), the tokenizer that renders prompts (the same as the huggingface backend's) and the stop tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tunelab.config.schema import RunConfig
from tunelab.infer.backends.vllm import ModelSource, VllmBackend, VllmError, start_backend
from tunelab.infer.load import adapter_paths, trained_model
from tunelab.infer.protocols import Tokenizer
from tunelab.model.adapter_set import NamedAdapter, base_vocab, check_fit, check_tokenizers
from tunelab.model.load import load_tokenizer, resolve
from tunelab.model.preflight import check_adapters, read_json_object
from tunelab.runtime.names import split_names

RUN_ADAPTER = "default"  # the LoRA name of the run's own adapter (what requests without an adapter get)


@dataclass(frozen=True)
class VllmBundle:
    """The tokenizer that renders prompts, the stop tokens, the context length, and the started backend."""

    tokenizer: Tokenizer
    stop_ids: frozenset[int]
    max_len: int
    backend: VllmBackend


def run_adapters(config: RunConfig) -> dict[str, str]:
    """The run's adapter (adapter_name_or_path, else the one trained in output_dir) under one LoRA name; vLLM
    applies one LoRA per request, so several folders are an error saying how to serve them."""
    folders = split_names(adapter_paths(config) if config.method.finetuning_type == "lora" else None)
    if len(folders) > 1:
        raise VllmError(f"adapter_name_or_path: vllm applies one adapter per request, not {len(folders)} stacked "
                        "ones; merge them first (tunelab export), or serve each as its own model id with "
                        "tunelab api --adapters name=path,...")
    return {RUN_ADAPTER: folders[0]} if folders else {}


def adapter_rank(folder: str) -> int:
    """The LoRA rank r of a saved adapter (its adapter_config.json)."""
    config = read_json_object(Path(folder) / "adapter_config.json", "save the adapter again")
    rank = config.get("r")
    return rank if isinstance(rank, int) else 8  # PEFT's default rank when the file leaves it out


def model_source(config: RunConfig, named: Sequence[NamedAdapter] = ()) -> tuple[ModelSource, Path]:
    """The model folder and LoRAs vLLM loads (checked like the huggingface backend checks them), and the folder
    whose tokenizer renders the prompts."""
    path = resolve(trained_model(config), config.model.cache_dir).path
    if named:
        check_fit(path, list(named))
        adapters, default = {a.name: str(a.path) for a in named}, ""
    else:
        adapters = run_adapters(config)
        check_adapters(path, [Path(folder) for folder in adapters.values()])
        default = RUN_ADAPTER if adapters else ""
    first = Path(next(iter(adapters.values()))) if adapters else None
    tokenizer_dir = first if first and (first / "tokenizer_config.json").is_file() else path
    source = ModelSource(path=str(path), dtype=config.infer.infer_dtype, adapters=adapters, default_adapter=default,
                         trust_remote_code=config.model.trust_remote_code)
    return source, tokenizer_dir


def stop_ids(tokenizer: Tokenizer, model_dir: str) -> frozenset[int]:
    """The tokenizer's eos and the generation config's eos id(s): the stop tokens the huggingface backend uses."""
    ids = {tokenizer.eos_token_id}
    config = Path(model_dir) / "generation_config.json"
    if config.is_file():
        eos = read_json_object(config, "use a complete model folder").get("eos_token_id")
        ids.update(eos if isinstance(eos, list) else [eos])
    return frozenset(i for i in ids if isinstance(i, int))


def load_vllm(config: RunConfig, named: Sequence[NamedAdapter] = ()) -> VllmBundle:
    """Start vLLM on the run's model and adapters (or the named ones) with the tokenizer training used."""
    source, tokenizer_dir = model_source(config, named)
    if named:  # one tokenizer renders every request: the same checks as the huggingface backend's
        check_tokenizers(tokenizer_dir, list(named), base_vocab(Path(source.path)), not config.data.template,
                         config.model.trust_remote_code)
    tokenizer = load_tokenizer(tokenizer_dir, config.data.template, config.model.trust_remote_code)
    ranks = {name: adapter_rank(folder) for name, folder in source.adapters.items()}
    backend = start_backend(source, config.backend, ranks)
    return VllmBundle(tokenizer=tokenizer, stop_ids=stop_ids(tokenizer, source.path),
                      max_len=config.backend.vllm_maxlen, backend=backend)
