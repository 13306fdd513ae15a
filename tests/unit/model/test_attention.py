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


def reference_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, edges: list[int],
                        scale: float) -> torch.Tensor:
    """SDPA per example in float32 with the key/value heads repeated: [1, tokens, heads, dim]."""
    group = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(group, dim=1), value.repeat_interleave(group, dim=1)
    outputs = [torch.nn.functional.scaled_dot_product_attention(
        query[:, :, a:b].float(), key[:, :, a:b].float(), value[:, :, a:b].float(), is_causal=True, scale=scale)
        for a, b in zip(edges[:-1], edges[1:])]
    return torch.cat(outputs, dim=2).transpose(1, 2)


def qkv(tokens: int, heads: int, kv_heads: int, dim: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """Query/key/value laid out as a projection's output viewed per head ([1, heads, tokens, dim], strided)."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(1, tokens, n, dim, generator=generator).to(dtype).transpose(1, 2).requires_grad_()
            for n in (heads, kv_heads, kv_heads)]


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("kv_heads", [1, 2, 4])
@pytest.mark.parametrize("split", [256, 4])  # 4: every example of 4+ tokens computed in two blocks of rows
def test_gemm_attention_values_and_gradients(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, tol: float,
                                             kv_heads: int, split: int) -> None:
    from tunelab.model import attention
    from tunelab.model.attention import SegmentAttention

    monkeypatch.setattr(attention, "BLOCK_SPLIT_TOKENS", split)

    edges = [0, 5, 5, 12, 13, 20]  # an empty and a one-token example included
    query, key, value = qkv(20, 4, kv_heads, 8, dtype)
    out = SegmentAttention.apply(query, key, value, edges, 0.3)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    out.backward(grad.to(dtype))
    ours = [out, query.grad, key.grad, value.grad]
    reference_inputs = [t.detach().float().requires_grad_() for t in (query, key, value)]
    expected = reference_attention(*reference_inputs, edges, 0.3)
    expected.backward(grad)
    for got, want in zip(ours, [expected, *(t.grad for t in reference_inputs)]):
        assert got.dtype == dtype and got.shape == want.shape
        assert ((got.float() - want).norm() / want.norm()).item() < tol


def test_gemm_attention_keeps_only_its_inputs_for_backward() -> None:
    """The probabilities (heads x length^2 per example) are computed again in backward, not kept per layer."""
    from tunelab.model.attention import SegmentAttention

    query, key, value = qkv(40, 4, 2, 8, torch.bfloat16)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = SegmentAttention.apply(query, key, value, [0, 30, 40], 0.3)
    assert sorted(t.numel() for t in saved) == sorted(t.numel() for t in (query, key, value))
    out.float().square().sum().backward()
    assert all(t.grad is not None and t.grad.isfinite().all() for t in (query, key, value))


def test_causal_bias_cache_stays_within_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Biases of many example lengths (a run's batches) do not pile up: the cache empties past its byte budget."""
    from tunelab.model import attention

    monkeypatch.setattr(attention, "_BIAS", {})
    monkeypatch.setattr(attention, "BIAS_CACHE_BYTES", 100_000)
    largest = 0
    for rows in range(20, 120):
        bias = attention.block_bias(rows, rows, 3, torch.bfloat16, torch.device("cpu"))
        largest = max(largest, bias.nbytes)
        assert sum(b.nbytes for b in attention._BIAS.values()) <= attention.BIAS_CACHE_BYTES + 2 * largest
    assert attention.block_bias(119, 119, 3, torch.bfloat16, torch.device("cpu")) is bias  # a batch's reuse


def test_packed_attention_uses_gemm_kernel_only_where_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunelab.model import attention

    calls = []
    original = attention.SegmentAttention.apply
    monkeypatch.setattr(attention.SegmentAttention, "apply", lambda *a: calls.append(1) or original(*a))
    query, key, value = qkv(12, 4, 2, 8, torch.float32)
    bounds = torch.tensor([0, 7, 12], dtype=torch.int32)
    module = torch.nn.Module()
    module.is_causal, module.training, module.num_key_value_groups = True, True, 2
    out, _ = attention.packed_sdpa_attention(module, query, key, value, None, scaling=0.5, cu_seq_lens_q=bounds)
    assert calls == [1]
    monkeypatch.setattr(attention, "GEMM_MAX_TOKENS", 6)  # an example longer than that: SDPA per example
    sdpa, _ = attention.packed_sdpa_attention(module, query, key, value, None, scaling=0.5, cu_seq_lens_q=bounds)
    assert calls == [1]
    torch.testing.assert_close(out, sdpa)
