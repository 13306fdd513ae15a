"""Packing equals LLaMA-Factory 0.9.5's on recorded cases (expected values printed by LF's own processors)."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.data.packing import (effective_cutoff_len, greedy_knapsack, pack_pretrain, pack_supervised,
                                   pretrain_block_counts)

# LF: greedy_knapsack([5, 3, 8, 2, 7, 1, 4, 4, 6], 10) and greedy_knapsack([9, 9, 1, 1, 10, 3], 10)
KNAPSACKS = [([5, 3, 8, 2, 7, 1, 4, 4, 6], 10, [[8, 2], [7, 3], [6, 4], [5, 4, 1]]),
             ([9, 9, 1, 1, 10, 3], 10, [[10], [9, 1], [9, 1], [3]]),
             ([], 10, [])]

# LF: PackedSupervisedDatasetProcessor, DataArguments(cutoff_len=12, packing=True) -> cutoff_len 11 at processing
LENGTHS = [5, 3, 8, 2, 7, 13, 4, 4]
SFT_INPUT_IDS = [[30, 31, 32, 33, 34, 35, 36, 37, 20, 21, 22, 0], [50, 51, 52, 53, 54, 55, 56, 80, 81, 82, 83, 0],
                 [10, 11, 12, 13, 14, 70, 71, 72, 73, 40, 41, 0]]
SFT_LABELS = [[-100, -100, 32, 33, 34, 35, 36, 37, -100, -100, 22, -100],
              [-100, -100, 52, 53, 54, 55, 56, -100, -100, 82, 83, -100],
              [-100, -100, 12, 13, 14, -100, -100, 72, 73, -100, -100, -100]]
SFT_POSITION_IDS = [[0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 0], [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 0],
                    [0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 0]]
NEAT_ATTENTION_MASK = [[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 0], [1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0],
                       [1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 0]]
NEAT_SEQUENCE_BOUNDARIES = [[0, 8, 11, 12], [0, 7, 11, 12], [0, 5, 9, 11, 12]]  # LF's PackingParams

# LF: PretrainDatasetProcessor over PRETRAIN_TEXTS with the tiny tokenizer (eos <|im_end|> = 2, bos <|im_start|> = 1)
PRETRAIN_TEXTS = ["Hello there, how are you?", "Paris is the capital of France.", "I am fine, thanks.",
                  "Write a poem about the sea.", "cat chat"]
PT_PACKED_8 = [[324, 357, 81, 269, 265, 14, 389, 89], [282, 301, 33, 2, 327, 264, 298, 269],
               [319, 308, 320, 16, 2, 43, 302, 388], [14, 399, 355, 16, 2, 331, 271, 71],
               [259, 297, 367, 394, 86, 269, 300, 67]]
PT_TRUNCATED_6 = [[324, 357, 81, 269, 265, 14], [327, 264, 298, 269, 319, 308], [43, 302, 388, 14, 399, 355],
                  [331, 271, 71, 259, 297, 367], [69, 270, 310, 270, 2]]
PT_PACKED_8_BOS = [[1, *row[1:]] for row in PT_PACKED_8]
PT_TRUNCATED_6_BOS = [[1, 324, 357, 81, 269, 265], [1, 327, 264, 298, 269, 319], [1, 43, 302, 388, 14, 399],
                      [1, 331, 271, 71, 259, 297], [1, 69, 270, 310, 270, 2]]


def sft_examples() -> tuple[list[list[int]], list[list[int]]]:
    """Example i (1-based) is [10i, 10i + 1, ...] with its first two labels masked."""
    ids = [[10 * (i + 1) + j for j in range(n)] for i, n in enumerate(LENGTHS)]
    return ids, [[-100, -100] + row[2:] for row in ids]


@pytest.mark.parametrize(("lengths", "capacity", "expected"), KNAPSACKS)
def test_greedy_knapsack_equals_llamafactory(lengths: list[int], capacity: int, expected: list[list[int]]) -> None:
    before = list(lengths)
    assert greedy_knapsack(lengths, capacity) == expected
    assert lengths == before


def test_greedy_knapsack_refuses_a_length_over_capacity() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        greedy_knapsack([3, 11], 10)


def test_effective_cutoff_len_follows_llamafactory() -> None:
    assert effective_cutoff_len(12, True, False) == 11
    assert effective_cutoff_len(12, None, True) == 11
    assert effective_cutoff_len(12, None, False) == 12  # pt packs by default without taking the token off
    assert effective_cutoff_len(12, False, False) == 12


@pytest.mark.parametrize("neat", [False, True])
def test_pack_supervised_equals_llamafactory(neat: bool) -> None:
    ids, labels = sft_examples()
    packed = pack_supervised(ids, labels, cutoff_len=effective_cutoff_len(12, True, neat), neat=neat,
                             pad_token_id=0)
    assert packed.input_ids == SFT_INPUT_IDS
    assert packed.labels == SFT_LABELS
    assert packed.position_ids == SFT_POSITION_IDS
    assert packed.attention_mask == (NEAT_ATTENTION_MASK if neat else [[1] * 12] * 3)
    assert packed.sources == [[2, 1], [4, 7], [0, 6, 3]]  # equal lengths leave last-in first-out
    assert packed.example_lengths == [[8, 3], [7, 4], [5, 4, 2]]
    boundaries = [[sum(row[:k]) for k in range(len(row) + 1)] + [12] for row in packed.example_lengths]
    assert boundaries == NEAT_SEQUENCE_BOUNDARIES
    assert (packed.dropped_examples, packed.dropped_tokens) == (1, 13)
    assert set(packed.to_dict()) == {"input_ids", "labels", "attention_mask", "position_ids", "example_lengths"}


def test_pack_supervised_packs_within_each_preprocessing_batch() -> None:
    ids, labels = sft_examples()
    whole = pack_supervised(ids, labels, 11, True, 0, batch_size=4)
    first, second = pack_supervised(ids[:4], labels[:4], 11, True, 0), pack_supervised(ids[4:], labels[4:], 11, True, 0)
    assert whole.input_ids == first.input_ids + second.input_ids
    assert whole.sources == first.sources + [[i + 4 for i in row] for row in second.sources]


def pretrain_tokenizer(tiny_tokenizer: Any, bos: bool) -> Any:
    if bos:
        tiny_tokenizer.bos_token = "<|im_start|>"
        tiny_tokenizer.add_bos_token = True
    return tiny_tokenizer


@pytest.mark.parametrize("bos", [False, True])
def test_pack_pretrain_equals_llamafactory(tiny_tokenizer: Any, bos: bool) -> None:
    tokenizer = pretrain_tokenizer(tiny_tokenizer, bos)
    packed = pack_pretrain(PRETRAIN_TEXTS, tokenizer, cutoff_len=8, packing=True)
    assert packed.input_ids == (PT_PACKED_8_BOS if bos else PT_PACKED_8)
    assert packed.dropped_tokens == 7  # 47 tokens: 5 blocks of 8, the rest dropped
    assert packed.position_ids == [list(range(8))] * 5 and packed.example_lengths == [[8]] * 5
    truncated = pack_pretrain(PRETRAIN_TEXTS, tokenizer, cutoff_len=6, packing=False)
    assert truncated.input_ids == (PT_TRUNCATED_6_BOS if bos else PT_TRUNCATED_6)
    assert truncated.truncated_examples == 4 and truncated.sources == [[i] for i in range(5)]


def test_pack_pretrain_labels_ignore_the_pad_id_as_llamafactorys_collator(tiny_tokenizer: Any) -> None:
    tiny_tokenizer.pad_token = tiny_tokenizer.eos_token  # pad == eos: LF's pt collator never trains eos then
    packed = pack_pretrain(PRETRAIN_TEXTS, tiny_tokenizer, cutoff_len=8, packing=True)
    assert packed.labels[1] == [282, 301, 33, -100, 327, 264, 298, 269]


def test_pack_pretrain_llama3_template_appends_its_own_eos_text(tiny_tokenizer: Any) -> None:
    packed = pack_pretrain(["cat chat"], tiny_tokenizer, cutoff_len=64, packing=False, template="llama3")
    assert packed.input_ids[0] == tiny_tokenizer("cat chat<|end_of_text|>", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(("block", "batch"), [(8, 1000), (8, 2), (50, 1), (7, 3)])
def test_block_counts_are_what_pack_pretrain_makes(tiny_tokenizer: Any, block: int, batch: int) -> None:
    lengths = [len(ids) for ids in tiny_tokenizer([t + tiny_tokenizer.eos_token for t in PRETRAIN_TEXTS],
                                                  add_special_tokens=False)["input_ids"]]
    packed = pack_pretrain(PRETRAIN_TEXTS, tiny_tokenizer, block, packing=True, batch_size=batch)
    assert pretrain_block_counts(lengths, block, batch) == (len(packed.input_ids), packed.dropped_tokens)
