"""PadCollator: right padding to a multiple of 8, -100 labels and a zero attention mask on padding."""

from __future__ import annotations

import torch

from tunelab.data.collate import PadCollator


def test_pads_to_a_multiple_of_8() -> None:
    batch = PadCollator(pad_token_id=7)([
        {"input_ids": [1, 2, 3], "labels": [-100, 2, 3]},
        {"input_ids": list(range(10, 20)), "labels": list(range(10, 20))},
    ])
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (2, 16)
    assert batch["input_ids"].dtype == torch.long
    assert batch["input_ids"][0].tolist() == [1, 2, 3] + [7] * 13
    assert batch["labels"][0].tolist() == [-100, 2, 3] + [-100] * 13
    assert batch["attention_mask"][0].tolist() == [1] * 3 + [0] * 13
    assert batch["input_ids"][1].tolist() == list(range(10, 20)) + [7] * 6
    assert batch["labels"][1].tolist() == list(range(10, 20)) + [-100] * 6
    assert batch["attention_mask"][1].tolist() == [1] * 10 + [0] * 6


def test_a_length_already_a_multiple_is_not_padded() -> None:
    batch = PadCollator(pad_token_id=0)([{"input_ids": list(range(1, 9)), "labels": list(range(1, 9))}])
    assert batch["input_ids"].tolist() == [list(range(1, 9))]
    assert batch["attention_mask"].tolist() == [[1] * 8]


def test_multiple_of_one_pads_to_the_longest() -> None:
    batch = PadCollator(pad_token_id=0, multiple_of=1)([{"input_ids": [5], "labels": [5]},
                                                        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}])
    assert batch["input_ids"].tolist() == [[5, 0, 0], [5, 6, 7]]
    assert batch["labels"].tolist() == [[5, -100, -100], [-100, 6, 7]]
