"""Rollout layout, response log-probs against the plain forward, and the stop token kept in answers."""

from __future__ import annotations

from typing import Any

import torch

from tunelab.train.ppo.rollout import build_rollout, generate_responses, policy_outputs, prompt_rows, response_logps


def test_rows_are_query_then_response_padded_right() -> None:
    rollout = build_rollout([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]], pad_id=0, device=torch.device("cpu"))
    assert rollout.input_ids.tolist() == [[5, 6, 7, 9, 10], [8, 11, 12, 13, 0]]
    assert rollout.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    # the state at the last query token predicts the first response token
    assert rollout.positions.tolist() == [[2, 3, 2], [0, 1, 2]]
    assert rollout.targets.tolist() == [[9, 10, 0], [11, 12, 13]]
    assert rollout.mask.tolist() == [[1, 1, 0], [1, 1, 1]] and rollout.response_tokens() == 5


def test_prompt_rows_drop_left_padding() -> None:
    ids = torch.tensor([[0, 0, 4, 5], [6, 7, 8, 9]])
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert prompt_rows(ids, mask) == [[4, 5], [6, 7, 8, 9]]


def test_response_logps_and_values_match_the_full_forward(tiny_llama: Any) -> None:
    from tunelab.model.value_head import ValueHeadModel

    rollout = build_rollout([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]], pad_id=0, device=torch.device("cpu"))
    with torch.no_grad():
        logits = tiny_llama(input_ids=rollout.input_ids, attention_mask=rollout.attention_mask).logits.float()
        got = response_logps(tiny_llama, rollout)
    full = logits.log_softmax(-1)
    expected = torch.tensor([[full[0, 2, 9], full[0, 3, 10], 0.0], [full[1, 0, 11], full[1, 1, 12], full[1, 2, 13]]])
    assert torch.allclose(got, expected, atol=1e-5)
    head_model = ValueHeadModel(tiny_llama, dropout=0.0)
    with torch.no_grad():
        logps, values = policy_outputs(tiny_llama, head_model.v_head, rollout, with_grad=False)
        all_values = head_model(rollout.input_ids, rollout.attention_mask)
    assert torch.allclose(logps, expected, atol=1e-5)
    assert torch.allclose(values[1], all_values[1, :3], atol=1e-6) and values[0, 2] == 0.0


def test_an_answer_that_stopped_keeps_its_stop_token(tiny_llama: Any) -> None:
    query = [5, 6, 7]
    with torch.no_grad():
        first = int(tiny_llama(input_ids=torch.tensor([query])).logits[0, -1].argmax())
    greedy = {"do_sample": False, "repetition_penalty": 1.0}
    stopped = generate_responses(tiny_llama, [query], 4, greedy, frozenset({first}), pad_id=0)
    assert stopped == [[first]]  # an empty answer is the stop token alone, which the policy learns from
    running = generate_responses(tiny_llama, [query], 3, greedy, frozenset(), pad_id=0)
    assert len(running[0]) == 3 and running[0][0] == first
