"""Bad input is found from file headers before anything loads: each error names the file, or the module and the
two shapes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tunelab.config.load import build
from tunelab.export.errors import ExportError
from tunelab.export.preflight import safetensors_header
from tunelab.export.run import export

from .conftest import save_adapter


def run_export(base: Path, adapter: Path | str, out: Path) -> None:
    export(build({"model_name_or_path": str(base), "adapter_name_or_path": str(adapter), "export_dir": str(out)},
                 "export"))


def failure(base: Path, adapter: Path | str, out: Path) -> str:
    with pytest.raises(ExportError) as excinfo:
        run_export(base, adapter, out)
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.partial-*"))
    return str(excinfo.value)


def test_missing_adapter_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    message = failure(tiny_model_dir, tmp_path / "nowhere", tmp_path / "out")
    assert message.startswith(f"adapter_name_or_path: {tmp_path / 'nowhere'} does not exist")


def test_half_written_checkpoints(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path) -> None:
    no_weights = make_adapter("a")
    (no_weights / "adapter_model.safetensors").unlink()
    message = failure(tiny_model_dir, no_weights, tmp_path / "out")
    assert message.startswith(f"{no_weights / 'adapter_config.json'}: the adapter's weights")
    assert "half-written checkpoint" in message
    no_config = make_adapter("b")
    (no_config / "adapter_config.json").unlink()
    message = failure(tiny_model_dir, no_config, tmp_path / "out")
    assert message.startswith(f"{no_config / 'adapter_model.safetensors'}: adapter weights without "
                              "adapter_config.json")


def test_truncated_and_corrupt_safetensors(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                           tmp_path: Path) -> None:
    adapter = make_adapter()
    weights = adapter / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-100])
    message = failure(tiny_model_dir, adapter, tmp_path / "out")
    assert message.startswith(f"{weights}: truncated safetensors file ({len(data) - 100} bytes, its header "
                              f"promises {len(data)})")
    weights.write_bytes(b"\xff" * 8 + data[8:])
    assert failure(tiny_model_dir, adapter, tmp_path / "out").startswith(f"{weights}: corrupt safetensors file")
    weights.write_bytes(data[:8] + b"\x00" * (len(data) - 8))
    assert "its header is not JSON" in failure(tiny_model_dir, adapter, tmp_path / "out")
    weights.write_bytes(data[:5])
    assert "not even a header" in failure(tiny_model_dir, adapter, tmp_path / "out")


def test_truncated_base_weights(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1])
    # the model layer checks the base folder when it resolves it (model/preflight.py), for every command
    from tunelab.model.errors import ModelError

    with pytest.raises(ModelError, match="truncated") as excinfo:
        run_export(base, make_adapter(base=tiny_model_dir), tmp_path / "out")
    assert str(excinfo.value).startswith(f"{weights}: truncated") and not (tmp_path / "out").exists()


def test_adapter_of_another_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    other = tmp_path / "other-base"
    config = LlamaConfig(vocab_size=400, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    LlamaForCausalLM(config).save_pretrained(other)
    adapter = save_adapter(other, tmp_path / "adapter", 0, targets=("q_proj",))
    message = failure(tiny_model_dir, adapter, tmp_path / "out")
    assert message.startswith(f"{adapter / 'adapter_model.safetensors'}: the adapter does not fit the base model "
                              f"{tiny_model_dir}")
    assert ("model.layers.0.self_attn.q_proj: adapter lora_A.weight [4, 48] does not fit the base weight [32, 32] "
            "(in_features 32)") in message


def test_adapter_for_a_module_the_base_lacks(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    deeper = tmp_path / "deeper-base"
    LlamaForCausalLM(LlamaConfig(vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(deeper)
    adapter = save_adapter(deeper, tmp_path / "adapter", 0, targets=("q_proj",))
    assert "model.layers.2.self_attn.q_proj: the adapter has lora_A.weight [4, 32], but the base has no such module" \
        in failure(tiny_model_dir, adapter, tmp_path / "out")


def test_quantized_base_is_refused(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(config))
    message = failure(base, make_adapter(base=tiny_model_dir), tmp_path / "out")
    assert message.startswith(f"{base / 'config.json'}: the base model is bitsandbytes (quantization_config); "
                              "adapters cannot be merged into quantized weights")


def test_header_of_a_whole_file(make_adapter: Callable[..., Path]) -> None:
    table = safetensors_header(make_adapter() / "adapter_model.safetensors")
    assert any(name.endswith("q_proj.lora_A.weight") for name in table)


def test_a_base_config_that_is_not_json_is_named(tmp_path: Path) -> None:
    from tunelab.export.preflight import check_not_quantized

    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ExportError, match=r"config\.json: not valid JSON .*Hugging Face model folder"):
        check_not_quantized(tmp_path)
