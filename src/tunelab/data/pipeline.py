"""Registry -> records -> mixed and split -> tokens -> DataBundle(train, eval, report).

The order is LLaMA-Factory 0.9.5's get_dataset: convert each dataset, merge them (mix_strategy), split off
val_size rows (or read eval_dataset), then tokenize (and pack) the train and eval parts separately.
`tokenized_path` saves the result and reuses it on later runs; `streaming` reads lazily instead (data/streaming.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunelab.config.schema import DataSection
from tunelab.data import mix, sampling, saved, tokenized
from tunelab.data.chat_template import for_tokenizer
from tunelab.data.encode import EncodeOptions, Encoder
from tunelab.data.errors import DataError
from tunelab.data.gather import dataset_parts, mixed_records, split_names
from tunelab.data.packing import effective_cutoff_len, pack_pretrain, pack_supervised
from tunelab.data.records import Sample
from tunelab.data.report import DataReport
from tunelab.data.tokenize import IGNORE_INDEX
from tunelab.runtime.logging import is_main_process


@dataclass
class DataBundle:
    """Tokenized train and eval sets (datasets.Dataset with input_ids and labels, or a torch IterableDataset when
    streaming; eval is a dict of sets with eval_on_each_dataset) and their report."""

    train: Any
    eval: Any
    report: DataReport
    packing: str = "none"  # none | plain (packed rows attend across examples) | neat (examples kept apart)

    @property
    def streaming(self) -> bool:
        """True when train is read lazily (no length; training needs max_steps)."""
        return not hasattr(self.train, "__len__")


def sample_encoder(tokenizer: Any, data: DataSection) -> Encoder:
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


def encode(records: list[Sample], tokenizer: Any, data: DataSection, report: DataReport,
           role: str = "train") -> list[tokenized.EncodedChunk]:
    """Encoded chunks of SFT records (counts added to the report); errors name the dataset's file."""
    try:
        chunks = tokenized.encode_records(records, sample_encoder(tokenizer, data), data, role)
    except DataError as exc:  # name the file too: the records only know their dataset
        files = {d.name: d.file for d in report.datasets}
        raise DataError(exc.problem, dataset=exc.dataset, file=files.get(exc.dataset), row=exc.row, field=exc.field,
                        fix=exc.fix, kind=exc.kind) from None
    note = tokenized.workers_note(data.preprocessing_num_workers or 1, len(records))
    if note and note not in report.notes:
        report.notes.append(note)
    for chunk in chunks:
        report.add_counts(chunk.counts)
        report.examples_without_trained_tokens += chunk.without_trained_tokens
    return chunks


def tokenize_records(records: list[Sample], tokenizer: Any, data: DataSection,
                     report: DataReport) -> dict[str, list[list[int]]]:
    """input_ids and labels for every record, in order, as Python lists (the `tunelab data` tools)."""
    chunks = encode(records, tokenizer, data, report)
    return {column: [row for chunk in chunks for row in chunk.rows(column)] for column in ("input_ids", "labels")}


def build_data(data: DataSection, tokenizer: Any, seed: int, stage: str = "sft") -> DataBundle:
    """The whole data path for a run of a stage: read, convert, mix, split, encode, pack (or reuse tokenized_path)."""
    fingerprint = saved.fingerprint(data, tokenizer, seed, stage) if data.tokenized_path else None
    if fingerprint is not None and not data.overwrite_cache:
        reused = saved.load(data.tokenized_path, fingerprint, data)
        if reused is not None:
            return DataBundle(*reused)
    if data.streaming and fingerprint is not None:
        raise DataError(f"tokenized_path {data.tokenized_path} is empty, and a streaming run cannot save tokenized "
                        "data (it never holds all of it)", field="tokenized_path",
                        fix="run once without streaming to save it (saved data is read from disk as needed), or "
                        "remove tokenized_path")
    if data.streaming:
        from tunelab.data.streaming import streaming_data

        return streaming_data(data, tokenizer, seed, stage)
    report = DataReport()
    train_records, eval_parts = split_records(data, stage, seed, report)
    if not train_records:
        raise DataError("no rows to train on" + (" (all were skipped; see the data report)" if report.totals()
                        ["rows_skipped"] else ""), dataset=data.dataset)
    train = encoded_dataset(train_records, tokenizer, data, report, stage, "train")
    eval_role = "eval" if data.eval_dataset else "train"  # val_size rows are counted with their train dataset
    evaluation = {name: encoded_dataset(part, tokenizer, data, report, stage, eval_role)
                  for name, part in eval_parts.items()}
    report.train_examples = len(train)
    bundle = DataBundle(train=train, eval=eval_set(evaluation, data, report), report=report,
                        packing=packing_mode(data, stage))
    if fingerprint is not None and is_main_process():  # one process of a multi-GPU run saves
        saved.save(data.tokenized_path, bundle, fingerprint)
    return bundle


def packing_mode(data: DataSection, stage: str) -> str:
    """none, plain (packed rows attend across examples: pt, `packing`) or neat (`neat_packing`)."""
    return "plain" if stage == "pt" else "neat" if data.neat_packing else "plain" if data.packing else "none"


def eval_set(evaluation: dict[str, Any], data: DataSection, report: DataReport) -> Any:
    """The bundle's eval: the `validation` set, one set per eval dataset (eval_on_each_dataset), or None; the
    report gets the example counts."""
    report.eval_examples = sum(len(part) for part in evaluation.values())
    if data.eval_on_each_dataset and data.eval_dataset:
        report.eval_sets = {name: len(part) for name, part in evaluation.items()}
        return evaluation
    return evaluation.get("validation")


def split_records(data: DataSection, stage: str, seed: int,
                  report: DataReport) -> tuple[list[Sample], dict[str, list[Sample]]]:
    """Train records, and the eval records by name: `validation` (val_size or merged eval_dataset) or one set per
    eval dataset (eval_on_each_dataset)."""
    sampler = (seed, sampling.sampling_rng(seed))  # one generator, train datasets first, as LLaMA-Factory draws
    train = mixed_records(data, split_names(data.dataset), stage, sampler, report)
    evaluation = eval_records(data, stage, sampler, report)
    if not evaluation and data.val_size > 0 and train:
        train, evaluation["validation"] = mix.split(train, data.val_size, seed)
    for name, part in evaluation.items():
        if not part:
            raise DataError(f"the evaluation set {name!r} has no rows", field="eval_dataset",
                            fix="check the eval datasets (see the data report) or remove eval_dataset")
    return train, evaluation


def eval_records(data: DataSection, stage: str, sampler: tuple[int, Any],
                 report: DataReport) -> dict[str, list[Sample]]:
    """The eval_dataset records: merged as `validation`, or one set per dataset (eval_on_each_dataset)."""
    names = split_names(data.eval_dataset)
    if not names:
        return {}
    if data.eval_on_each_dataset:
        parts = dataset_parts(data, names, stage, sampler, report, role="eval")
        return {name: part for name, part in zip(names, parts)}
    return {"validation": mixed_records(data, names, stage, sampler, report, role="eval")}


def encoded_dataset(records: list[Sample], tokenizer: Any, data: DataSection, report: DataReport, stage: str,
                    role: str) -> Any:
    """One part (train or an eval set) as a datasets.Dataset: pt text packed into blocks, sft examples tokenized
    (and packed with packing/neat_packing)."""
    if stage == "pt":
        return tokenized.as_dataset(tokenized.lists_table(pretrain_columns(records, tokenizer, data, report, role)))
    chunks = encode(records, tokenizer, data, report, role)
    if packing_mode(data, stage) == "none":
        return tokenized.as_dataset(tokenized.chunks_table(chunks))
    return tokenized.as_dataset(tokenized.lists_table(packed_columns(records, chunks, tokenizer, data, report, role)))


def packed_columns(records: list[Sample], chunks: list[tokenized.EncodedChunk], tokenizer: Any, data: DataSection,
                   report: DataReport, role: str) -> dict[str, list[list[int]]]:
    """SFT examples packed into rows of cutoff_len (LLaMA-Factory's knapsack); examples too long are counted per
    dataset."""
    cutoff = effective_cutoff_len(data.cutoff_len, data.packing, data.neat_packing)
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


def pretrain_columns(records: list[Sample], tokenizer: Any, data: DataSection, report: DataReport,
                     role: str = "train") -> dict[str, list[list[int]]]:
    """Pre-training text: EOS appended, packed into cutoff_len blocks (default) or truncated one by one."""
    packing = True if data.packing is None else data.packing
    cutoff = effective_cutoff_len(data.cutoff_len, data.packing, data.neat_packing)
    texts = [record.prompt[0].content for record in records]
    packed = pack_pretrain(texts, tokenizer, cutoff, packing, data.template, data.preprocessing_batch_size)
    report.packed_rows += len(packed.input_ids) if packing else 0
    report.tokens_dropped += packed.dropped_tokens
    total = sum(len(ids) for ids in packed.input_ids)
    trained = sum(len(labels) - labels.count(IGNORE_INDEX) for labels in packed.labels)
    names = sorted({record.dataset for record in records})
    if len(names) == 1:
        target = report.dataset(names[0], role)
        target.tokens += total
        target.tokens_trained += trained
        target.truncated += packed.truncated_examples
    else:
        report.notes.append(f"pre-training text of {len(names)} datasets packed together ({role}): {total:,} "
                            f"tokens, {trained:,} trained")
    return packed.to_dict()
