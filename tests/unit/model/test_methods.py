"""Fine-tuning methods on the tiny Llama: freeze, full, the LoRA variants, continuing and merging adapters, and
the settings checked against the architecture before the weights load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.model.fit import check_fit, meta_model, method_problems
from tunelab.model.freeze import FreezeError, apply_freeze, find_layers
from tunelab.model.methods import apply_method
from tunelab.model.precision import Precision

BF16 = Precision(bf16=True, fp16=False, use_cpu=True, weights="bfloat16", note="")
FLOAT32 = Precision(bf16=False, fp16=False, use_cpu=True, weights="float32", note="")
PURE = Precision(bf16=False, fp16=False, use_cpu=True, weights="bfloat16", note="", trainable="bfloat16")


def config(**flat: Any) -> Any:
    return build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out", **flat})


def trainable(model: Any) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_the_layers_of_a_llama(tiny_llama: Any) -> None:
    layers = find_layers(tiny_llama)
    assert (layers.path, layers.count) == ("model.layers", 2)
    assert layers.modules == ("input_layernorm", "mlp", "post_attention_layernorm", "self_attn")
    assert layers.outside == ("embed_tokens", "lm_head", "norm")


@pytest.mark.parametrize(("flat", "layers"), [({"freeze_trainable_layers": 1}, {"1"}),
                                              ({"freeze_trainable_layers": -1}, {"0"}),
                                              ({"freeze_trainable_layers": 2}, {"0", "1"})])
def test_freeze_trains_the_chosen_layers(tiny_llama: Any, flat: dict[str, Any], layers: set[str]) -> None:
    apply_freeze(tiny_llama, config(finetuning_type="freeze", **flat).method)
    names = trainable(tiny_llama)
    assert {name.split(".")[2] for name in names} == layers
    assert all(name.startswith("model.layers.") for name in names)


def test_freeze_modules_and_extra_modules(tiny_llama: Any) -> None:
    what = apply_freeze(tiny_llama, config(finetuning_type="freeze", freeze_trainable_layers=1,
                                           freeze_trainable_modules="mlp", freeze_extra_modules="norm").method)
    assert trainable(tiny_llama) == {"model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
                                     "model.layers.1.mlp.down_proj.weight", "model.norm.weight"}
    assert what == "layers 1-1 of 2 (mlp) + norm"


def test_freeze_settings_that_do_not_fit(tiny_llama: Any) -> None:
    method = config(finetuning_type="freeze", freeze_trainable_layers=5, freeze_trainable_modules="mlp,attn",
                    freeze_extra_modules="wte").method
    with pytest.raises(FreezeError) as excinfo:
        apply_freeze(tiny_llama, method)
    assert str(excinfo.value) == (
        "freeze_trainable_layers: 5, but the model has 2 decoder layers; give 1 to 2 (the last n) or -1 to -2 (the "
        "first n); freeze_trainable_modules: attn not in the model's layers; a layer holds: input_layernorm, mlp, "
        "post_attention_layernorm, self_attn (or use all); freeze_extra_modules: wte not found outside the layers; "
        "there are: embed_tokens, lm_head, norm")


def test_full_trains_every_weight_in_float32(tiny_llama: Any) -> None:
    model, what = apply_method(tiny_llama.to(torch.bfloat16), config(finetuning_type="full", bf16=True), BF16)
    assert all(p.requires_grad and p.dtype == torch.float32 for p in model.parameters())
    assert what.startswith("full: every weight; ") and "(100.00%)" in what


def test_freeze_keeps_frozen_weights_in_bf16(tiny_llama: Any) -> None:
    model, _ = apply_method(tiny_llama, config(finetuning_type="freeze", freeze_trainable_layers=1), BF16)
    dtypes = {(p.requires_grad, p.dtype) for p in model.parameters()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}


def test_pure_bf16_keeps_trainable_weights_in_bf16(tiny_llama: Any) -> None:
    model, _ = apply_method(tiny_llama.to(torch.bfloat16), config(pure_bf16=True), PURE)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize(("flat", "marker"), [({"use_dora": True}, "lora_magnitude_vector"),
                                              ({"additional_target": "norm"}, "modules_to_save")])
def test_lora_variants_add_their_weights(tiny_llama: Any, flat: dict[str, Any], marker: str) -> None:
    model, what = apply_method(tiny_llama, config(**flat), BF16)
    assert any(marker in name for name in trainable(model))
    assert what.startswith("lora: new adapter r=8, alpha=16 on all")


def test_rslora_scales_by_the_square_root_of_the_rank(tiny_llama: Any) -> None:
    model, what = apply_method(tiny_llama, config(use_rslora=True, lora_rank=4, lora_alpha=8), BF16)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.scaling["default"] == pytest.approx(8 / 4**0.5)
    assert "(rsLoRA)" in what


def test_pissa_starts_from_the_principal_components(make_tiny_llama: Any) -> None:
    base = make_tiny_llama()
    inputs = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        expected = base(input_ids=inputs).logits
    model, _ = apply_method(make_tiny_llama(), config(pissa_init=True, pissa_iter=-1), FLOAT32)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.lora_B["default"].weight.abs().sum() > 0  # not the zero start of plain LoRA
    with torch.no_grad():  # residual weights + adapter = the original model
        assert torch.allclose(model(input_ids=inputs).logits, expected, atol=1e-4)


def saved_adapter(folder: Path, make_tiny_llama: Any, rank: int = 4) -> None:
    model, _ = apply_method(make_tiny_llama(), config(lora_rank=rank), BF16)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    model.save_pretrained(folder)


def test_continuing_an_adapter_trains_it_further(tmp_path: Path, make_tiny_llama: Any) -> None:
    saved_adapter(tmp_path / "a", make_tiny_llama, rank=4)
    model, what = apply_method(make_tiny_llama(), config(adapter_name_or_path=str(tmp_path / "a"), lora_rank=16),
                               BF16)
    assert model.peft_config["default"].r == 4 and trainable(model)
    assert what.startswith(f"lora: continuing adapter {tmp_path / 'a'} (r=4, alpha=8")


def test_several_adapters_merge_all_but_the_last(tmp_path: Path, make_tiny_llama: Any) -> None:
    saved_adapter(tmp_path / "a", make_tiny_llama)
    saved_adapter(tmp_path / "b", make_tiny_llama)
    model, what = apply_method(make_tiny_llama(), config(adapter_name_or_path=f"{tmp_path / 'a'},{tmp_path / 'b'}"),
                               BF16)
    assert what.startswith(f"lora: merged {tmp_path / 'a'} into the weights; continuing adapter {tmp_path / 'b'}")


def test_create_new_adapter_merges_and_starts_a_fresh_one(tmp_path: Path, make_tiny_llama: Any) -> None:
    saved_adapter(tmp_path / "a", make_tiny_llama)
    model, what = apply_method(make_tiny_llama(), config(adapter_name_or_path=str(tmp_path / "a"),
                                                         create_new_adapter=True, lora_rank=2), BF16)
    assert model.peft_config["default"].r == 2
    assert all(float(p.detach().abs().sum()) == 0 for n, p in model.named_parameters() if "lora_B" in n)
    assert what == (f"lora: merged {tmp_path / 'a'} into the weights; training a new adapter; "
                    + what.split("; ")[-1])


def test_fit_checks_use_the_architecture_without_weights(tiny_model_dir: Path) -> None:
    model = meta_model(tiny_model_dir)
    assert next(model.parameters()).device.type == "meta"
    problems = method_problems(model, config(lora_target="q_proj,qkv", additional_target="wte"))
    assert [p.key for p in problems] == ["lora_target", "additional_target"]
    assert problems[0].message.startswith("qkv not found in the model; its linear layers are: down_proj")
    with pytest.raises(ConfigError) as excinfo:
        check_fit(config(model_name_or_path=str(tiny_model_dir), finetuning_type="freeze",
                         freeze_trainable_layers=-3), tiny_model_dir)
    assert "freeze_trainable_layers: -3, but the model has 2 decoder layers" in str(excinfo.value)


def test_a_continued_adapter_needs_no_lora_target_check(tiny_model_dir: Path) -> None:
    model = meta_model(tiny_model_dir)
    assert method_problems(model, config(adapter_name_or_path="a", lora_target="nothing")) == []
