"""Packed (padding-free) batches give the same loss and gradients as padded ones."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tunelab.data.collate import PackedCollator, PadCollator
from tunelab.model.attention import NAME, use_packed_attention, uses_packed_attention
from tunelab.train.loss import selective_loss


def examples(lengths: tuple[int, ...], prompt: int = 2) -> list[dict[str, list[int]]]:
    generator = torch.Generator().manual_seed(0)
    out = []
    for n in lengths:
        ids = torch.randint(3, 90, (n,), generator=generator).tolist()
        out.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return out


def test_packed_collator_layout() -> None:
    batch = PackedCollator()(examples((3, 5)))
    assert batch["input_ids"].shape == (1, 8)
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 4]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 8] and batch["max_length_q"] == 5
    assert batch["labels"][0, 3].item() == -100  # an example's first token is never a target
    assert "attention_mask" not in batch


@pytest.mark.parametrize("lora", [False, True])
def test_packed_loss_and_gradients_equal_padded(make_tiny_llama: Any, lora: bool) -> None:
    model = make_tiny_llama()
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    batch_examples = examples((7, 12, 5))
    padded = PadCollator(0)(batch_examples)
    count = (padded["labels"][:, 1:] != -100).sum()
    reference = selective_loss(model, padded, count)
    reference.backward()
    expected = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    base = model.get_base_model() if lora else model
    assert use_packed_attention(base) and uses_packed_attention(model)
    packed = PackedCollator()(batch_examples)
    assert (packed["labels"][:, 1:] != -100).sum() == count
    loss = selective_loss(model, packed, count)
    loss.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    for want, param in zip(expected, [p for p in model.parameters() if p.requires_grad]):
        torch.testing.assert_close(param.grad, want, rtol=1e-4, atol=1e-6)


def test_packed_attention_without_bounds_is_plain_sdpa(make_tiny_llama: Any) -> None:
    model = make_tiny_llama()
    ids = torch.randint(3, 90, (2, 6))
    expected = model(input_ids=ids).logits
    use_packed_attention(model)
    assert model.config._attn_implementation == NAME
    torch.testing.assert_close(model(input_ids=ids).logits, expected)
