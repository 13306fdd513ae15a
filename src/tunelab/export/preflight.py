"""What export checks before loading anything heavy: adapter folders complete, safetensors files whole, adapter
shapes that fit the base, a base that is not quantized. Only file headers are read (a few KB per file)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tunelab.export.errors import ExportError
from tunelab.export.files import read_json

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
PEFT_PREFIX = "base_model.model."
LORA_PARTS = (".lora_A.weight", ".lora_B.weight")
# the most a safetensors JSON header may take (the format's own limit is 100 MB)
HEADER_LIMIT = 100_000_000


def safetensors_header(path: Path) -> dict[str, dict[str, object]]:
    """The tensor table of a safetensors file (name -> dtype, shape, data_offsets), after checking that the file
    holds all the data its header promises; a truncated or corrupt file is an ExportError naming it."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ExportError(f"{path}: truncated safetensors file ({size} bytes, not even a header); "
                              "save or copy it again")
        (length,) = struct.unpack("<Q", head)
        if length > min(HEADER_LIMIT, size - 8):
            raise ExportError(f"{path}: corrupt safetensors file (header of {length} bytes in a file of {size}); "
                              "save or copy it again")
        try:
            table = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ExportError(f"{path}: corrupt safetensors file (its header is not JSON); save or copy it "
                              "again") from None
    tensors = {name: spec for name, spec in table.items() if name != "__metadata__"}
    end = max((int(spec["data_offsets"][1]) for spec in tensors.values()), default=0)
    if 8 + length + end != size:
        raise ExportError(f"{path}: truncated safetensors file ({size} bytes, its header promises {8 + length + end}); "
                          "the save was cut short: save or copy it again")
    return tensors


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a model folder."""
    return sorted(folder.glob("*.safetensors"))


def tensor_shapes(folder: Path) -> dict[str, list[int]]:
    """Every tensor's shape across a folder's safetensors files (each file checked whole)."""
    shapes: dict[str, list[int]] = {}
    for path in weight_files(folder):
        shapes.update({name: list(spec["shape"]) for name, spec in safetensors_header(path).items()})
    return shapes


def check_adapter_folder(folder: Path) -> Path | None:
    """A complete adapter folder: config and weights both there. Returns its safetensors file (None for .bin)."""
    if not folder.is_dir():
        raise ExportError(f"adapter_name_or_path: {folder} does not exist; give the output_dir of a LoRA run")
    has_config = (folder / "adapter_config.json").is_file()
    weights = [folder / name for name in ADAPTER_WEIGHTS if (folder / name).is_file()]
    if has_config and not weights:
        raise ExportError(f"{folder / 'adapter_config.json'}: the adapter's weights ({' or '.join(ADAPTER_WEIGHTS)}) "
                          "are missing: a half-written checkpoint; use a complete one")
    if weights and not has_config:
        raise ExportError(f"{weights[0]}: adapter weights without adapter_config.json next to them: a half-written "
                          "checkpoint; use a complete one")
    if not has_config:
        raise ExportError(f"adapter_name_or_path: {folder} has no adapter_config.json; give the output_dir of a "
                          "LoRA run")
    return weights[0] if weights[0].suffix == ".safetensors" else None


def base_module_shape(module: str, base: dict[str, list[int]]) -> list[int] | None:
    """[out, in] of a base module's weight; a tied output head has the input embedding's shape."""
    shape = base.get(f"{module}.weight")
    if shape is None and module.split(".")[-1] == "lm_head":
        shape = base.get("model.embed_tokens.weight")
    return shape


def shape_problems(adapter: Path, base: dict[str, list[int]]) -> list[str]:
    """Each LoRA module of the adapter whose A (r x in) and B (out x r) do not fit the base weight (out x in)."""
    adapter_tensors = safetensors_header(adapter)
    problems = []
    for name, spec in sorted(adapter_tensors.items()):
        part = next((p for p in LORA_PARTS if name.endswith(p)), None)
        if part is None:
            continue
        module = name.removeprefix(PEFT_PREFIX)[: -len(part)]
        shape, target = list(spec["shape"]), base_module_shape(module, base)
        if target is None:
            problems.append(f"{module}: the adapter has {part[1:]} {shape}, but the base has no such module")
            continue
        fits = shape[1] == target[1] if part == ".lora_A.weight" else shape[0] == target[0]
        if not fits:
            side = "in_features" if part == ".lora_A.weight" else "out_features"
            problems.append(f"{module}: adapter {part[1:]} {shape} does not fit the base weight {target} "
                            f"({side} {target[1] if side == 'in_features' else target[0]})")
    return problems


def check_not_quantized(model_dir: Path) -> None:
    """Adapters cannot be merged into quantized weights."""
    config = read_json(model_dir / "config.json", "give a Hugging Face model folder (config.json, weights, tokenizer)")
    quantization = config.get("quantization_config")
    if quantization:
        method = quantization.get("quant_method", "quantized") if isinstance(quantization, dict) else "quantized"
        raise ExportError(f"{model_dir / 'config.json'}: the base model is {method} (quantization_config); adapters "
                          "cannot be merged into quantized weights: set model_name_or_path to the unquantized model")


def preflight(model_dir: Path, adapters: list[Path]) -> None:
    """Every check above, for the base (or trained full model) folder and the adapters in merge order."""
    base = tensor_shapes(model_dir)
    if adapters:
        check_not_quantized(model_dir)
    for folder in adapters:
        weights = check_adapter_folder(folder)
        if weights is None or not base:  # .bin files have no header to read; PEFT checks those when it loads
            continue
        problems = shape_problems(weights, base)
        if problems:
            listed = "\n  ".join(problems[:8]) + (f"\n  ... and {len(problems) - 8} more" if len(problems) > 8 else "")
            raise ExportError(f"{weights}: the adapter does not fit the base model {model_dir} (trained on another "
                              f"model?):\n  {listed}\nset model_name_or_path to the model the adapter was trained "
                              "on")
