"""The label of untrained tokens and LLaMA-Factory's rule for sharing cutoff_len between prompt and response."""

from __future__ import annotations

IGNORE_INDEX = -100


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """How many prompt and response tokens of one turn fit in cutoff_len (LLaMA-Factory's rule)."""
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    new_source_len = min(max(cutoff_len - new_target_len, 0), source_len)
    return new_source_len, new_target_len
