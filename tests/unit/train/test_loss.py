"""The selective, chunked cross-entropy equals the standard loss in value and gradients."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from tunelab.config.schema import LoraSection
from tunelab.data.collate import PadCollator
from tunelab.model.adapters import apply_lora
from tunelab.train import loss as loss_module
from tunelab.train.loss import chunked_cross_entropy_sum, selective_loss, supports_selective_loss


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loss_module, "CHUNK_TOKENS", 3)


def tensors(tokens: int = 10, hidden: int = 16, vocab: int = 50, dtype: torch.dtype = torch.float32,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(tokens, hidden, generator=generator, dtype=dtype)
    w = torch.randn(vocab, hidden, generator=generator, dtype=dtype) * 0.5
    y = torch.randint(0, vocab, (tokens,), generator=generator)
    return h, w, y


@pytest.mark.parametrize("tokens", [1, 3, 10])
def test_value_and_gradients_equal_cross_entropy(small_chunks: None, tokens: int) -> None:
    h, w, y = tensors(tokens)
    h1, w1 = h.clone().requires_grad_(), w.clone().requires_grad_()
    h2, w2 = h.clone().requires_grad_(), w.clone().requires_grad_()
    ours = chunked_cross_entropy_sum(h1, w1, y)
    reference = F.cross_entropy(h2 @ w2.T, y, reduction="sum")
    torch.testing.assert_close(ours, reference)
    (ours * 0.5).backward()  # a non-unit upstream gradient must scale both gradients
    (reference * 0.5).backward()
    torch.testing.assert_close(h1.grad, h2.grad)
    torch.testing.assert_close(w1.grad, w2.grad)


@pytest.mark.parametrize("staged", [1, 3, 4, 7, 1024])  # rows per weight-gradient GEMM: flushes of every size
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("vocabulary_slice", [7, 8192])  # the vocabulary's rows per GEMM: several, or all at once
def test_weight_gradient_staged_in_blocks(small_chunks: None, monkeypatch: pytest.MonkeyPatch, staged: int,
                                          dtype: torch.dtype, vocabulary_slice: int) -> None:
    monkeypatch.setattr(loss_module, "WEIGHT_GRAD_TOKENS", staged)
    monkeypatch.setattr(loss_module, "WEIGHT_GRAD_SLICE", vocabulary_slice)
    h, w, y = tensors(11)
    w1, w2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        ours = chunked_cross_entropy_sum(h.to(dtype), w1, y)  # float32 weight: the full fine-tuning case
    ours.backward()
    F.cross_entropy(h.to(dtype).float() @ w2.T, y, reduction="sum").backward()
    assert w1.grad.dtype == torch.float32
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert ((w1.grad - w2.grad).norm() / w2.grad.norm()).item() < tol


@pytest.mark.parametrize("rows", [7, 8192])
def test_the_head_gradient_is_scaled_into_its_dtype_with_one_rounding(monkeypatch: pytest.MonkeyPatch,
                                                                      rows: int) -> None:
    monkeypatch.setattr(loss_module, "WEIGHT_GRAD_SLICE", rows)
    grad, scale = torch.randn(50, 16, generator=torch.Generator().manual_seed(3)) * 40, torch.tensor(1 / 1371)
    got = loss_module.scaled(grad, scale, torch.bfloat16)
    assert got.dtype == torch.bfloat16 and torch.equal(got, (grad * scale).to(torch.bfloat16))


def test_gradient_for_hidden_only(small_chunks: None) -> None:
    h, w, y = tensors()
    h1 = h.clone().requires_grad_()
    h2 = h.clone().requires_grad_()
    chunked_cross_entropy_sum(h1, w, y).backward()
    F.cross_entropy(h2 @ w.T, y, reduction="sum").backward()
    torch.testing.assert_close(h1.grad, h2.grad)


def test_float32_matches_within_float_tolerance(small_chunks: None) -> None:
    h, w, y = tensors(dtype=torch.float32, seed=1)
    torch.testing.assert_close(chunked_cross_entropy_sum(h, w, y), F.cross_entropy(h @ w.T, y, reduction="sum"))


def test_under_no_grad(small_chunks: None) -> None:
    h, w, y = tensors()
    h.requires_grad_()
    with torch.no_grad():
        value = chunked_cross_entropy_sum(h, w, y)
    assert not value.requires_grad
    torch.testing.assert_close(value, F.cross_entropy(h.detach() @ w.T, y, reduction="sum"))


def test_default_chunk_size_gives_the_same_value() -> None:
    h, w, y = tensors(tokens=7)
    torch.testing.assert_close(chunked_cross_entropy_sum(h, w, y),
                               F.cross_entropy(h @ w.T, y, reduction="sum"))


def batch(tokenizer: Any) -> dict[str, torch.Tensor]:
    """Two examples of different length (so one is padded), prompts masked."""
    examples = []
    for prompt, answer in (("What is the capital of France?", "Paris is the capital of France."),
                           ("Hello there", "I am fine, thanks.")):
        p = tokenizer.encode(f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
        a = tokenizer.encode(f"{answer}<|im_end|>\n")
        examples.append({"input_ids": p + a, "labels": [-100] * len(p) + a})
    return PadCollator(tokenizer.pad_token_id)(examples)


def shifted_label_count(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return (inputs["labels"][:, 1:] != -100).sum()


def test_selective_loss_equals_the_model_loss(tiny_llama: Any, tiny_tokenizer: Any) -> None:
    inputs = batch(tiny_tokenizer)
    assert inputs["attention_mask"].min() == 0  # padded
    reference = tiny_llama(**inputs).loss
    torch.testing.assert_close(selective_loss(tiny_llama, inputs, shifted_label_count(inputs)), reference)
    torch.testing.assert_close(selective_loss(tiny_llama, inputs, None), reference)


def test_selective_loss_with_num_items_of_a_larger_accumulated_batch(tiny_llama: Any, tiny_tokenizer: Any) -> None:
    inputs = batch(tiny_tokenizer)
    reference = tiny_llama(**inputs, num_items_in_batch=torch.tensor(100)).loss
    torch.testing.assert_close(selective_loss(tiny_llama, inputs, torch.tensor(100)), reference)


def test_selective_loss_without_padding(tiny_llama: Any, tiny_tokenizer: Any) -> None:
    inputs = {key: value[:1, :16] for key, value in batch(tiny_tokenizer).items()}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    inputs["labels"] = inputs["input_ids"].clone()
    torch.testing.assert_close(selective_loss(tiny_llama, inputs, shifted_label_count(inputs)),
                               tiny_llama(**inputs).loss)


def test_selective_loss_under_lora_equals_the_model_loss_and_gradients(tiny_llama: Any, tiny_tokenizer: Any,
                                                                       make_tiny_llama: Any) -> None:
    inputs = batch(tiny_tokenizer)
    models = [apply_lora(tiny_llama, LoraSection(lora_rank=4)), apply_lora(make_tiny_llama(), LoraSection(lora_rank=4))]
    for model in models:
        torch.manual_seed(1)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(std=0.1)
    ours = selective_loss(models[0], inputs, shifted_label_count(inputs))
    reference = models[1](**inputs).loss
    torch.testing.assert_close(ours, reference)
    ours.backward()
    reference.backward()
    grads = [{n: p.grad for n, p in m.named_parameters() if p.requires_grad} for m in models]
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == 2 * 2 * 7
    for name, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_supports_selective_loss(tiny_llama: Any) -> None:
    assert supports_selective_loss(tiny_llama)
    assert supports_selective_loss(apply_lora(tiny_llama, LoraSection()))


def test_no_selective_loss_for_soft_capped_or_biased_heads(make_tiny_llama: Any) -> None:
    capped = make_tiny_llama()
    capped.config.final_logit_softcapping = 30.0
    assert not supports_selective_loss(capped)
    biased = make_tiny_llama()
    biased.lm_head = torch.nn.Linear(32, biased.config.vocab_size, bias=True)
    assert not supports_selective_loss(biased)
    assert not supports_selective_loss(torch.nn.Linear(2, 2))


def test_a_batch_without_labelled_tokens_gives_zero_loss_and_zero_gradients(tiny_llama: Any,
                                                                           tiny_tokenizer: Any) -> None:
    inputs = batch(tiny_tokenizer)
    inputs["labels"] = torch.full_like(inputs["labels"], -100)
    tiny_llama.train()
    loss = selective_loss(tiny_llama, inputs, None)
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in tiny_llama.parameters())
