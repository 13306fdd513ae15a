"""The tensor details that break converted models: the llama q/k permutation, Gemma's norm + 1, tied embeddings,
quant blocks that do not fit a row, sharded checkpoints, and the errors for what the writer does not map."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.unit.export.gguf_models import save_tiny_model
from tunelab.export.errors import ExportError
from tunelab.export.gguf import ARCHITECTURES, PYTHON_TYPES, write_gguf
from tunelab.export.gguf import arch as arch_module

PROMPT = "Hello there, how are you? I am fine, thanks."


@pytest.fixture
def tokenizer(tiny_tokenizer_json: str) -> Any:
    from tests.conftest import chatml_template, make_tokenizer

    return make_tokenizer(tiny_tokenizer_json, chatml_template())


def tensors(path: Path) -> dict[str, Any]:
    """The GGUF's tensors by name (GGUFReader's ReaderTensor)."""
    from gguf import GGUFReader

    return {t.name: t for t in GGUFReader(path).tensors}


def float_data(tensor: Any) -> np.ndarray:
    """A tensor's values in numpy (HF) order."""
    from gguf import dequantize

    return dequantize(tensor.data, tensor.tensor_type).reshape(tuple(reversed([int(n) for n in tensor.shape])))


def logit_error(folder: Path, name: str, model: Any, tokenizer: Any) -> float:
    """Relative RMS error of the GGUF's logits (loaded by transformers) against model's."""
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    with torch.no_grad():
        reference, logits = model(ids).logits, loaded(ids).logits
    return ((logits - reference).norm() / reference.norm()).item()


def test_llama_permutes_q_and_k_rows_and_qwen_does_not(tmp_path: Path, tokenizer: Any) -> None:
    for arch in ("llama", "qwen2"):
        folder = tmp_path / arch
        model = save_tiny_model(folder, arch, tokenizer)
        found = tensors(write_gguf(folder, folder / "m.gguf", "f32").path)
        for proj, short, heads in (("q_proj", "q", 4), ("k_proj", "k", 2)):
            hf = getattr(model.model.layers[0].self_attn, proj).weight.detach().numpy()
            gguf = float_data(found[f"blk.0.attn_{short}.weight"])
            # llama.cpp's layout: within each head, rows (i, i + half) of HF's half-split rotary become (2i, 2i + 1)
            interleaved = hf.reshape(heads, 2, -1, hf.shape[1]).swapaxes(1, 2).reshape(hf.shape)
            np.testing.assert_array_equal(gguf, interleaved if arch == "llama" else hf)


def test_without_the_permutation_llama_logits_are_wrong(tmp_path: Path, tokenizer: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model = save_tiny_model(tmp_path, "llama", tokenizer)
    monkeypatch.setitem(ARCHITECTURES, "llama", dataclasses.replace(ARCHITECTURES["llama"], permute_qk=False))
    write_gguf(tmp_path, tmp_path / "unpermuted.gguf", "f32")
    # The right f32 file is bit-exact (error 0); in these tiny random models the residual stream dominates the
    # logits, so the wrong rotary pairing shows as ~1e-3 rather than a wreck (SmolLM2's test compares the tensors
    # with llama.cpp's own conversion instead).
    assert logit_error(tmp_path, "unpermuted.gguf", model, tokenizer) > 1e-4


def test_gemma_norms_are_stored_plus_one(tmp_path: Path, tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model = save_tiny_model(tmp_path, "gemma2", tokenizer)
    found = tensors(write_gguf(tmp_path, tmp_path / "m.gguf", "q8_0").path)
    layer = model.model.layers[1]
    for gguf_name, module in (("blk.1.attn_norm", layer.input_layernorm),
                              ("blk.1.post_attention_norm", layer.post_attention_layernorm),
                              ("blk.1.ffn_norm", layer.pre_feedforward_layernorm),
                              ("blk.1.post_ffw_norm", layer.post_feedforward_layernorm),
                              ("output_norm", model.model.norm)):
        stored = float_data(found[f"{gguf_name}.weight"])
        np.testing.assert_allclose(stored, module.weight.detach().numpy() + 1.0, rtol=0, atol=1e-6)
    monkeypatch.setitem(ARCHITECTURES, "gemma2", dataclasses.replace(ARCHITECTURES["gemma2"], norm_plus_one=False))
    write_gguf(tmp_path, tmp_path / "raw-norms.gguf", "f32")
    assert logit_error(tmp_path, "raw-norms.gguf", model, tokenizer) > 0.5


@pytest.mark.parametrize(("arch", "tied"), [("llama", True), ("llama", False), ("qwen2", False), ("gemma2", True)])
def test_output_weight_only_when_not_tied(tmp_path: Path, tokenizer: Any, arch: str, tied: bool) -> None:
    model = save_tiny_model(tmp_path, arch, tokenizer, tie_word_embeddings=tied)
    report = write_gguf(tmp_path, tmp_path / "m.gguf", "f16")
    found = tensors(report.path)
    assert ("output.weight" in found) is (not tied)
    assert report.tensors == len(found) == len(model.state_dict()) - (1 if tied else 0)
    assert logit_error(tmp_path, "m.gguf", model, tokenizer) < 2e-3


def test_untied_model_without_its_output_layer_is_refused(tmp_path: Path, tokenizer: Any) -> None:
    from safetensors.torch import load_file, save_file

    save_tiny_model(tmp_path, "llama", tokenizer, tie_word_embeddings=False)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["lm_head.weight"]
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(ExportError, match="tie_word_embeddings: false but no lm_head.weight"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "f16")


def test_rows_that_are_not_whole_blocks_stay_f16(tmp_path: Path, tokenizer: Any) -> None:
    from gguf import GGMLQuantizationType as Q

    model = save_tiny_model(tmp_path, "llama", tokenizer, intermediate_size=80)  # ffn_down rows: 80 values
    report = write_gguf(tmp_path, tmp_path / "m.gguf", "q4_0")
    assert [k.split(":")[0] for k in report.kept_float] == ["blk.0.ffn_down.weight", "blk.1.ffn_down.weight"]
    assert "not a multiple of the Q4_0 block (32)" in report.kept_float[0]
    found = tensors(report.path)
    assert found["blk.0.ffn_down.weight"].tensor_type == Q.F16
    assert found["blk.0.ffn_up.weight"].tensor_type == Q.Q4_0
    assert found["blk.0.attn_norm.weight"].tensor_type == Q.F32  # 1-D tensors stay f32
    assert logit_error(tmp_path, "m.gguf", model, tokenizer) < 0.35


def test_file_type_and_1d_tensors(tmp_path: Path, tokenizer: Any) -> None:
    from gguf import GGMLQuantizationType as Q
    from gguf import GGUFReader

    save_tiny_model(tmp_path, "qwen2", tokenizer)
    for name, spec in PYTHON_TYPES.items():
        reader = GGUFReader(write_gguf(tmp_path, tmp_path / f"{name}.gguf", name).path)
        assert reader.fields["general.file_type"].contents() == spec.file
        types = {t.name: t.tensor_type for t in reader.tensors}
        assert types["blk.0.attn_q.bias"] == Q.F32 and types["blk.0.attn_q.weight"] == spec.tensor


def test_sharded_checkpoint_converts_like_one_file(tmp_path: Path, tokenizer: Any) -> None:
    model = save_tiny_model(tmp_path / "one", "llama", tokenizer)
    model.save_pretrained(tmp_path / "sharded", max_shard_size="40KB")
    tokenizer.save_pretrained(tmp_path / "sharded")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    one = write_gguf(tmp_path / "one", tmp_path / "one.gguf", "f16")
    sharded = write_gguf(tmp_path / "sharded", tmp_path / "sharded.gguf", "f16")
    assert sharded.tensors == one.tensors
    a, b = tensors(one.path), tensors(sharded.path)
    for name in a:
        np.testing.assert_array_equal(float_data(a[name]), float_data(b[name]))


def test_unmapped_architecture_lists_the_mapped_ones(tmp_path: Path, tokenizer: Any) -> None:
    save_tiny_model(tmp_path, "llama", tokenizer)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "phi3"}))
    with pytest.raises(ExportError, match=r"config.json: model_type 'phi3' .* maps gemma2, llama, qwen2, qwen3"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "f16")
    assert list(tmp_path.glob("*.gguf*")) == []


def test_unsupported_rope_scaling_is_named(tmp_path: Path, tokenizer: Any) -> None:
    save_tiny_model(tmp_path, "llama", tokenizer)
    config = json.loads((tmp_path / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="rope_type 'yarn'"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "f16")


def test_bad_inputs_name_the_file_and_leave_nothing(tmp_path: Path, tokenizer: Any) -> None:
    with pytest.raises(ExportError, match=r"config.json: missing"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "f16")
    save_tiny_model(tmp_path, "llama", tokenizer)
    with pytest.raises(ExportError, match=r"gguf_type 'q3_0' is unknown; pick one of f32, f16"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "q3_0")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a half-written checkpoint
    with pytest.raises(ExportError, match=r"model.safetensors: not a readable safetensors file"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "f16")
    assert list(tmp_path.glob("*.gguf*")) == []


def test_a_failed_write_leaves_no_file(tmp_path: Path, tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gguf import GGUFWriter

    save_tiny_model(tmp_path, "llama", tokenizer)

    def disk_full(self: GGUFWriter, tensor: np.ndarray) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(GGUFWriter, "write_tensor_data", disk_full)
    with pytest.raises(ExportError, match=r"m.gguf: writing the GGUF failed .*No space left on device"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "q8_0")
    assert list(tmp_path.glob("*.gguf*")) == []


def test_k_quants_need_llama_quantize(tmp_path: Path, tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    save_tiny_model(tmp_path, "llama", tokenizer)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ExportError, match=r"llama-quantize, which is not on PATH; .* pick one of f32, f16, bf16, "
                                          r"q8_0, q4_0, q4_1, q5_0, q5_1"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "q4_k_m")


def test_k_quants_run_llama_quantize_on_an_f16_file(tmp_path: Path, tokenizer: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    save_tiny_model(tmp_path, "llama", tokenizer)
    binary = tmp_path / "bin" / "llama-quantize"
    binary.parent.mkdir()
    # A stand-in that records its arguments and copies its input, so the test sees what the writer hands over.
    binary.write_text(f"#!{sys.executable}\nimport shutil, sys, json\n"
                      f"json.dump(sys.argv[1:], open({str(tmp_path / 'args.json')!r}, 'w'))\n"
                      "shutil.copy(sys.argv[1], sys.argv[2])\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{binary.parent}{os.pathsep}{os.environ['PATH']}")
    report = write_gguf(tmp_path, tmp_path / "m.gguf", "q4_k_m")
    source, out, kind = json.loads((tmp_path / "args.json").read_text())
    assert kind == "Q4_K_M" and source.endswith(".f16.partial") and out.endswith("m.gguf.partial")
    assert report.path == tmp_path / "m.gguf" and report.gguf_type == "q4_k_m"
    assert sorted(p.name for p in tmp_path.glob("*.gguf*")) == ["m.gguf"]


def test_the_table_covers_what_the_architecture_list_says() -> None:
    assert sorted(arch_module.ARCHITECTURES) == ["gemma2", "llama", "qwen2", "qwen3"]


def test_importing_the_writer_loads_neither_torch_nor_transformers() -> None:
    """The CLI and the config checks import GGUF_TYPES; torch and transformers load only when a file is written."""
    import subprocess
    import sys

    code = ("import sys, tunelab.export.gguf; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.stdout.strip() == "[]"
