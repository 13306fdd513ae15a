"""Supervised examples (stage sft) -> input_ids and labels: prompt tokens masked, LLaMA-Factory's cutoff budget
rule over the turns (its SupervisedDatasetProcessor)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tunelab.config.schema import DataSection
from tunelab.data.encode.cutoff import IGNORE_INDEX, infer_seqlen
from tunelab.data.encode.turns import Encoder
from tunelab.data.examples import Supervised
from tunelab.data.packing import data_cutoff_len
from tunelab.data.store import EncodedChunk

COLUMNS = ("input_ids", "labels")

__all__ = ["COLUMNS", "IGNORE_INDEX", "Labelled", "build_example", "encode_chunk", "infer_seqlen"]


@dataclass(frozen=True)
class Labelled:
    """One training example and what truncation did to it."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool
    turns_dropped: int


def build_example(pairs: list[tuple[list[int], list[int]]], cutoff_len: int, train_on_prompt: bool = False,
                  mask_history: bool = False, eos_id: int | None = None) -> Labelled:
    """Concatenate (prompt ids, response ids) turns under the cutoff; only responses are labelled.

    With mask_history only the last turn is labelled, and turns are budgeted from the last one back.
    With eos_id (templates with efficient_eos) one EOS ends the example and is trained, and each later
    prompt's first label is the EOS closing the previous answer (LLaMA-Factory's SupervisedDatasetProcessor).
    """
    input_ids: list[int] = []
    labels: list[int] = []
    total = 1 if eos_id is not None else 0
    truncated = False
    kept = 0
    ordered = pairs[::-1] if mask_history else pairs
    for turn, (source, target) in enumerate(ordered):
        if total >= cutoff_len:
            break
        source_len, target_len = infer_seqlen(len(source), len(target), cutoff_len - total)
        truncated |= source_len < len(source) or target_len < len(target)
        source, target = source[:source_len], target[:target_len]
        total += source_len + target_len
        kept += 1
        if train_on_prompt:
            source_labels = list(source)
        elif eos_id is not None and turn != 0:
            source_labels = [eos_id] + [IGNORE_INDEX] * (source_len - 1)
        else:
            source_labels = [IGNORE_INDEX] * source_len
        target_labels = [IGNORE_INDEX] * target_len if mask_history and turn != 0 else list(target)
        if mask_history:
            input_ids = source + target + input_ids
            labels = source_labels + target_labels + labels
        else:
            input_ids += source + target
            labels += source_labels + target_labels
    if eos_id is not None:
        input_ids.append(eos_id)
        labels.append(eos_id)
    dropped = len(pairs) - kept
    return Labelled(input_ids, labels, truncated or dropped > 0, dropped)


def encode_chunk(records: Sequence[Supervised], encoder: Encoder, data: DataSection,
                 role: str = "train") -> EncodedChunk:
    """Encode, truncate and label supervised examples; counts are kept per (dataset, role): train or eval."""
    chunk = EncodedChunk()
    eos_id = encoder.tokenizer.eos_token_id if encoder.template.options.efficient_eos else None
    cutoff = data_cutoff_len(data)
    turns = encoder.turns([(record, record.messages) for record in records])
    input_ids, labels = chunk.column("input_ids"), chunk.column("labels")
    for record, pairs in zip(records, turns):
        example = build_example(pairs, cutoff, data.train_on_prompt, data.mask_history, eos_id)
        trained = len(example.labels) - example.labels.count(IGNORE_INDEX)
        counts = chunk.count(record.dataset, role)
        counts["truncated"] += example.truncated
        counts["turns_dropped_for_length"] += example.turns_dropped
        counts["tokens"] += len(example.input_ids)
        counts["tokens_trained"] += trained
        chunk.without_trained_tokens += trained == 0
        input_ids.add(example.input_ids)
        labels.add(example.labels)
    return chunk
