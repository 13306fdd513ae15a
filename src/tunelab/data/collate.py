"""Batching: right padding (PadCollator), one padding-free row (PackedCollator), or packed rows with a
block-diagonal 4D mask (BlockMaskCollator) for text and supervised examples; pairs (PairCollator), KTO examples
(FeedbackCollator) and prompts (PromptCollator) for the preference and online stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from tunelab.data.encode.cutoff import IGNORE_INDEX

if TYPE_CHECKING:
    import torch

Row = dict[str, Union[list[int], bool]]  # one stored example: its columns
Batch = dict[str, Union["torch.Tensor", int]]


def padded(rows: list[list[int]], value: int, multiple_of: int = 1, left: bool = False) -> torch.Tensor:
    """[len(rows), length] long tensor of the rows padded with value to the longest, rounded up to multiple_of."""
    import torch

    longest = max((len(row) for row in rows), default=0)
    length = -(-longest // multiple_of) * multiple_of
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for index, row in enumerate(rows):
        if row:
            target = out[index, length - len(row):] if left else out[index, :len(row)]
            target.copy_(torch.as_tensor(row))
    return out


def mask_of(rows: list[list[int]], multiple_of: int = 1, left: bool = False) -> torch.Tensor:
    """The attention mask of padded(rows): 1 on tokens, 0 on padding."""
    return padded([[1] * len(row) for row in rows], 0, multiple_of, left)


@dataclass
class PadCollator:
    """Pads a list of {input_ids, labels} examples into tensors."""

    pad_token_id: int
    multiple_of: int = 8

    def __call__(self, examples: list[Row]) -> Batch:
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
    """Concatenates a batch into one row without padding: `cu_seq_lens_q/k` mark where attention segments
    start, so attention keeps them apart (model/attention.py on CPU, flash-attention varlen on GPU).

    Plain examples are one segment each. Packed rows (data/packing.py) carry `example_lengths` and
    `position_ids`: with `neat` every example is its own segment; otherwise the whole row is one causal
    segment, so examples attend to earlier ones in their row (LLaMA-Factory's plain packing). Position ids
    are the row's own (restarting per example, as LLaMA-Factory gives them), and a row's padding is dropped.

    The first label of every segment is masked: that token is never predicted when the segment runs alone,
    so the loss and the trained-token count are the same as running the examples one by one.
    """

    neat: bool = True

    def __call__(self, examples: list[Row]) -> Batch:
        import torch

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        segments: list[int] = []
        for example in examples:
            lengths = [n for n in example.get("example_lengths") or [len(example["input_ids"])] if n > 0]
            used = sum(lengths)
            ids += example["input_ids"][:used]
            labels += example["labels"][:used]
            given = example.get("position_ids")
            positions += given[:used] if given is not None else [p for n in lengths for p in range(n)]
            segments += lengths if self.neat else [used] if used else []
        bounds = torch.zeros(len(segments) + 1, dtype=torch.int32)
        bounds[1:] = torch.cumsum(torch.as_tensor(segments, dtype=torch.int32), 0)
        label_tensor = torch.as_tensor(labels, dtype=torch.long)[None]
        label_tensor[0, bounds[:-1].long()] = IGNORE_INDEX
        longest = max(segments, default=0)
        return {"input_ids": torch.as_tensor(ids, dtype=torch.long)[None], "labels": label_tensor,
                "position_ids": torch.as_tensor(positions, dtype=torch.long)[None], "cu_seq_lens_q": bounds,
                "cu_seq_lens_k": bounds, "max_length_q": longest, "max_length_k": longest}


@dataclass
class BlockMaskCollator:
    """Packed rows for models on plain `sdpa` or `eager` attention: rows stay [batch, length] and a 4D
    additive mask (0 allowed, dtype min blocked) keeps attention causal and inside each segment, as
    LLaMA-Factory's `prepare_4d_attention_mask` does for neat packing.

    Segments, position ids and label masking are those of PackedCollator; padding attends only to itself
    (never a fully blocked row) and is never a target. `dtype` should be the model's compute dtype.
    """

    pad_token_id: int
    neat: bool = True
    dtype: "torch.dtype | None" = None

    def __call__(self, examples: list[Row]) -> Batch:
        import torch

        length = max(len(e["input_ids"]) for e in examples)
        batch = len(examples)
        input_ids = torch.full((batch, length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.zeros((batch, length), dtype=torch.long)
        segment_ids = torch.zeros((batch, length), dtype=torch.long)  # 0: padding
        for row, example in enumerate(examples):
            lengths = [n for n in example.get("example_lengths") or [len(example["input_ids"])] if n > 0]
            used = sum(lengths)
            input_ids[row, :used] = torch.as_tensor(example["input_ids"][:used])
            labels[row, :used] = torch.as_tensor(example["labels"][:used])
            given = example.get("position_ids")
            position_ids[row, :used] = torch.as_tensor(given[:used] if given is not None
                                                       else [p for n in lengths for p in range(n)])
            segments = lengths if self.neat else [used] if used else []
            starts = [sum(segments[:k]) for k in range(len(segments))]
            for k, (start, n) in enumerate(zip(starts, segments)):
                segment_ids[row, start:start + n] = k + 1
                labels[row, start] = IGNORE_INDEX
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids,
                "attention_mask": block_causal_mask(segment_ids, self.dtype or torch.float32)}


def block_causal_mask(segment_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, 1, length, length] additive mask: causal within equal non-zero segment ids; padding sees itself."""
    import torch

    length = segment_ids.shape[1]
    same = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
    causal = torch.tril(torch.ones((length, length), dtype=torch.bool, device=segment_ids.device))
    allowed = same & causal & (segment_ids != 0)[:, None, None, :]
    allowed |= torch.eye(length, dtype=torch.bool, device=segment_ids.device)
    zero = torch.zeros((), dtype=dtype, device=segment_ids.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


@dataclass
class PairCollator:
    """Pairs as one padded batch: the chosen sequences first, then the rejected ones in the same order
    (LLaMA-Factory's PairwiseDataCollatorWithPadding), so rows i and i + n are one pair."""

    pad_token_id: int
    multiple_of: int = 8

    def __call__(self, examples: list[Row]) -> Batch:
        ids = [e["chosen_input_ids"] for e in examples] + [e["rejected_input_ids"] for e in examples]
        labels = [e["chosen_labels"] for e in examples] + [e["rejected_labels"] for e in examples]
        return {"input_ids": padded(ids, self.pad_token_id, self.multiple_of),
                "attention_mask": mask_of(ids, self.multiple_of),
                "labels": padded(labels, IGNORE_INDEX, self.multiple_of)}


@dataclass
class FeedbackCollator:
    """KTO examples: their sequences and their KL partners' padded separately (LLaMA-Factory's
    KTODataCollatorWithPadding), and the desirable flags as a bool tensor."""

    pad_token_id: int
    multiple_of: int = 8

    def __call__(self, examples: list[Row]) -> Batch:
        import torch

        batch: Batch = {}
        for prefix in ("", "kl_"):
            ids = [e[f"{prefix}input_ids"] for e in examples]
            batch[f"{prefix}input_ids"] = padded(ids, self.pad_token_id, self.multiple_of)
            batch[f"{prefix}attention_mask"] = mask_of(ids, self.multiple_of)
            batch[f"{prefix}labels"] = padded([e[f"{prefix}labels"] for e in examples], IGNORE_INDEX, self.multiple_of)
        batch["kto_tags"] = torch.tensor([bool(e["kto_tags"]) for e in examples])
        return batch


@dataclass
class PromptCollator:
    """Prompts to generate from, padded on the left so every row ends where generation starts; the reference
    answers (labels) padded on the right with IGNORE_INDEX."""

    pad_token_id: int
    multiple_of: int = 8

    def __call__(self, examples: list[Row]) -> Batch:
        ids = [e["input_ids"] for e in examples]
        return {"input_ids": padded(ids, self.pad_token_id, self.multiple_of, left=True),
                "attention_mask": mask_of(ids, self.multiple_of, left=True),
                "labels": padded([e["labels"] for e in examples], IGNORE_INDEX)}


def packed_rows(rows: list[list[int]], labels: list[list[int]], prefix: str = "") -> Batch:
    """Sequences concatenated into one padding-free row, each its own attention segment (cu_seq_lens), position
    ids restarting per sequence, and the first label of each masked (as PackedCollator): per-sequence values
    match the padded batch's, with no padding computed. Keys get prefix (kl_ for KTO's partners)."""
    import torch

    lengths = [len(row) for row in rows]
    bounds = torch.zeros(len(rows) + 1, dtype=torch.int32)
    bounds[1:] = torch.cumsum(torch.as_tensor(lengths, dtype=torch.int32), 0)
    label_tensor = torch.as_tensor([t for row in labels for t in row], dtype=torch.long)[None]
    label_tensor[0, bounds[:-1].long().clamp(max=max(label_tensor.shape[1] - 1, 0))] = IGNORE_INDEX
    longest = max(lengths, default=0)
    return {f"{prefix}input_ids": torch.as_tensor([t for row in rows for t in row], dtype=torch.long)[None],
            f"{prefix}labels": label_tensor,
            f"{prefix}position_ids": torch.as_tensor([p for n in lengths for p in range(n)], dtype=torch.long)[None],
            f"{prefix}cu_seq_lens_q": bounds, f"{prefix}cu_seq_lens_k": bounds,
            f"{prefix}max_length_q": longest, f"{prefix}max_length_k": longest}


@dataclass
class PackedPairCollator:
    """Pairs as one padding-free row: the chosen sequences, then the rejected ones (PairCollator's order), each
    its own attention segment, so segments i and i + n are one pair."""

    def __call__(self, examples: list[Row]) -> Batch:
        ids = [e["chosen_input_ids"] for e in examples] + [e["rejected_input_ids"] for e in examples]
        labels = [e["chosen_labels"] for e in examples] + [e["rejected_labels"] for e in examples]
        return packed_rows(ids, labels)


@dataclass
class PackedFeedbackCollator:
    """KTO examples as one padding-free row and their KL partners as another (kl_ keys), and the desirable flags."""

    def __call__(self, examples: list[Row]) -> Batch:
        import torch

        batch = packed_rows([e["input_ids"] for e in examples], [e["labels"] for e in examples])
        batch.update(packed_rows([e["kl_input_ids"] for e in examples], [e["kl_labels"] for e in examples], "kl_"))
        batch["kto_tags"] = torch.tensor([bool(e["kto_tags"]) for e in examples])
        return batch
