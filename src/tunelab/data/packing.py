"""Packing: several examples per row, exactly as LLaMA-Factory 0.9.5 packs them.

`pack_supervised` mirrors PackedSupervisedDatasetProcessor (stage sft, `packing`/`neat_packing`) and
`pack_pretrain` mirrors PretrainDatasetProcessor (stage pt). Both work in batches of `batch_size` examples,
as LLaMA-Factory's `dataset.map(batched=True, batch_size=preprocessing_batch_size)` does: examples are packed
(and pretraining texts concatenated) only within a batch.

Every row carries `example_lengths`, the lengths of the examples in it (padding excluded), so the collator
(data/collate.py) knows where examples start without guessing from position ids.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import chain

from tunelab.config.schema import DataSection
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.data.tokenizer import Tokenizer

LF_BATCH_SIZE = 1000  # LLaMA-Factory's default preprocessing_batch_size


@dataclass
class PackedColumns:
    """Packed rows as columns (for `datasets.Dataset.from_dict(columns.to_dict())`) and what packing lost.

    `attention_mask` is LLaMA-Factory's: with neat packing the 1-based index of the example each token
    belongs to (0 on padding), otherwise 1 everywhere (padding included). `sources[r]` lists the input
    indexes packed into row r, in row order.
    """

    input_ids: list[list[int]] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    attention_mask: list[list[int]] = field(default_factory=list)
    position_ids: list[list[int]] = field(default_factory=list)
    example_lengths: list[list[int]] = field(default_factory=list)
    sources: list[list[int]] = field(default_factory=list)
    dropped_examples: int = 0  # sft: longer than cutoff_len
    dropped_tokens: int = 0  # sft: of dropped examples; pt: each batch's remainder, or cut by truncation
    truncated_examples: int = 0  # pt without packing: texts cut at cutoff_len

    def to_dict(self) -> dict[str, list[list[int]]]:
        """The model-facing columns (no `sources`)."""
        return {"input_ids": self.input_ids, "labels": self.labels, "attention_mask": self.attention_mask,
                "position_ids": self.position_ids, "example_lengths": self.example_lengths}

    def add_row(self, input_ids: list[int], labels: list[int], attention_mask: list[int], position_ids: list[int],
                example_lengths: list[int], sources: list[int]) -> None:
        """Append one packed row."""
        self.input_ids.append(input_ids)
        self.labels.append(labels)
        self.attention_mask.append(attention_mask)
        self.position_ids.append(position_ids)
        self.example_lengths.append(example_lengths)
        self.sources.append(sources)


def effective_cutoff_len(cutoff_len: int, packing: bool | None, neat_packing: bool) -> int:
    """LLaMA-Factory's DataArguments rule: an explicit `packing: true` or `neat_packing` takes one token off
    cutoff_len (for truncation and packing alike); `packing` left unset (pt's default) keeps it."""
    return cutoff_len - 1 if (packing or neat_packing) else cutoff_len


def data_cutoff_len(data: DataSection) -> int:
    """The cutoff a run truncates and packs to: effective_cutoff_len of its data keys."""
    return effective_cutoff_len(data.cutoff_len, data.packing, data.neat_packing)


def greedy_knapsack(lengths: list[int], capacity: int) -> list[list[int]]:
    """LLaMA-Factory's greedy knapsack: fill each bin with the largest length that still fits (input untouched)."""
    numbers = sorted(lengths)
    if numbers and numbers[-1] > capacity:
        raise ValueError(f"length {numbers[-1]} does not fit in a knapsack of {capacity}")
    knapsacks = []
    while numbers:
        knapsack, remaining = [], capacity
        while (index := bisect.bisect(numbers, remaining) - 1) >= 0:
            remaining -= numbers[index]
            knapsack.append(numbers.pop(index))
        knapsacks.append(knapsack)
    return knapsacks


def pack_supervised(input_ids: list[list[int]], labels: list[list[int]], cutoff_len: int, neat: bool,
                    pad_token_id: int, batch_size: int = LF_BATCH_SIZE) -> PackedColumns:
    """Pack tokenized SFT examples into rows of cutoff_len + 1 tokens, as LLaMA-Factory does.

    `cutoff_len` is the effective one (`effective_cutoff_len`, i.e. the user's cutoff_len - 1), so rows come
    out exactly the user's cutoff_len long. Examples longer than it are dropped and counted.
    """
    if len(input_ids) != len(labels):
        raise ValueError(f"{len(input_ids)} input_ids but {len(labels)} labels")
    columns = PackedColumns()
    for start in range(0, len(input_ids), batch_size):
        pack_batch(columns, input_ids, labels, range(start, min(start + batch_size, len(input_ids))), cutoff_len,
                   neat, pad_token_id)
    return columns


def pack_batch(columns: PackedColumns, input_ids: list[list[int]], labels: list[list[int]], indexes: range,
               cutoff_len: int, neat: bool, pad_token_id: int) -> None:
    """One preprocessing batch: knapsack the lengths, then take examples of each length last-in first-out."""
    lengths, by_length = [], defaultdict(list)
    for index in indexes:
        length = len(input_ids[index])
        if length > cutoff_len:
            columns.dropped_examples += 1
            columns.dropped_tokens += length
            continue
        lengths.append(length)
        by_length[length].append(index)
    for knapsack in greedy_knapsack(lengths, cutoff_len):
        order = [by_length[length].pop() for length in knapsack]
        ids = [t for i in order for t in input_ids[i]]
        labs = [t for i in order for t in labels[i]]
        positions = [p for i in order for p in range(len(input_ids[i]))]
        mask = [k + 1 if neat else 1 for k, i in enumerate(order) for _ in input_ids[i]]
        pad = cutoff_len + 1 - len(ids)  # always >= 1: LF pads one past cutoff_len so flash-attn keeps the mask
        columns.add_row(ids + [pad_token_id] * pad, labs + [IGNORE_INDEX] * pad, mask + [0 if neat else 1] * pad,
                        positions + [0] * pad, [len(input_ids[i]) for i in order], order)


def pretrain_eos_token(tokenizer: Tokenizer, template: str | None) -> str:
    """The text LLaMA-Factory appends to every pretraining text."""
    return "<|end_of_text|>" if template == "llama3" else tokenizer.eos_token


def pack_pretrain(texts: list[str], tokenizer: Tokenizer, cutoff_len: int, packing: bool, template: str | None = None,
                  batch_size: int = LF_BATCH_SIZE) -> PackedColumns:
    """Tokenize pretraining texts as LLaMA-Factory does: text + eos, then blocks of cutoff_len (packing; the
    remainder of each batch is dropped) or each text truncated to cutoff_len (no packing).

    Takes raw texts because LLaMA-Factory appends eos (and bos) as text before tokenizing. Labels follow
    LLaMA-Factory's pt collator (DataCollatorForLanguageModeling): the input ids, with every pad-id token
    ignored (so eos is not trained when pad == eos).
    """
    eos = pretrain_eos_token(tokenizer, template)
    add_bos = getattr(tokenizer, "add_bos_token", False)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    columns = PackedColumns()
    for start in range(0, len(texts), batch_size):
        batch = [text + eos for text in texts[start:start + batch_size]]
        if packing:
            rows = pretrain_blocks(columns, batch, tokenizer, cutoff_len, add_bos)
        else:
            rows = pretrain_truncated(columns, batch, tokenizer, cutoff_len, add_bos)
        for offset, ids in rows:
            columns.add_row(ids, [IGNORE_INDEX if t == pad_id else t for t in ids], [1] * len(ids),
                            list(range(len(ids))), [len(ids)], [start + offset] if offset is not None else [])
    return columns


def pretrain_blocks(columns: PackedColumns, batch: list[str], tokenizer: Tokenizer, block_size: int,
                    add_bos: bool) -> list[tuple[int | None, list[int]]]:
    """Concatenate a batch's tokens and cut full blocks; a block's first token becomes bos if the tokenizer adds one."""
    stream = list(chain(*tokenizer(batch, add_special_tokens=False)["input_ids"]))
    usable = len(stream) // block_size * block_size
    columns.dropped_tokens += len(stream) - usable
    blocks = [stream[i:i + block_size] for i in range(0, usable, block_size)]
    if add_bos:
        for block in blocks:
            block[0] = tokenizer.bos_token_id
    return [(None, block) for block in blocks]


def pretrain_block_counts(lengths: list[int], block_size: int, batch_size: int = LF_BATCH_SIZE) -> tuple[int, int]:
    """(blocks, tokens dropped) that `pack_pretrain` with packing makes of texts of these token lengths (eos
    included): each batch's tokens are cut into full blocks and the rest of the batch is dropped."""
    blocks = dropped = 0
    for start in range(0, len(lengths), batch_size):
        tokens = sum(lengths[start:start + batch_size])
        blocks += tokens // block_size
        dropped += tokens % block_size
    return blocks, dropped


def pretrain_truncated(columns: PackedColumns, batch: list[str], tokenizer: Tokenizer, cutoff_len: int,
                       add_bos: bool) -> list[tuple[int | None, list[int]]]:
    """One row per text (bos text prepended if the tokenizer adds one), cut to cutoff_len on the tokenizer's side."""
    if add_bos:
        batch = [tokenizer.bos_token + text for text in batch]
    rows = []
    for offset, ids in enumerate(tokenizer(batch, add_special_tokens=False)["input_ids"]):
        if len(ids) > cutoff_len:
            columns.truncated_examples += 1
            columns.dropped_tokens += len(ids) - cutoff_len
            ids = ids[-cutoff_len:] if getattr(tokenizer, "truncation_side", "right") == "left" else ids[:cutoff_len]
        rows.append((offset, ids))
    return rows
