"""Our decoding loop: greedy equals HF generate alone, finished rows leave the batch, per-row settings, streaming."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tunelab.infer.batch_generate import GenRequest, GenResult, generate

TEXTS = ["Hello there, how are you?", "What is the capital of France? Paris is the capital",
         "cat", "Write a poem about the sea. Summarize the text. Give a title. Answer in one word."]
PAD, EOS = 0, 2


@pytest.fixture
def prompts(tiny_tokenizer: Any) -> list[list[int]]:
    """Prompts of clearly different lengths (3 to 20+ tokens)."""
    ids = [tiny_tokenizer(text, add_special_tokens=False)["input_ids"] for text in TEXTS]
    assert len({len(i) for i in ids}) == len(ids)
    return ids


def hf_greedy(model: Any, ids: list[int], max_new_tokens: int, **kwargs: Any) -> list[int]:
    """HF generate on one prompt alone, without its stop token."""
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=EOS,
                             pad_token_id=PAD, **kwargs)[0, len(ids):].tolist()
    return out[:-1] if out and out[-1] == EOS else out


def batch_sizes_seen(model: Any) -> tuple[list[int], Any]:
    """A list that records the batch size of every forward call, and the hook handle to remove."""
    seen: list[int] = []
    handle = model.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(kwargs["input_ids"].shape[0]),
                                             with_kwargs=True)
    return seen, handle


def test_greedy_batch_equals_alone_and_hf_generate(tiny_llama: Any, prompts: list[list[int]]) -> None:
    requests = [GenRequest(p, 12, stop_token_ids=frozenset({EOS})) for p in prompts]
    batched = generate(tiny_llama, requests, PAD)
    for request, result in zip(requests, batched):
        assert generate(tiny_llama, [request], PAD)[0] == result
        assert result.token_ids == hf_greedy(tiny_llama, request.input_ids, 12)
        assert result.finish_reason == ("length" if len(result.token_ids) == 12 else "stop")


def test_finished_rows_leave_the_batch_and_the_others_are_unaffected(tiny_llama: Any,
                                                                     prompts: list[list[int]]) -> None:
    lengths = [2, 9, 5, 1]
    alone = [generate(tiny_llama, [GenRequest(p, 9)], PAD)[0].token_ids for p in prompts]
    seen, handle = batch_sizes_seen(tiny_llama)
    results = generate(tiny_llama, [GenRequest(p, n) for p, n in zip(prompts, lengths)], PAD)
    handle.remove()
    assert [r.token_ids for r in results] == [a[:n] for a, n in zip(alone, lengths)]
    assert all(r.finish_reason == "length" for r in results)
    # the prefill gives every row its first token; then each step runs only the rows that need another one
    # (HF generate would run 1 + 8 forward calls of 4 rows)
    assert seen == [4, 3, 2, 2, 2, 1, 1, 1, 1]


def test_stop_tokens_end_a_row_and_are_left_out(tiny_llama: Any, prompts: list[list[int]]) -> None:
    free = generate(tiny_llama, [GenRequest(p, 8) for p in prompts], PAD)
    # stop row 1 at the first token it would produce at step 4 (unless that token came earlier)
    stop = free[1].token_ids[3]
    cut = free[1].token_ids.index(stop)
    requests = [GenRequest(p, 8) for p in prompts]
    requests[1] = GenRequest(prompts[1], 8, stop_token_ids=frozenset({stop, 399}))
    seen, handle = batch_sizes_seen(tiny_llama)
    results = generate(tiny_llama, requests, PAD)
    handle.remove()
    assert results[1] == GenResult(free[1].token_ids[:cut], "stop", stop)  # the stop token is named, not returned
    assert [r.token_ids for i, r in enumerate(results) if i != 1] == [r.token_ids for i, r in enumerate(free) if i != 1]
    assert seen[cut + 1] == 3


def test_only_the_last_position_gets_logits(tiny_llama: Any, prompts: list[list[int]]) -> None:
    keep: list[Any] = []
    handle = tiny_llama.register_forward_pre_hook(lambda mod, args, kwargs: keep.append(kwargs.get("logits_to_keep")),
                                                  with_kwargs=True)
    generate(tiny_llama, [GenRequest(p, 3) for p in prompts], PAD)
    handle.remove()
    assert keep == [1, 1, 1]


def test_on_token_streams_in_order_and_can_cancel(tiny_llama: Any, prompts: list[list[int]]) -> None:
    calls: list[tuple[int, int]] = []

    def on_token(index: int, token: int) -> bool:
        calls.append((index, token))
        return not (index == 2 and sum(1 for i, _ in calls if i == 2) == 3)

    results = generate(tiny_llama, [GenRequest(p, 6) for p in prompts], PAD, on_token=on_token)
    alone = [generate(tiny_llama, [GenRequest(p, 6)], PAD)[0] for p in prompts]
    assert results[2] == GenResult(alone[2].token_ids[:3], "cancelled")
    for i in (0, 1, 3):
        assert results[i] == alone[i]
    for i, result in enumerate(results):
        assert [t for j, t in calls if j == i] == result.token_ids
    # step by step: every running row's token of one step comes before any token of the next step
    assert calls[:4] == [(i, results[i].token_ids[0]) for i in range(4)]


def test_zero_max_new_tokens_and_bad_requests(tiny_llama: Any, prompts: list[list[int]]) -> None:
    results = generate(tiny_llama, [GenRequest(prompts[0], 0), GenRequest(prompts[1], 2)], PAD)
    assert results[0] == GenResult([], "length") and len(results[1].token_ids) == 2
    assert generate(tiny_llama, [], PAD) == []
    with pytest.raises(ValueError, match="request 1: input_ids is empty"):
        generate(tiny_llama, [GenRequest(prompts[0], 2), GenRequest([], 2)], PAD)
    with pytest.raises(ValueError, match="temperature is 0"):
        generate(tiny_llama, [GenRequest(prompts[0], 2, do_sample=True, temperature=0)], PAD)


def test_seeded_sampling_is_reproducible_whatever_the_batch_mates(tiny_llama: Any, prompts: list[list[int]]) -> None:
    def sampled(seed: int) -> GenRequest:
        return GenRequest(prompts[1], 10, do_sample=True, temperature=1.5, top_k=50, top_p=0.95, seed=seed)

    alone = generate(tiny_llama, [sampled(7)], PAD)[0]
    mates = [GenRequest(prompts[0], 3), sampled(7), GenRequest(prompts[3], 10, do_sample=True, seed=1),
             GenRequest(prompts[2], 10, repetition_penalty=1.2)]
    assert generate(tiny_llama, mates, PAD)[1] == alone
    others = {tuple(generate(tiny_llama, [sampled(seed)], PAD)[0].token_ids) for seed in range(8, 12)}
    assert len(others | {tuple(alone.token_ids)}) > 1
    greedy = generate(tiny_llama, [GenRequest(prompts[1], 10)], PAD)[0]
    # top_k=1 and a tiny top_p leave only the most likely token: sampling becomes greedy
    assert generate(tiny_llama, [GenRequest(prompts[1], 10, do_sample=True, top_k=1, seed=3)], PAD)[0] == greedy
    assert generate(tiny_llama, [GenRequest(prompts[1], 10, do_sample=True, top_p=1e-6, seed=3)], PAD)[0] == greedy


def test_repetition_penalty_equals_hf(tiny_llama: Any, prompts: list[list[int]]) -> None:
    requests = [GenRequest(p, 12, repetition_penalty=penalty, stop_token_ids=frozenset({EOS}))
                for p, penalty in zip(prompts, [1.5, 1.0, 0.8, 2.0])]
    results = generate(tiny_llama, requests, PAD)
    for request, result in zip(requests, results):
        assert result.token_ids == hf_greedy(tiny_llama, request.input_ids, 12,
                                             repetition_penalty=request.repetition_penalty)
    assert results[0].token_ids != generate(tiny_llama, [GenRequest(prompts[0], 12)], PAD)[0].token_ids


def test_works_on_a_peft_lora_model(make_tiny_llama: Any, prompts: list[list[int]]) -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    model = get_peft_model(make_tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"],
                                                         init_lora_weights=False))
    model.train()
    requests = [GenRequest(p, 8, stop_token_ids=frozenset({EOS})) for p in prompts]
    results = generate(model, requests, PAD)
    assert model.training  # the caller's mode is restored
    model.eval()
    for request, result in zip(requests, results):
        assert result.token_ids == hf_greedy(model, request.input_ids, 8)
    with model.disable_adapter():
        base = generate(model, requests, PAD)
    assert [r.token_ids for r in base] != [r.token_ids for r in results]
