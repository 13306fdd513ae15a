"""Pairs (stages rm and dpo) -> chosen and rejected ids, the prompt masked in both (LLaMA-Factory's
PairwiseDatasetProcessor): the prompt is cut first, both answers share one budget, sized by the longer one."""

from __future__ import annotations

from collections.abc import Sequence

from tunelab.config.schema import DataSection
from tunelab.data.encode.cutoff import IGNORE_INDEX, infer_seqlen
from tunelab.data.encode.turns import Encoder, answer_pairs
from tunelab.data.examples import Pair
from tunelab.data.packing import data_cutoff_len
from tunelab.data.store import EncodedChunk

COLUMNS = ("chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels")


def encode_chunk(records: Sequence[Pair], encoder: Encoder, data: DataSection, role: str = "train") -> EncodedChunk:
    """Encode and truncate pairs; the report counts both answers' tokens."""
    chunk = EncodedChunk()
    eos, cutoff = encoder.answer_eos, data_cutoff_len(data)
    pairs = answer_pairs(encoder, [(r, r.prompt, r.chosen, r.rejected) for r in records])
    for record, ((prompt, chosen), (_, rejected)) in zip(records, pairs):
        chosen, rejected = chosen + eos, rejected + eos
        longer = max(len(chosen), len(rejected))
        source_len, target_len = infer_seqlen(len(prompt), longer, cutoff)
        counts = chunk.count(record.dataset, role)
        counts["truncated"] += source_len < len(prompt) or target_len < longer
        prompt, chosen, rejected = prompt[:source_len], chosen[:target_len], rejected[:target_len]
        counts["tokens"] += 2 * len(prompt) + len(chosen) + len(rejected)
        counts["tokens_trained"] += len(chosen) + len(rejected)
        chunk.without_trained_tokens += not (chosen and rejected)
        masked = [IGNORE_INDEX] * len(prompt)
        chunk.add(chosen_input_ids=prompt + chosen, chosen_labels=masked + chosen,
                  rejected_input_ids=prompt + rejected, rejected_labels=masked + rejected)
    return chunk
