"""Text pairs -> input_ids and labels: prompt tokens masked, LLaMA-Factory's cutoff budget rule."""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """One training example and what truncation did to it."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool
    turns_dropped: int


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


def build_example(pairs: list[tuple[list[int], list[int]]], cutoff_len: int, train_on_prompt: bool = False,
                  mask_history: bool = False, eos_id: int | None = None) -> Example:
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
    return Example(input_ids, labels, truncated or dropped > 0, dropped)
