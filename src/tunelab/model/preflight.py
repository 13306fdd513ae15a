"""What every command that loads a model checks first, reading only file headers (a few KB per file): paths that
are folders (not a weights file, not a symlink loop), config.json that is JSON, safetensors files whole, GGUF files
that are GGUF, adapter folders complete and shaped for their base. A damaged file is a ModelError naming it, before
a minute of loading ends in a library's traceback."""

from __future__ import annotations

import errno
import json
import os
import struct
from pathlib import Path

from tunelab.model.errors import ModelError

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
PEFT_PREFIX = "base_model.model."
LORA_PARTS = (".lora_A.weight", ".lora_B.weight")
HEADER_LIMIT = 100_000_000  # the most a safetensors JSON header may take (the format's own limit is 100 MB)
GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (1, 2, 3)


def check_path(path: Path, key: str) -> None:
    """A path given as a folder: a symlink loop, a dangling link or a weights file is named as such."""
    if os.path.lexists(path) and not os.path.exists(path):
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 reports a loop this way
            raise ModelError(f"{key}: {path} is a symbolic link loop; point it at a real folder") from None
        except OSError as exc:
            what = "a symbolic link loop" if exc.errno == errno.ELOOP else f"a link to {os.readlink(path)}, " \
                                                                            "which does not exist"
            raise ModelError(f"{key}: {path} is {what}; point it at a real folder") from None
    if path.is_file() and (path.suffix.lower() != ".gguf" or "adapter" in key):
        what = "a weights file" if path.suffix.lower() in WEIGHT_SUFFIXES else "a file, not a folder"
        needs = "adapter_config.json" if "adapter" in key else "config.json"
        raise ModelError(f"{key}: {path} is {what}; give the folder that holds it ({path.parent}), with its {needs}")


def read_json_object(path: Path, fix: str) -> dict[str, object]:
    """The JSON object in a model folder's file; unreadable, not JSON or not an object: a ModelError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc}); {fix}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: holds {type(data).__name__}, not a JSON object; {fix}")
    return data


def safetensors_header(path: Path) -> dict[str, dict[str, object]]:
    """The tensor table of a safetensors file (name -> dtype, shape, data_offsets), after checking that the file
    holds all the data its header promises; a truncated or corrupt file is a ModelError naming it."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ModelError(f"{path}: truncated safetensors file ({size} bytes, not even a header); "
                             "save or copy it again")
        (length,) = struct.unpack("<Q", head)
        if length > min(HEADER_LIMIT, size - 8):
            raise ModelError(f"{path}: corrupt safetensors file (header of {length} bytes in a file of {size}); "
                             "save or copy it again")
        try:
            table = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelError(f"{path}: corrupt safetensors file (its header is not JSON); save or copy it "
                             "again") from None
    if not isinstance(table, dict):
        raise ModelError(f"{path}: corrupt safetensors file (its header is not a table); save or copy it again")
    tensors = {name: spec for name, spec in table.items() if name != "__metadata__"}
    try:
        end = max((int(spec["data_offsets"][1]) for spec in tensors.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise ModelError(f"{path}: corrupt safetensors file (a tensor without data_offsets); save or copy it "
                         "again") from None
    if 8 + length + end != size:
        raise ModelError(f"{path}: truncated safetensors file ({size} bytes, its header promises "
                         f"{8 + length + end}); the save was cut short: save or copy it again")
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


def check_model_folder(folder: Path) -> None:
    """A Hugging Face model folder: config.json (and a shard index) JSON objects, every safetensors file whole."""
    fix = "copy the model folder again (or give another one)"
    read_json_object(folder / "config.json", fix)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        read_json_object(index, fix)
    for path in weight_files(folder):
        safetensors_header(path)


def check_gguf(path: Path) -> None:
    """A GGUF file: the magic, a known version, and a header whose counts fit the file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(24)
    if head[:4] != GGUF_MAGIC:
        raise ModelError(f"model_name_or_path: {path} is not a GGUF file (it does not start with 'GGUF'); give a "
                         ".gguf model file, or a Hugging Face model folder")
    if len(head) < 24:
        raise ModelError(f"model_name_or_path: {path}: truncated GGUF file ({size} bytes, not even a header); "
                         "download or copy it again")
    version, tensors, values = struct.unpack("<IQQ", head[4:24])
    if version not in GGUF_VERSIONS:
        raise ModelError(f"model_name_or_path: {path}: GGUF version {version} is not one this reader knows "
                         f"({', '.join(map(str, GGUF_VERSIONS))}); is the file damaged?")
    if tensors > size or values > size:  # each tensor and value takes bytes of the file
        raise ModelError(f"model_name_or_path: {path}: corrupt GGUF header ({tensors} tensors, {values} values in "
                         f"{size} bytes); download or copy it again")


def check_adapter_folder(folder: Path) -> Path | None:
    """A complete adapter folder: config and weights both there. Returns its safetensors file (None for .bin)."""
    check_path(folder, "adapter_name_or_path")
    if not folder.is_dir():
        raise ModelError(f"adapter_name_or_path: {folder} does not exist; give the output_dir of a LoRA run")
    has_config = (folder / "adapter_config.json").is_file()
    weights = [folder / name for name in ADAPTER_WEIGHTS if (folder / name).is_file()]
    if has_config and not weights:
        raise ModelError(f"{folder / 'adapter_config.json'}: the adapter's weights ({' or '.join(ADAPTER_WEIGHTS)}) "
                         "are missing: a half-written checkpoint; use a complete one")
    if weights and not has_config:
        raise ModelError(f"{weights[0]}: adapter weights without adapter_config.json next to them: a half-written "
                         "checkpoint; use a complete one")
    if not has_config:
        raise ModelError(f"adapter_name_or_path: {folder} has no adapter_config.json; give the output_dir of a "
                         "LoRA run")
    read_json_object(folder / "adapter_config.json", "save the adapter again, or use a complete checkpoint")
    return weights[0] if weights[0].suffix == ".safetensors" else None


def base_module_shape(module: str, base: dict[str, list[int]]) -> list[int] | None:
    """[out, in] of a base module's weight; a tied output head has the input embedding's shape."""
    shape = base.get(f"{module}.weight")
    if shape is None and module.split(".")[-1] == "lm_head":
        shape = base.get("model.embed_tokens.weight")
    return shape


def shape_problems(adapter: Path, base: dict[str, list[int]]) -> list[str]:
    """Each LoRA module of the adapter whose A (r x in) and B (out x r) do not fit the base weight (out x in)."""
    problems = []
    for name, spec in sorted(safetensors_header(adapter).items()):
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


def check_adapters(model_dir: Path, adapters: list[Path]) -> None:
    """Each adapter folder complete, its files whole, and its LoRA shapes fitting the base model's weights."""
    base = tensor_shapes(model_dir) if adapters else {}
    for folder in adapters:
        weights = check_adapter_folder(folder)
        if weights is None or not base:  # .bin files have no header to read; PEFT checks those when it loads
            continue
        problems = shape_problems(weights, base)
        if problems:
            listed = "\n  ".join(problems[:8]) + (f"\n  ... and {len(problems) - 8} more" if len(problems) > 8 else "")
            raise ModelError(f"{weights}: the adapter does not fit the base model {model_dir} (trained on another "
                             f"model?):\n  {listed}\nset model_name_or_path to the model the adapter was trained "
                             "on")
