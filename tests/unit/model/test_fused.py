"""The fused model pieces give PEFT's values and gradients."""

from __future__ import annotations

from typing import Any

import torch

from tunelab.model.fused import fuse_lora_linears


def lora_model(make_tiny_llama: Any, **options: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, **options)
    return get_peft_model(make_tiny_llama(), config)


def loss_and_grads(model: Any, ids: torch.Tensor, autocast: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


def relative_errors(grads: list[torch.Tensor], reference: list[torch.Tensor]) -> list[float]:
    return [((got - want).norm() / want.norm()).item() for got, want in zip(grads, reference)]


def test_fused_lora_values_and_gradients_equal_peft(make_tiny_llama: Any) -> None:
    model = lora_model(make_tiny_llama)
    ids = torch.randint(3, 90, (2, 9), generator=torch.Generator().manual_seed(0))
    want_loss, want_grads = loss_and_grads(model, ids, autocast=False)
    peft_bf16_loss, peft_bf16_grads = loss_and_grads(model, ids, autocast=True)
    assert fuse_lora_linears(model) == 2 * 7 and fuse_lora_linears(model) == 0  # every linear, once
    loss, grads = loss_and_grads(model, ids, autocast=False)
    torch.testing.assert_close(loss, want_loss)
    assert max(relative_errors(grads, want_grads)) < 1e-5
    # bf16 autocast: no further from the float32 values than PEFT's own bf16 computation
    loss, grads = loss_and_grads(model, ids, autocast=True)
    assert abs(loss - want_loss) <= 1.5 * abs(peft_bf16_loss - want_loss) + 1e-3
    for ours, peft in zip(relative_errors(grads, want_grads), relative_errors(peft_bf16_grads, want_grads)):
        assert ours <= 1.5 * peft + 2e-3


def test_fused_lora_leaves_other_cases_to_peft(make_tiny_llama: Any) -> None:
    model = lora_model(make_tiny_llama, lora_dropout=0.5)  # dropout: PEFT's forward
    fuse_lora_linears(model)
    ids = torch.randint(3, 90, (1, 6), generator=torch.Generator().manual_seed(0))
    model.eval()  # dropout off, so the outputs compare
    first = model(input_ids=ids).logits
    with model.disable_adapter():
        base = model(input_ids=ids).logits
    assert not torch.allclose(first, base)
    model.merge_adapter()
    torch.testing.assert_close(model(input_ids=ids).logits, first, rtol=1e-4, atol=1e-5)
