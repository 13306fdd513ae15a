"""The streaming GGUF writer: tensor infos from the safetensors headers first, then each tensor loaded, fixed,
encoded and written on its own, so peak memory stays near one copy of the largest tensor."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_VERSION, GGMLQuantizationType, GGUFWriter
from safetensors import SafetensorError, safe_open

from tunelab.export.errors import ExportError
from tunelab.export.files import read_json
from tunelab.export.gguf.arch import ArchSpec, HFConfig, add_hparams, arch_spec, fix_tensor, gguf_name
from tunelab.export.gguf.quantize import GGUF_TYPES, K_QUANTS, PYTHON_TYPES, encode, encoded_nbytes, tensor_type
from tunelab.export.gguf.vocab import add_vocab, load_tokenizer

# Buffers transformers may save that are recomputed at load time and have no GGUF tensor.
_SKIPPED = ("rotary_emb.inv_freq",)


@dataclass(frozen=True)
class GgufReport:
    """What write_gguf wrote: the file, its GGUF architecture, tensor count and size, and the 2-D tensors left in
    f16 because their rows are not whole quant blocks ("name: reason"; for K-quants llama-quantize picks its own
    fallbacks and prints them)."""

    path: Path
    arch: str
    tensors: int
    bytes: int
    gguf_type: str
    kept_float: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Planned:
    hf_name: str
    name: str
    file: Path
    shape: tuple[int, ...]
    qtype: GGMLQuantizationType


def _read_config(model_dir: Path) -> HFConfig:
    return read_json(model_dir / "config.json", "write_gguf converts a Hugging Face model folder (config.json, "
                     "*.safetensors, tokenizer files), such as the merged export")


def _weight_files(model_dir: Path) -> list[Path]:
    """The safetensors files, in the order the index lists them (or sorted when there is one file set)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index, "export the merged model again").get("weight_map")
        if not isinstance(weight_map, dict):
            raise ExportError(f"{index}: no weight_map; the export is incomplete, export the merged model again")
        names = dict.fromkeys(weight_map.values())
        files = [model_dir / name for name in names]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ExportError(f"{index}: lists {', '.join(missing)}, which is missing; the export is incomplete, "
                              "export the merged model again")
        return files
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ExportError(f"{model_dir}: no *.safetensors weights; save the model with save_pretrained "
                          "(safe_serialization) before converting it to GGUF")
    return files


def _headers(files: list[Path]) -> Iterator[tuple[Path, str, tuple[int, ...]]]:
    """(file, tensor name, shape) from the safetensors headers, without loading any tensor."""
    for path in files:
        try:
            with safe_open(path, framework="pt") as f:
                for name in f.keys():
                    yield path, name, tuple(f.get_slice(name).get_shape())
        except (SafetensorError, OSError) as err:
            raise ExportError(f"{path}: not a readable safetensors file ({err}); export the model again") from err


def _plan(spec: ArchSpec, config: HFConfig, files: list[Path], gguf_type: str) -> list[_Planned]:
    """Every tensor to write, with its GGUF name and type; the tied lm_head and recomputed buffers left out."""
    layers = int(config["num_hidden_layers"])
    tied = bool(config.get("tie_word_embeddings", spec.tied_by_default))
    planned = []
    for path, hf_name, shape in _headers(files):
        if hf_name.endswith(_SKIPPED) or (tied and hf_name == "lm_head.weight"):
            continue
        name = gguf_name(spec, hf_name, layers)
        if name is None:
            raise ExportError(f"{path}: tensor {hf_name!r} has no {spec.name} GGUF name; the folder holds a "
                              f"{config.get('model_type')} model with parameters tunelab's GGUF writer does not map")
        planned.append(_Planned(hf_name, name, path, shape, tensor_type(gguf_type, shape)[0]))
    if not tied and not any(p.hf_name == "lm_head.weight" for p in planned):
        # llama.cpp and transformers would read a file without output.weight as tied, silently changing the model
        raise ExportError(f"{files[0].parent}: config.json says tie_word_embeddings: false but no lm_head.weight "
                          "is saved; save the model again (save_pretrained) so its output layer is included")
    return planned


def _write_tensors(writer: GGUFWriter, spec: ArchSpec, config: HFConfig, planned: list[_Planned]) -> None:
    """Load, fix, encode and write each tensor in turn."""
    for item in planned:
        # safe_open maps the whole file; reopening it per tensor unmaps the pages already read, so the resident set
        # holds one tensor of the source rather than all of it by the end.
        with safe_open(item.file, framework="pt") as source:
            tensor = source.get_tensor(item.hf_name)
        data = fix_tensor(spec, config, item.name, tensor.float().numpy())
        del tensor
        writer.write_tensor_data(encode(data, item.qtype))


def _write_python_type(model_dir: Path, out: Path, gguf_type: str, name: str) -> GgufReport:
    """Convert to one of the types the gguf package encodes, writing out (a temporary path)."""
    config = _read_config(model_dir)
    spec = arch_spec(config, str(model_dir / "config.json"))
    planned = _plan(spec, config, _weight_files(model_dir), gguf_type)
    tokenizer = load_tokenizer(model_dir)
    writer = GGUFWriter(out, spec.name)
    writer.add_type("model")
    writer.add_name(name)
    writer.add_file_type(PYTHON_TYPES[gguf_type].file)
    writer.add_quantization_version(GGML_QUANT_VERSION)
    add_hparams(writer, spec, config, str(model_dir / "config.json"))
    add_vocab(writer, tokenizer, model_dir, int(config["vocab_size"]))
    for item in planned:
        writer.add_tensor_info(item.name, item.shape, np.dtype(np.float32), encoded_nbytes(item.shape, item.qtype),
                               raw_dtype=item.qtype)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        _write_tensors(writer, spec, config, planned)
    finally:
        writer.close()
    kept = [f"{p.name}: {reason}" for p in planned if (reason := tensor_type(gguf_type, p.shape)[1])]
    return GgufReport(path=out, arch=spec.name, tensors=len(planned), bytes=out.stat().st_size,
                      gguf_type=gguf_type, kept_float=kept)


def _llama_quantize_binary(gguf_type: str) -> str:
    """The llama-quantize on PATH, or an ExportError listing the types written without it."""
    binary = shutil.which("llama-quantize")
    if binary is None:
        raise ExportError(f"gguf_type {gguf_type}: K-quants are written by llama.cpp's llama-quantize, which is not "
                          f"on PATH; install llama.cpp, or pick one of {', '.join(PYTHON_TYPES)}")
    return binary


def _llama_quantize(binary: str, source: Path, out: Path, gguf_type: str) -> None:
    """Re-encode an f16 GGUF as a K-quant with llama.cpp's llama-quantize."""
    result = subprocess.run([binary, str(source), str(out), gguf_type.upper()], capture_output=True, text=True)
    if result.returncode != 0 or not out.is_file():
        raise ExportError(f"llama-quantize {gguf_type.upper()} of {source} failed (exit {result.returncode}): "
                          f"{result.stderr.strip()[-500:]}")


def write_gguf(model_dir: Path, dest: Path, gguf_type: str, name: str | None = None) -> GgufReport:
    """Convert a Hugging Face model folder into one GGUF file at dest (written under a temporary name, then renamed);
    name is the model's general.name (default: the folder's name)."""
    name = name or model_dir.name
    if gguf_type not in GGUF_TYPES:
        raise ExportError(f"gguf_type {gguf_type!r} is unknown; pick one of {', '.join(GGUF_TYPES)}")
    binary = _llama_quantize_binary(gguf_type) if gguf_type in K_QUANTS else None
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    f16 = dest.with_name(dest.name + ".f16.partial")
    try:
        if binary is not None:
            report = _write_python_type(model_dir, f16, "f16", name)
            _llama_quantize(binary, f16, partial, gguf_type)
        else:
            report = _write_python_type(model_dir, partial, gguf_type, name)
        partial.replace(dest)
    except OSError as err:
        raise ExportError(f"{dest}: writing the GGUF failed ({err}); nothing was left at that path") from err
    finally:
        partial.unlink(missing_ok=True)
        f16.unlink(missing_ok=True)
    return GgufReport(path=dest, arch=report.arch, tensors=report.tensors, bytes=dest.stat().st_size,
                      gguf_type=gguf_type, kept_float=report.kept_float)
