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


@dataclass
class PackedCollator:
    """Concatenates a batch into one row without padding: position ids restart per example and
    `cu_seq_lens_q/k` mark where examples start, so attention keeps them apart (see model/attention.py).

    The first label of every example is masked: in a padded batch that token is never predicted either,
    so the loss and the trained-token count are the same as with padding.
    """

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        lengths = [len(e["input_ids"]) for e in examples]
        input_ids = torch.as_tensor([t for e in examples for t in e["input_ids"]], dtype=torch.long)[None]
        labels = torch.as_tensor([t for e in examples for t in e["labels"]], dtype=torch.long)[None]
        position_ids = torch.cat([torch.arange(n, dtype=torch.long) for n in lengths])[None]
        bounds = torch.zeros(len(lengths) + 1, dtype=torch.int32)
        bounds[1:] = torch.cumsum(torch.as_tensor(lengths), 0)
        labels[0, bounds[:-1].long()] = IGNORE_INDEX
        longest = max(lengths)
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "cu_seq_lens_q": bounds,
                "cu_seq_lens_k": bounds, "max_length_q": longest, "max_length_k": longest}
