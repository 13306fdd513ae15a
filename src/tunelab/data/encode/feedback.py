"""KTO examples (stage kto) -> the example's ids and its KL partner's, prompts masked (LLaMA-Factory's
FeedbackDatasetProcessor).

The KL partner of an example is its prompt with another example's answer: within each preprocessing batch the
answers are shifted by one (example i gets the answer of example i - 1, the first the batch's last), as
LLaMA-Factory pairs them; `with_kl_partners` sets them before the examples are encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tunelab.config.schema import DataSection
from tunelab.data.encode.cutoff import IGNORE_INDEX, infer_seqlen
from tunelab.data.encode.turns import Encoder, Turn, answer_pairs
from tunelab.data.examples import Feedback
from tunelab.data.packing import data_cutoff_len
from tunelab.data.store import EncodedChunk

COLUMNS = ("input_ids", "labels", "kl_input_ids", "kl_labels")
FLAGS = ("kto_tags",)


def with_kl_partners(records: Sequence[Feedback], batch_size: int) -> list[Feedback]:
    """The examples with their KL answers: each batch's answers rotated by one."""
    out = []
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        partners = [batch[-1].response] + [record.response for record in batch[:-1]]
        out += [replace(record, kl_response=partner) for record, partner in zip(batch, partners)]
    return out


def masked(turn: Turn, eos: list[int], cutoff: int) -> tuple[list[int], list[int], bool]:
    """(input ids, labels, truncated) of one prompt and answer under the cutoff, the prompt masked."""
    prompt, response = turn[0], turn[1] + eos
    source_len, target_len = infer_seqlen(len(prompt), len(response), cutoff)
    truncated = source_len < len(prompt) or target_len < len(response)
    prompt, response = prompt[:source_len], response[:target_len]
    return prompt + response, [IGNORE_INDEX] * source_len + response, truncated


def encode_chunk(records: Sequence[Feedback], encoder: Encoder, data: DataSection,
                 role: str = "train") -> EncodedChunk:
    """Encode and truncate KTO examples and their KL partners (with_kl_partners must have set them)."""
    missing = [record.row for record in records if record.kl_response is None]
    if missing:
        raise ValueError(f"KTO examples without a KL partner (rows {missing[:5]}): call with_kl_partners first")
    chunk = EncodedChunk()
    eos, cutoff = encoder.answer_eos, data_cutoff_len(data)
    pairs = answer_pairs(encoder, [(r, r.prompt, r.response, r.kl_response) for r in records])
    for record, (turn, kl_turn) in zip(records, pairs):
        input_ids, labels, truncated = masked(turn, eos, cutoff)
        kl_input_ids, kl_labels, _ = masked(kl_turn, eos, cutoff)
        trained = len(labels) - labels.count(IGNORE_INDEX)
        counts = chunk.count(record.dataset, role)
        counts["truncated"] += truncated
        counts["tokens"] += len(input_ids)
        counts["tokens_trained"] += trained
        chunk.without_trained_tokens += trained == 0
        chunk.add(input_ids=input_ids, labels=labels, kl_input_ids=kl_input_ids, kl_labels=kl_labels,
                  kto_tags=record.desirable)
    return chunk
