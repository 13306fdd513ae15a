"""Pre-training text (stage pt) -> token blocks: EOS appended, packed into cutoff_len blocks or truncated one by one
(LLaMA-Factory's PretrainDatasetProcessor, in data/packing.py), with the report's counts."""

from __future__ import annotations

from collections.abc import Sequence

from tunelab.config.schema import DataSection
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.data.examples import TextExample
from tunelab.data.packing import data_cutoff_len, pack_pretrain
from tunelab.data.report import DataReport
from tunelab.data.tokenizer import Tokenizer

COLUMNS = ("input_ids", "labels")


def pretrain_columns(records: Sequence[TextExample], tokenizer: Tokenizer, data: DataSection, report: DataReport,
                     role: str = "train") -> dict[str, list[list[int]]]:
    """Pre-training text: EOS appended, packed into cutoff_len blocks (default) or truncated one by one."""
    packing = True if data.packing is None else data.packing
    cutoff = data_cutoff_len(data)
    texts = [record.text for record in records]
    packed = pack_pretrain(texts, tokenizer, cutoff, packing, data.template, data.preprocessing_batch_size)
    report.packed_rows += len(packed.input_ids) if packing else 0
    report.tokens_dropped += packed.dropped_tokens
    total = sum(len(ids) for ids in packed.input_ids)
    trained = sum(len(labels) - labels.count(IGNORE_INDEX) for labels in packed.labels)
    names = sorted({record.dataset for record in records})
    dropped = dropped_note(packed.dropped_tokens, total, cutoff, len(texts)) if packing else None
    if len(names) == 1:
        target = report.dataset(names[0], role)
        target.tokens += total
        target.tokens_trained += trained
        target.truncated += packed.truncated_examples
        target.notes += [dropped] if dropped else []
    else:
        report.notes.append(f"pre-training text of {len(names)} datasets packed together ({role}): {total:,} "
                            f"tokens, {trained:,} trained" + (f"; {dropped}" if dropped else ""))
    return packed.to_dict()


def dropped_note(dropped: int, kept: int, block_size: int, texts: int) -> str | None:
    """What packing left out, for the data report: the tokens after the last full block of each preprocessing batch
    (LLaMA-Factory drops them too), or None when nothing was dropped."""
    if not dropped:
        return None
    return (f"packing dropped {dropped:,} of {kept + dropped:,} tokens ({texts:,} texts): the rest after the last full "
            f"block of {block_size} tokens in each preprocessing batch, as LLaMA-Factory does")
