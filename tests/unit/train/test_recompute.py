"""Recomputing the cheap work of each layer changes no loss or gradient, keeps the large products, and runs the
layers' elementwise work again in the backward pass."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.checkpoint import CheckpointPolicy

from tunelab.config.schema import LoraSection
from tunelab.data.collate import PackedCollator
from tunelab.model.adapters import apply_lora, base_model
from tunelab.model.attention import use_packed_attention
from tunelab.model.fused import fuse_lora_linears
from tunelab.train import recompute
from tunelab.train.loss import selective_loss

aten = torch.ops.aten


@pytest.mark.parametrize(("setting", "parameters", "expected"), [
    (True, 10, "full"), (False, 2_000_000_000, "none"), ("cheap", 2_000_000_000, "cheap"),
    (None, 2_000_000_000, "full"), (None, 135_000_000, "none")])
def test_choose(setting: bool | str | None, parameters: int, expected: str) -> None:
    assert recompute.choose(setting, parameters) == expected


def test_cheap_is_for_pt_and_sft_only() -> None:
    from tunelab.config.errors import ConfigError
    from tunelab.config.load import build

    flat = {"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out", "gradient_checkpointing": "cheap"}
    assert build(flat).train.gradient_checkpointing == "cheap"
    with pytest.raises(ConfigError, match="cheap is measured for stages pt and sft only, not dpo; use true or false"):
        build({**flat, "stage": "dpo"})


def test_policy_keeps_large_products_and_attention_kernels_only() -> None:
    ctx: Any = None
    big, rank = torch.empty(4, 512), torch.empty(4, 8)
    keep, again = CheckpointPolicy.MUST_SAVE, CheckpointPolicy.PREFER_RECOMPUTE
    assert recompute.keep_output(ctx, aten.mm.default, big, torch.empty(512, 3)) == keep  # a projection
    assert recompute.keep_output(ctx, aten.addmm.default, torch.empty(3), big, torch.empty(512, 3)) == keep
    assert recompute.keep_output(ctx, aten.addmm.default, torch.empty(4, 3), rank, torch.empty(8, 3)) == again
    scores = (torch.empty(2, 4, 64), torch.empty(2, 64, 4))  # attention scores: head dimension 64
    assert recompute.keep_output(ctx, aten.bmm.default, *scores) == again
    assert recompute.keep_output(ctx, aten.mul.Tensor, big, big) == again
    if recompute.ATTENTION_KERNELS:
        assert recompute.keep_output(ctx, recompute.ATTENTION_KERNELS[0], big, big, big) == keep


def lora_model(make_tiny_llama: Any) -> Any:
    model = apply_lora(make_tiny_llama(), LoraSection(lora_rank=2, lora_alpha=4, lora_target="all"))
    fuse_lora_linears(model)
    assert use_packed_attention(base_model(model))
    return model.train()


def packed_batch(vocab: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(3)
    rows = []
    for n in (7, 12, 9):
        ids = torch.randint(3, vocab, (n,), generator=gen).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * 3 + ids[3:]})
    return PackedCollator()(rows)


def loss_and_grads(model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    loss = selective_loss(model, batch, None)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


@pytest.mark.parametrize("inner", [256, 16])  # 16: the tiny model's projections (inner 32, 64) are kept
def test_same_loss_and_gradients(make_tiny_llama: Any, tiny_tokenizer: Any, monkeypatch: pytest.MonkeyPatch,
                                 inner: int) -> None:
    monkeypatch.setattr(recompute, "CHEAP_INNER_DIM", inner)
    batch = packed_batch(len(tiny_tokenizer))
    plain, cheap = lora_model(make_tiny_llama), lora_model(make_tiny_llama)
    assert recompute.enable_cheap(cheap)
    expected, expected_grads = loss_and_grads(plain, batch)
    got, grads = loss_and_grads(cheap, batch)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert len(grads) == len(expected_grads) > 0
    for a, b in zip(grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def backward_flops(model: Any, batch: dict[str, Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    loss = selective_loss(model, batch, None)
    with FlopCounterMode(display=False) as counter:
        loss.backward()
    return counter.get_total_flops()


def test_layers_run_again_in_backward_but_large_products_do_not(make_tiny_llama: Any, tiny_tokenizer: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recompute, "CHEAP_INNER_DIM", 16)
    batch = packed_batch(len(tiny_tokenizer))
    plain, cheap, full = (lora_model(make_tiny_llama) for _ in range(3))
    recompute.enable_cheap(cheap)
    base_model(full).gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layer = base_model(cheap).model.layers[0]
    calls = []
    layer.post_attention_layernorm.register_forward_hook(lambda *_: calls.append(1))
    flops = {name: backward_flops(model, batch) for name, model in
             (("none", plain), ("cheap", cheap), ("full", full))}
    assert len(calls) == 2  # the norm ran again in the backward pass
    # the kept projections are not multiplied again: only the rank-2 updates and the attention scores are
    assert flops["none"] < flops["cheap"] < flops["full"]
    assert flops["cheap"] - flops["none"] < (flops["full"] - flops["none"]) / 2


def test_models_without_checkpointable_layers_are_left_alone() -> None:
    assert not recompute.enable_cheap(torch.nn.Linear(2, 2))
