"""Checks of `tunelab export` configs: the export folder, the GGUF type, and GPTQ's requirements.

GPTQ (export_quantization_bit) needs a GPU and its libraries; tunelab reports what is missing before anything
loads. This version does not run GPTQ itself (it was built on machines without a GPU), so a config that has
everything GPTQ needs is still refused, with the way to do it instead.
"""

from __future__ import annotations

from tunelab.config.errors import Problem
from tunelab.config.schema import GGUF_LLAMA_QUANTIZE_TYPES, GGUF_PYTHON_TYPES, GGUF_TYPES, ExportSection
from tunelab.runtime import env

GPTQ_LIBRARIES = ("gptqmodel", "auto-gptq")


def export_dir_check(export: ExportSection) -> list[Problem]:
    """`tunelab export` writes into export_dir."""
    if export.export_dir:
        return []
    return [Problem("export_dir", "required: the folder the exported model is written to, e.g. "
                                  "export_dir=exports/my-model")]


def gguf_type_check(export: ExportSection) -> list[Problem]:
    """gguf_type belongs to the gguf and ollama formats, and names a known type."""
    if export.gguf_type is None:
        return []
    if export.export_format == "hf":
        return [Problem("gguf_type", "only used with export_format gguf or ollama; set export_format: gguf, or "
                                     "remove gguf_type")]
    if export.gguf_type.lower() not in GGUF_TYPES:
        return [Problem("gguf_type", f"unknown GGUF type {export.gguf_type!r}; use one of "
                                     f"{', '.join(GGUF_PYTHON_TYPES)} (written in Python) or "
                                     f"{', '.join(GGUF_LLAMA_QUANTIZE_TYPES)} (need llama.cpp's llama-quantize)")]
    return []


def legacy_format_check(export: ExportSection) -> list[Problem]:
    """export_legacy_format writes .bin shards of a Hugging Face folder, which a GGUF export does not keep."""
    if export.export_legacy_format and export.export_format != "hf":
        return [Problem("export_legacy_format", f"only used with export_format hf (the {export.export_format} "
                                                "export writes a GGUF file); remove it")]
    return []


def gptq_missing() -> list[str]:
    """What GPTQ needs that this machine lacks: a GPU, optimum, a GPTQ kernel library."""
    missing = []
    if not env.cuda_available():
        missing.append("a CUDA GPU (none is visible)")
    if env.package_version("optimum") is None:
        missing.append("the optimum package")
    if all(env.package_version(name) is None for name in GPTQ_LIBRARIES):
        missing.append("gptqmodel or auto-gptq")
    return missing


def quantization_check(export: ExportSection) -> list[Problem]:
    """export_quantization_bit: hf format only, with a calibration dataset, and GPTQ's GPU and libraries."""
    if export.export_quantization_bit is None:
        if export.export_quantization_dataset:
            return [Problem("export_quantization_dataset", "calibration data for export_quantization_bit, which "
                                                           "is not set; remove it")]
        return []
    if export.export_format != "hf":
        return [Problem("export_quantization_bit", f"GPTQ quantizes safetensors models; with export_format "
                                                   f"{export.export_format} set gguf_type (e.g. q4_0 or q8_0) "
                                                   "instead and remove export_quantization_bit")]
    problems = []
    if not export.export_quantization_dataset:
        problems.append(Problem("export_quantization_dataset", "required with export_quantization_bit: a JSON file "
                                                               "of calibration texts"))
    missing = gptq_missing()
    if missing:
        problems.append(Problem("export_quantization_bit", f"GPTQ needs {', '.join(missing)} on this machine; "
                                                           "remove export_quantization_bit to export unquantized "
                                                           "(or use export_format: gguf with gguf_type: q4_0)"))
    else:
        problems.append(Problem("export_quantization_bit", "GPTQ export is not available in this version of "
                                                           "tunelab; export unquantized and quantize with "
                                                           "optimum's GPTQQuantizer, or use export_format: gguf"))
    return problems
