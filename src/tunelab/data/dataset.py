"""Examples of one kind -> a datasets.Dataset of the kind's columns, with the counts added to the data report.

Each kind's builder is named in data/kinds.py: text is packed into blocks, supervised examples are encoded (and
packed with packing/neat_packing), pairs, KTO examples and prompts are encoded into their own columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tunelab.config.schema import DataSection
from tunelab.data import store
from tunelab.data.chat_template import for_tokenizer
from tunelab.data.encode import feedback, supervised, text
from tunelab.data.encode.turns import EncodeOptions, Encoder
from tunelab.data.errors import DataError
from tunelab.data.examples import Example, Feedback, Supervised, TextExample
from tunelab.data.packing import data_cutoff_len, pack_supervised
from tunelab.data.report import DataReport
from tunelab.data.tokenizer import Tokenizer

if TYPE_CHECKING:
    from datasets import Dataset


def sample_encoder(tokenizer: Tokenizer, data: DataSection) -> Encoder:
    """The encoder of a run: its template (named or the model's own) and the data keys that shape encoding."""
    template = for_tokenizer(tokenizer, data.template, data.tool_format)
    if data.train_on_prompt and data.mask_history:
        raise DataError("mask_history and train_on_prompt contradict each other (only the last answer vs every "
                        "token)", field="mask_history", fix="keep one of them")
    if data.train_on_prompt and template.options.efficient_eos:
        raise DataError(f"train_on_prompt: the {template.name} template ends each example with a single EOS "
                        "(efficient_eos), which cannot be combined with training on the prompt (as in "
                        "LLaMA-Factory)", field="train_on_prompt", fix="set train_on_prompt: false or use another "
                        "template")
    options = EncodeOptions(data.default_system, data.enable_thinking, data.preserve_thinking, data.mask_history)
    return Encoder(tokenizer, template, options)


def encode(records: Sequence[Example], tokenizer: Tokenizer, data: DataSection, report: DataReport,
           role: str = "train", encode_chunk: store.ChunkEncoder = supervised.encode_chunk) -> list[store.EncodedChunk]:
    """Encoded chunks of examples (counts added to the report); errors name the dataset's file."""
    try:
        chunks = store.encode_records(encode_chunk, records, sample_encoder(tokenizer, data), data, role)
    except DataError as exc:  # name the file too: the records only know their dataset
        files = {d.name: d.file for d in report.datasets}
        raise DataError(exc.problem, dataset=exc.dataset, file=files.get(exc.dataset), row=exc.row, field=exc.field,
                        fix=exc.fix, kind=exc.kind) from None
    note = store.workers_note(data.preprocessing_num_workers or 1, len(records))
    if note and note not in report.notes:
        report.notes.append(note)
    for chunk in chunks:
        report.add_counts(chunk.counts)
        report.examples_without_trained_tokens += chunk.without_trained_tokens
    return chunks


def text_dataset(records: Sequence[TextExample], tokenizer: Tokenizer, data: DataSection, report: DataReport,
                 role: str) -> Dataset:
    """Pre-training text packed into blocks (or truncated one by one)."""
    return store.as_dataset(store.lists_table(text.pretrain_columns(records, tokenizer, data, report, role)))


def supervised_dataset(records: Sequence[Supervised], tokenizer: Tokenizer, data: DataSection, report: DataReport,
                       role: str) -> Dataset:
    """Supervised examples tokenized, and packed with packing/neat_packing."""
    chunks = encode(records, tokenizer, data, report, role)
    if not (data.packing or data.neat_packing):
        return store.as_dataset(store.chunks_table(chunks, supervised.COLUMNS))
    return store.as_dataset(store.lists_table(packed_columns(records, chunks, tokenizer, data, report, role)))


def packed_columns(records: Sequence[Supervised], chunks: list[store.EncodedChunk], tokenizer: Tokenizer,
                   data: DataSection, report: DataReport, role: str) -> dict[str, list[list[int]]]:
    """SFT examples packed into rows of cutoff_len (LLaMA-Factory's knapsack); examples too long are counted per
    dataset."""
    cutoff = data_cutoff_len(data)
    input_ids = [row for chunk in chunks for row in chunk.rows("input_ids")]
    labels = [row for chunk in chunks for row in chunk.rows("labels")]
    for record, ids in zip(records, input_ids):
        if len(ids) > cutoff:  # pack_supervised leaves these out
            report.dataset(record.dataset, role).dropped_for_length += 1
    packed = pack_supervised(input_ids, labels, cutoff, data.neat_packing, tokenizer.pad_token_id,
                             data.preprocessing_batch_size)
    report.packed_rows += len(packed.input_ids)
    report.dropped_for_length += packed.dropped_examples
    return packed.to_dict()


def chunked_dataset(encode_chunk: store.ChunkEncoder, columns: tuple[str, ...], flags: tuple[str, ...],
                    records: Sequence[Example], tokenizer: Tokenizer, data: DataSection, report: DataReport,
                    role: str) -> Dataset:
    """Examples encoded by a kind's chunk encoder into its columns (pairs, prompts)."""
    chunks = encode(records, tokenizer, data, report, role, encode_chunk)
    return store.as_dataset(store.chunks_table(chunks, columns, flags))


def feedback_dataset(records: Sequence[Feedback], tokenizer: Tokenizer, data: DataSection, report: DataReport,
                     role: str) -> Dataset:
    """KTO examples with their KL partners (paired per preprocessing batch, as LLaMA-Factory pairs them)."""
    paired = feedback.with_kl_partners(records, data.preprocessing_batch_size)
    return chunked_dataset(feedback.encode_chunk, feedback.COLUMNS, feedback.FLAGS, paired, tokenizer, data, report,
                           role)
