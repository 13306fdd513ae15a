"""Prompts (stages ppo and grpo) -> the prompt's ids to generate from, ending with the generation prompt, and the
reference answer's ids as labels (empty-answer ids when the row has none), as LLaMA-Factory's
UnsupervisedDatasetProcessor encodes them; prompt and answer share cutoff_len by its rule."""

from __future__ import annotations

from collections.abc import Sequence

from tunelab.config.schema import DataSection
from tunelab.data.encode.cutoff import infer_seqlen
from tunelab.data.encode.turns import Encoder, one_turn
from tunelab.data.examples import Message, PromptOnly
from tunelab.data.packing import data_cutoff_len
from tunelab.data.store import EncodedChunk

COLUMNS = ("input_ids", "labels")
EMPTY_ANSWER = Message("assistant", "")  # what LLaMA-Factory encodes when a row has no reference answer


def encode_chunk(records: Sequence[PromptOnly], encoder: Encoder, data: DataSection,
                 role: str = "train") -> EncodedChunk:
    """Encode and truncate prompts and their reference answers."""
    chunk = EncodedChunk()
    eos, cutoff = encoder.answer_eos, data_cutoff_len(data)
    turns = encoder.turns([(r, r.prompt + (r.answer or EMPTY_ANSWER,)) for r in records], last_only=True)
    for record, turn in zip(records, turns):
        input_ids, labels = one_turn(turn)
        labels = labels + eos
        source_len, target_len = infer_seqlen(len(input_ids), len(labels), cutoff)
        counts = chunk.count(record.dataset, role)
        counts["truncated"] += source_len < len(input_ids) or target_len < len(labels)
        counts["tokens"] += source_len
        chunk.add(input_ids=input_ids[:source_len], labels=labels[:target_len])
    return chunk
