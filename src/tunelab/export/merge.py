"""Merge a run into one standalone Hugging Face folder: base + adapters (in float32, then cast to the export dtype),
or the whole model a freeze/full run saved; with the tokenizer and chat template the run trained with, and a
generation config whose eos ids are every stop token of the template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.schema import ExportSection, RunConfig
from tunelab.data.chat_template import for_tokenizer
from tunelab.export.errors import ExportError
from tunelab.export.files import read_json
from tunelab.export.preflight import preflight
from tunelab.infer.batch_generate import stop_token_ids as answer_stop_ids
from tunelab.infer.load import adapter_paths, trained_model
from tunelab.model.load import ModelBundle, resolve
from tunelab.runtime.names import split_names

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class MergePlan:
    """What is merged: the base (or trained full model) folder, the adapter folders in order, the dtype."""

    model_dir: Path
    adapters: list[Path]
    dtype: str


def saved_dtype(model_dir: Path) -> str:
    """The dtype a model folder's config.json names (torch_dtype, or dtype in newer files); float32 if none."""
    config = read_json(model_dir / "config.json", "give a Hugging Face model folder (config.json, weights, tokenizer)")
    name = str(config.get("dtype") or config.get("torch_dtype") or "float32").removeprefix("torch.")
    return name if name in DTYPES else "float32"


def plan_merge(config: RunConfig) -> MergePlan:
    """Resolve the folders as chat does and check them (headers only) before anything heavy loads."""
    model_dir = resolve(trained_model(config), config.model.cache_dir).path
    adapters = adapter_paths(config) if config.method.finetuning_type == "lora" else config.model.adapter_name_or_path
    folders = [Path(name) for name in split_names(adapters)]
    preflight(model_dir, folders)
    wanted = config.export.export_dtype or config.infer.infer_dtype
    return MergePlan(model_dir, folders, saved_dtype(model_dir) if wanted == "auto" else wanted)


def merged_model(model: PreTrainedModel | PeftModel, dtype: str, device: str) -> PreTrainedModel:
    """The adapters folded into the weights (PEFT's merge_and_unload, in float32), then cast to dtype."""
    import torch

    if device == "auto" and torch.cuda.is_available():
        model = model.to("cuda")
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model.to(getattr(torch, dtype))


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, template: str | None, model: PreTrainedModel) -> list[int]:
    """Every token that ends an answer: the decoding loop's (the tokenizer's eos, the model's own eos ids) and the
    template's stop words."""
    words = list(for_tokenizer(tokenizer, template).options.stop_words)
    ids = set(answer_stop_ids(tokenizer, model)) | set(tokenizer.convert_tokens_to_ids(words))
    return sorted(i for i in ids if isinstance(i, int) and i != tokenizer.unk_token_id)


def shard_size(export: ExportSection) -> str:
    """export_size in GB as transformers' max_shard_size (whole KB, so fractions of a GB work)."""
    return f"{max(1, round(export.export_size * 1_000_000))}KB"


def to_legacy_bin(folder: Path) -> None:
    """export_legacy_format: the safetensors shards rewritten as pytorch_model*.bin, with a matching index
    (transformers 5 writes safetensors only; it still reads .bin)."""
    import torch
    from safetensors.torch import load_file

    renamed = {}
    for path in sorted(folder.glob("model*.safetensors")):
        target = path.name.replace("model", "pytorch_model", 1).replace(".safetensors", ".bin")
        torch.save(load_file(path), folder / target)
        renamed[path.name] = target
        path.unlink()
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        data["weight_map"] = {k: renamed[v] for k, v in data["weight_map"].items()}
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
        index.unlink()


def save_merged(bundle: ModelBundle, model: PreTrainedModel, folder: Path, export: ExportSection,
                stop_ids: list[int]) -> None:
    """Weights (sharded), config, generation config with the stop ids and pad id, tokenizer with its template."""
    tokenizer = bundle.tokenizer
    generation = model.generation_config
    generation.eos_token_id = stop_ids if len(stop_ids) > 1 else stop_ids[0]
    generation.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder, max_shard_size=shard_size(export))
    if export.export_legacy_format:
        to_legacy_bin(folder)
    tokenizer.save_pretrained(folder)
    if not (folder / "chat_template.jinja").is_file() and not tokenizer.chat_template:
        raise ExportError(f"{folder}: the tokenizer has no chat template to save; set template: NAME")
