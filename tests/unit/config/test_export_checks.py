"""`tunelab export` configs: LLaMA-Factory's export keys with their meaning, gguf_type, GPTQ's requirements."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.config import export_checks
from tunelab.config.errors import ConfigError
from tunelab.config.load import build, load_config
from tunelab.config.schema import GGUF_LLAMA_QUANTIZE_TYPES, GGUF_PYTHON_TYPES, GGUF_TYPES

BASE = {"model_name_or_path": "tiny", "export_dir": "exports/x"}

# LLaMA-Factory's examples/merge_lora/llama3_lora_sft.yaml, with its export keys, unchanged
LF_EXPORT_YAML = """\
### Note: DO NOT use quantized model or quantization_bit when merging lora adapters

### model
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
adapter_name_or_path: saves/llama3-8b/lora/sft
template: llama3
trust_remote_code: true

### export
export_dir: output/llama3_lora_sft
export_size: 5
export_device: cpu  # choices: [cpu, auto]
export_legacy_format: false
"""


def problems(flat: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ConfigError) as excinfo:
        build(flat, "export")
    return {p.key: p.message for p in excinfo.value.problems}


def test_llamafactory_export_yaml_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(LF_EXPORT_YAML, encoding="utf-8")
    config = load_config(path, purpose="export")
    assert config.export.export_dir == "output/llama3_lora_sft" and config.export.export_size == 5
    assert config.export.export_device == "cpu" and config.export.export_legacy_format is False
    assert config.export.export_format == "hf" and config.export.export_verify is True
    assert config.model.adapter_name_or_path == "saves/llama3-8b/lora/sft" and config.data.template == "llama3"


def test_export_keys_are_no_longer_unsupported() -> None:
    config = build({**BASE, "export_hub_model_id": "me/model", "export_quantization_nsamples": 64,
                    "export_quantization_maxlen": 512, "infer_dtype": "bfloat16"}, "export")
    assert config.export.export_hub_model_id == "me/model" and config.infer.infer_dtype == "bfloat16"


def test_export_dir_is_required_for_export_only() -> None:
    assert problems({"model_name_or_path": "tiny"}) == {
        "export_dir": "required: the folder the exported model is written to, e.g. export_dir=exports/my-model"}
    assert build({"model_name_or_path": "tiny"}, "infer").export.export_dir is None


def test_gguf_type_belongs_to_gguf_and_ollama() -> None:
    assert problems({**BASE, "gguf_type": "q8_0"}) == {
        "gguf_type": "only used with export_format gguf or ollama; set export_format: gguf, or remove gguf_type"}
    for fmt in ("gguf", "ollama"):
        assert build({**BASE, "export_format": fmt, "gguf_type": "Q4_K_M"}, "export").export.gguf_type == "Q4_K_M"
    found = problems({**BASE, "export_format": "gguf", "gguf_type": "q4_k_x"})["gguf_type"]
    assert found.startswith("unknown GGUF type 'q4_k_x'; use one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1 "
                            "(written in Python) or q2_k,")
    assert set(GGUF_TYPES) == set(GGUF_PYTHON_TYPES) | set(GGUF_LLAMA_QUANTIZE_TYPES) and "q4_k_m" in GGUF_TYPES


def test_unknown_format_and_dtype() -> None:
    found = problems({**BASE, "export_format": "onnx", "export_dtype": "int8"})
    assert set(found) == {"export_format", "export_dtype"}


def test_gptq_without_gpu_or_libraries_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_checks.env, "cuda_available", lambda: False)
    monkeypatch.setattr(export_checks.env, "package_version", lambda name: None)
    found = problems({**BASE, "export_quantization_bit": 4})
    assert found == {
        "export_quantization_dataset": "required with export_quantization_bit: a JSON file of calibration texts",
        "export_quantization_bit": "GPTQ needs a CUDA GPU (none is visible), the optimum package, gptqmodel or "
                                   "auto-gptq on this machine; remove export_quantization_bit to export unquantized "
                                   "(or use export_format: gguf with gguf_type: q4_0)"}


def test_gptq_with_everything_is_still_refused_in_this_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_checks.env, "cuda_available", lambda: True)
    monkeypatch.setattr(export_checks.env, "package_version", lambda name: "1.0")
    found = problems({**BASE, "export_quantization_bit": 4, "export_quantization_dataset": "data/c4.json"})
    assert found["export_quantization_bit"].startswith("GPTQ export is not available in this version of tunelab")


def test_gptq_is_not_for_gguf_and_the_dataset_needs_the_bit() -> None:
    found = problems({**BASE, "export_format": "gguf", "export_quantization_bit": 4})
    assert found["export_quantization_bit"].startswith("GPTQ quantizes safetensors models; with export_format gguf "
                                                       "set gguf_type")
    assert problems({**BASE, "export_quantization_dataset": "c4.json"}) == {
        "export_quantization_dataset": "calibration data for export_quantization_bit, which is not set; remove it"}


def test_legacy_format_is_for_hf_folders() -> None:
    assert problems({**BASE, "export_format": "ollama", "export_legacy_format": True}) == {
        "export_legacy_format": "only used with export_format hf (the ollama export writes a GGUF file); remove it"}
    assert build({**BASE, "export_legacy_format": True}, "export").export.export_legacy_format
