"""Token budget and labels: LLaMA-Factory's infer_seqlen rule, prompt masking, history masking, truncation counts."""

from __future__ import annotations

import pytest

from tunelab.data.encode.supervised import IGNORE_INDEX, build_example, infer_seqlen

M = IGNORE_INDEX


def ids(start: int, count: int) -> list[int]:
    return list(range(start, start + count))


S1, T1, S2, T2 = ids(100, 5), ids(200, 5), ids(300, 5), ids(400, 5)


@pytest.mark.parametrize(("source", "target", "cutoff", "expected"), [
    (10, 5, 100, (10, 5)),    # everything fits
    (3, 4, 7, (3, 4)),        # exactly fits: the response keeps its length, the prompt the rest
    (100, 10, 50, (40, 10)),  # short response: keep it whole, cut the prompt
    (10, 100, 50, (10, 40)),  # short prompt: keep it whole, cut the response
    (60, 40, 50, (30, 20)),   # both long: response gets int(50 * 40 / 100)
    (30, 70, 10, (3, 7)),
    (1, 1, 1, (1, 0)),        # int(1 * 0.5) == 0 response tokens
    (0, 10, 4, (0, 4)),
])
def test_infer_seqlen_matches_llamafactory(source: int, target: int, cutoff: int, expected: tuple[int, int]) -> None:
    assert infer_seqlen(source, target, cutoff) == expected


def test_one_turn_masks_the_prompt_and_keeps_the_response() -> None:
    example = build_example([(S1, T1)], cutoff_len=100)
    assert example.input_ids == S1 + T1
    assert example.labels == [M] * 5 + T1
    assert (example.truncated, example.turns_dropped) == (False, 0)


def test_every_response_of_a_conversation_is_labelled() -> None:
    example = build_example([(S1, T1), (S2, T2)], cutoff_len=100)
    assert example.input_ids == S1 + T1 + S2 + T2
    assert example.labels == [M] * 5 + T1 + [M] * 5 + T2


def test_train_on_prompt_labels_everything() -> None:
    example = build_example([(S1, T1), (S2, T2)], cutoff_len=100, train_on_prompt=True)
    assert example.labels == example.input_ids == S1 + T1 + S2 + T2


def test_mask_history_labels_only_the_last_turn() -> None:
    example = build_example([(S1, T1), (S2, T2)], cutoff_len=100, mask_history=True)
    assert example.input_ids == S1 + T1 + S2 + T2
    assert example.labels == [M] * 15 + T2


def test_mask_history_with_train_on_prompt_keeps_prompts_but_not_earlier_responses() -> None:
    example = build_example([(S1, T1), (S2, T2)], cutoff_len=100, train_on_prompt=True, mask_history=True)
    assert example.labels == S1 + [M] * 5 + S2 + T2


def test_the_last_turn_is_cut_by_the_remaining_budget() -> None:
    example = build_example([(S1, T1), (S2, T2)], cutoff_len=12)
    # turn 1 takes 10; turn 2 gets infer_seqlen(5, 5, 2) == (1, 1)
    assert example.input_ids == S1 + T1 + S2[:1] + T2[:1]
    assert example.labels == [M] * 5 + T1 + [M] + T2[:1]
    assert (example.truncated, example.turns_dropped) == (True, 0)


def test_turns_past_the_cutoff_are_dropped_and_counted() -> None:
    example = build_example([(S1, T1), (S2, T2), (S1, T1)], cutoff_len=10)
    assert example.input_ids == S1 + T1
    assert (example.truncated, example.turns_dropped) == (True, 2)


def test_mask_history_budgets_from_the_last_turn_back() -> None:
    example = build_example([(S1, T1), (S2, T2)], cutoff_len=12, mask_history=True)
    assert example.input_ids == S1[:1] + T1[:1] + S2 + T2
    assert example.labels == [M] * 7 + T2
    assert example.truncated


def test_a_long_single_turn_is_cut_by_the_rule() -> None:
    source, target = ids(100, 60), ids(300, 40)
    example = build_example([(source, target)], cutoff_len=50)
    assert example.input_ids == source[:30] + target[:20]
    assert len(example.input_ids) == 50
    assert (example.truncated, example.turns_dropped) == (True, 0)
