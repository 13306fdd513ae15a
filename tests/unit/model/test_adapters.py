"""LoRA targets and application on the tiny Llama."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.config.schema import LoraSection
from tunelab.model.adapters import AdapterError, apply_lora, count_parameters, load_adapters, lora_targets

LLAMA_LINEARS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def lora_size(in_features: int, out_features: int, rank: int) -> int:
    return rank * (in_features + out_features)


# per layer of the tiny Llama (hidden 32, 4 heads of 8, 2 kv heads, intermediate 64)
SHAPES = {"q_proj": (32, 32), "k_proj": (32, 16), "v_proj": (32, 16), "o_proj": (32, 32),
          "gate_proj": (32, 64), "up_proj": (32, 64), "down_proj": (64, 32)}


def test_all_means_every_linear_layer_but_the_output_head(tiny_llama: Any) -> None:
    assert lora_targets(tiny_llama, "all") == LLAMA_LINEARS
    assert lora_targets(tiny_llama, " all ") == LLAMA_LINEARS
    assert "lm_head" not in lora_targets(tiny_llama, "all")


def test_named_modules(tiny_llama: Any) -> None:
    assert lora_targets(tiny_llama, "q_proj, v_proj") == ["q_proj", "v_proj"]


def test_unknown_module_lists_the_available_ones(tiny_llama: Any) -> None:
    with pytest.raises(AdapterError) as excinfo:
        lora_targets(tiny_llama, "q_proj,query_key_value,lm_head")
    assert str(excinfo.value) == ("lora_target: query_key_value, lm_head not found in the model; its linear layers "
                                  f"are: {', '.join(LLAMA_LINEARS)} (or use lora_target: all)")


@pytest.mark.parametrize(("target", "rank"), [("all", 8), ("q_proj,v_proj", 4)])
def test_apply_lora_trains_only_the_adapters(tiny_llama: Any, target: str, rank: int) -> None:
    total_before = count_parameters(tiny_llama)[1]
    model = apply_lora(tiny_llama, LoraSection(lora_target=target, lora_rank=rank))
    names = LLAMA_LINEARS if target == "all" else target.split(",")
    expected = 2 * sum(lora_size(*SHAPES[name], rank) for name in names)
    trainable, total = count_parameters(model)
    assert trainable == expected
    assert total == total_before + expected
    assert all("lora_" in name for name, p in model.named_parameters() if p.requires_grad)


def test_apply_lora_alpha_defaults_to_twice_the_rank(tiny_llama: Any) -> None:
    config = apply_lora(tiny_llama, LoraSection(lora_rank=4)).peft_config["default"]
    assert (config.r, config.lora_alpha) == (4, 8)


def test_load_adapters_needs_adapter_config(tmp_path: Any, tiny_llama: Any) -> None:
    with pytest.raises(AdapterError) as excinfo:
        load_adapters(tiny_llama, f"{tmp_path}")
    assert str(excinfo.value) == (f"adapter_name_or_path: {tmp_path} has no adapter_config.json; give the output_dir "
                                  "of a LoRA run")


def test_a_saved_adapter_loads_back_with_the_same_outputs(tmp_path: Any, make_tiny_llama: Any) -> None:
    import torch

    model = apply_lora(make_tiny_llama(), LoraSection(lora_rank=4))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_()  # B starts at zero; make the adapter change the outputs
    model.save_pretrained(tmp_path)
    inputs = torch.tensor([[1, 5, 9, 2]])
    loaded = load_adapters(make_tiny_llama(), str(tmp_path))
    with torch.no_grad():
        expected = model(input_ids=inputs).logits
        assert torch.allclose(loaded(input_ids=inputs).logits, expected, atol=1e-6)
        assert not torch.allclose(make_tiny_llama()(input_ids=inputs).logits, expected, atol=1e-3)
    assert count_parameters(loaded)[0] == 0  # loaded for inference: frozen


def test_adapters_train_in_float32_over_bf16_frozen_weights(make_tiny_llama: Any) -> None:
    """precision.decide promises 'frozen weights stored in bf16, trainable weights in float32'."""
    import torch

    model = apply_lora(make_tiny_llama().to(torch.bfloat16), LoraSection())
    dtypes = {(p.requires_grad, p.dtype) for p in model.parameters()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}


def test_keep_input_dtype_turns_off_peft_input_casting(make_tiny_llama) -> None:
    from peft import LoraConfig, get_peft_model

    from tunelab.model.adapters import keep_input_dtype

    model = get_peft_model(make_tiny_llama(), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert keep_input_dtype(model) == 4  # 2 layers x (q_proj, v_proj)
    assert all(not m.cast_input_dtype_enabled for m in model.modules() if hasattr(m, "cast_input_dtype_enabled"))
