"""Registry -> records -> mixed and split -> tokens -> DataBundle(train, eval, report).

The order is LLaMA-Factory 0.9.5's get_dataset: convert each dataset, merge them (mix_strategy), split off
val_size rows (or read eval_dataset), then tokenize (and pack) the train and eval parts separately, each the way
the stage's example kind is tokenized (data/kinds.py). `tokenized_path` saves the result and reuses it on later
runs; `streaming` reads lazily instead (data/streaming.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.config.schema import DataSection
from tunelab.data import mix, sampling, saved
from tunelab.data.bundle import DataBundle, eval_set
from tunelab.data.convert.media import ModelMedia, refuse_media
from tunelab.data.dataset import encode
from tunelab.data.errors import DataError
from tunelab.data.examples import Example, Supervised
from tunelab.data.gather import Sampler, eval_records, mixed_records
from tunelab.data.kinds import Kind, kind_of
from tunelab.data.packing import data_cutoff_len
from tunelab.data.report import DataReport
from tunelab.data.streaming import streaming_data
from tunelab.data.tokenizer import Tokenizer
from tunelab.runtime.logging import is_main_process
from tunelab.runtime.names import split_names

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = ["DataBundle", "build_data", "split_records", "tokenize_records"]


def tokenize_records(records: list[Supervised], tokenizer: Tokenizer, data: DataSection,
                     report: DataReport) -> dict[str, list[list[int]]]:
    """input_ids and labels for every supervised record, in order, as Python lists (the `tunelab data` tools)."""
    chunks = encode(records, tokenizer, data, report)
    return {column: [row for chunk in chunks for row in chunk.rows(column)] for column in ("input_ids", "labels")}


def build_data(data: DataSection, tokenizer: Tokenizer, seed: int, stage: str = "sft",
               model: ModelMedia | None = None) -> DataBundle:
    """The whole data path for a run of a stage: read, convert, mix, split, encode, pack (or reuse tokenized_path).

    Rows that carry media are refused unless drop_media; `model` (what the run's model can take) makes the error
    say what it lacks."""
    kind = kind_of(stage)
    fingerprint = saved.fingerprint(data, tokenizer, seed, stage) if data.tokenized_path else None
    if fingerprint is not None and not data.overwrite_cache:
        reused = saved.load(data.tokenized_path, fingerprint, data, kind.columns)
        if reused is not None:
            if not len(reused[0]):  # saved by a version that let an empty train set through
                raise DataError(f"the tokenized data in {data.tokenized_path} has no train examples",
                                field="tokenized_path", fix="set overwrite_cache: true to tokenize the datasets again")
            return DataBundle(*reused)
    if data.streaming and fingerprint is not None:
        raise DataError(f"tokenized_path {data.tokenized_path} is empty, and a streaming run cannot save tokenized "
                        "data (it never holds all of it)", field="tokenized_path",
                        fix="run once without streaming to save it (saved data is read from disk as needed), or "
                        "remove tokenized_path")
    if data.streaming:
        return streaming_data(data, tokenizer, seed, stage)
    report = DataReport()
    train_records, eval_parts = split_records(data, stage, seed, report)
    if not data.drop_media:
        refuse_media(train_records + [record for part in eval_parts.values() for record in part], report, model)
    if not train_records:
        empty = [f"{d.file}" for d in report.datasets if d.role == "train" and d.rows_read == 0]
        why = (f" ({', '.join(empty)}: no rows in the file)" if empty else " (all were skipped; see the data report)"
               if report.totals()["rows_skipped"] else "")
        raise DataError("no rows to train on" + why, dataset=data.dataset)
    train = built(kind, train_records, tokenizer, data, report, "train", "the train set")
    eval_role = "eval" if data.eval_dataset else "train"  # val_size rows are counted with their train dataset
    evaluation = {name: built(kind, part, tokenizer, data, report, eval_role, f"the evaluation set {name!r}")
                  for name, part in eval_parts.items()}
    report.train_examples = len(train)
    bundle = DataBundle(train=train, eval=eval_set(evaluation, data, report), report=report,
                        packing=kind.packing(data))
    if fingerprint is not None and is_main_process():  # one process of a multi-GPU run saves
        saved.save(data.tokenized_path, bundle, fingerprint)
    return bundle


def built(kind: Kind, records: list[Example], tokenizer: Tokenizer, data: DataSection, report: DataReport,
          role: str, what: str) -> Dataset:
    """The kind's dataset of some records; none left after packing is an error that says why and what to change
    (the trainer would only say `num_samples should be a positive integer value`)."""
    tokens_before, examples_before = report.tokens_dropped, report.dropped_for_length
    dataset = kind.build(records, tokenizer, data, report, role)
    if len(dataset):
        return dataset
    names = ", ".join(sorted({record.dataset for record in records}))
    tokens = report.tokens_dropped - tokens_before
    if tokens:
        raise short_text_error(what, names, len(records), tokens, data)
    too_long = report.dropped_for_length - examples_before
    if too_long:
        raise DataError(f"{what} has no examples: all {too_long:,} are longer than cutoff_len {data.cutoff_len}, and "
                        "packing leaves such examples out", dataset=names, field="cutoff_len",
                        fix="raise cutoff_len (see `tunelab data stats`), or turn packing off to truncate them")
    raise DataError(f"{what} has no examples (see the data report)", dataset=names,
                    fix="check the datasets with `tunelab data validate` and `tunelab data stats`")


def short_text_error(what: str, names: str, texts: int, tokens: int, data: DataSection) -> DataError:
    """Pre-training text that packing made no block of: too little text for cutoff_len (or for one preprocessing
    batch)."""
    block = data_cutoff_len(data)
    counted = f"{texts:,} texts make" if texts != 1 else "1 text makes"
    cause = f"{what} has no examples: its {counted} {tokens:,} tokens (an end-of-text token after each)"
    keep = "set packing: false (each text becomes one example, cut at cutoff_len)"
    if tokens >= block:  # enough in all, but no preprocessing batch fills a block
        return DataError(f"{cause}, but no preprocessing batch of {data.preprocessing_batch_size} texts fills one "
                         f"block of {block} tokens (cutoff_len {data.cutoff_len}); packing keeps full blocks only, "
                         "as LLaMA-Factory does", dataset=names, field="preprocessing_batch_size",
                         fix=f"raise preprocessing_batch_size, lower cutoff_len, or {keep}")
    return DataError(f"{cause}, fewer than one block of {block} tokens (cutoff_len {data.cutoff_len}); packing keeps "
                     "full blocks only and drops the rest, as LLaMA-Factory does", dataset=names, field="cutoff_len",
                     fix=f"set cutoff_len: {tokens + data.cutoff_len - block} or lower, {keep}, or add text")


def split_records(data: DataSection, stage: str, seed: int,
                  report: DataReport) -> tuple[list[Example], dict[str, list[Example]]]:
    """Train records, and the eval records by name: `validation` (val_size or merged eval_dataset) or one set per
    eval dataset (eval_on_each_dataset)."""
    sampler: Sampler = (seed, sampling.sampling_rng(seed))  # one generator, train datasets first, as LLaMA-Factory
    train = mixed_records(data, split_names(data.dataset), stage, sampler, report)
    evaluation = eval_records(data, stage, sampler, report)
    if not evaluation and data.val_size > 0 and train:
        train, evaluation["validation"] = mix.split(train, data.val_size, seed)
    for name, part in evaluation.items():
        if not part:
            raise DataError(f"the evaluation set {name!r} has no rows", field="eval_dataset",
                            fix="check the eval datasets (see the data report) or remove eval_dataset")
    return train, evaluation
