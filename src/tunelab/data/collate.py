"""Batching: right-pad input_ids/labels to a multiple of 8, with an attention mask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunelab.data.tokenize import IGNORE_INDEX


@dataclass
class PadCollator:
    """Pads a list of {input_ids, labels} examples into tensors."""

    pad_token_id: int
    multiple_of: int = 8

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(e["input_ids"]) for e in examples)
        length = -(-longest // self.multiple_of) * self.multiple_of
        batch = len(examples)
        input_ids = torch.full((batch, length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((batch, length), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example["input_ids"])
            input_ids[row, :n] = torch.as_tensor(example["input_ids"])
            labels[row, :n] = torch.as_tensor(example["labels"])
            attention_mask[row, :n] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
