"""Registry -> rows -> records -> tokens -> DataBundle(train, eval, report)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunelab.config.schema import DataSection
from tunelab.data import hub, registry, sampling
from tunelab.data.chat_template import for_tokenizer
from tunelab.data.encode import EncodeOptions, Encoder
from tunelab.data.packing import PackedColumns, effective_cutoff_len, pack_pretrain, pack_supervised
from tunelab.data.convert import convert_row, unmapped_columns_note
from tunelab.data.errors import DataError
from tunelab.data.records import Sample, DatasetReport
from tunelab.data.tokenize import IGNORE_INDEX, build_example


@dataclass
class DataReport:
    """Per-dataset counts plus the split sizes; written as data_report.json by every run."""

    datasets: list[DatasetReport] = field(default_factory=list)
    train_examples: int = 0
    eval_examples: int = 0
    examples_without_trained_tokens: int = 0
    packed_rows: int = 0
    dropped_for_length: int = 0  # packing: examples longer than cutoff_len
    tokens_dropped: int = 0  # pre-training packing: the remainder of each block batch
    notes: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """Counts summed over datasets."""
        keys = ("rows_read", "rows_converted", "truncated", "turns_dropped_for_length", "tokens", "tokens_trained")
        out = {key: sum(getattr(d, key) for d in self.datasets) for key in keys}
        out["rows_skipped"] = sum(sum(d.skipped.values()) for d in self.datasets)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"totals": self.totals(), "train_examples": self.train_examples, "eval_examples": self.eval_examples,
                "examples_without_trained_tokens": self.examples_without_trained_tokens,
                "packed_rows": self.packed_rows, "dropped_for_length": self.dropped_for_length,
                "tokens_dropped": self.tokens_dropped, "notes": self.notes,
                "datasets": [asdict(d) for d in self.datasets]}

    def write(self, path: Path) -> None:
        """Save as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")


@dataclass
class DataBundle:
    """Tokenized train and eval sets (datasets.Dataset with input_ids and labels) and their report."""

    train: Any
    eval: Any
    report: DataReport
    packing: str = "none"  # none | plain (packed rows attend across examples) | neat (examples kept apart)


def split_names(dataset: str | None) -> list[str]:
    """'a, b' -> ['a', 'b']."""
    return [name.strip() for name in (dataset or "").split(",") if name.strip()]


def load_records(data: DataSection, stage: str = "sft", seed: int = 42) -> tuple[list[Sample], DataReport]:
    """Read and convert every dataset of the config for a stage, strictly or skipping bad rows (counted)."""
    report = DataReport()
    records: list[Sample] = []
    names = split_names(data.dataset)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"dataset lists {', '.join(repeated)} more than once", fix="name each dataset once")
    rng = sampling.sampling_rng(seed)  # one generator over the datasets in order, as LLaMA-Factory draws
    for entry in registry.lookup(names, data.dataset_dir):
        where = str(entry.path) if entry.path else hub.source_url(entry)
        dataset_report = DatasetReport(name=entry.name, file=where)
        report.datasets.append(dataset_report)
        records += dataset_records(entry, data, dataset_report, stage, (seed, rng))
    return records, report


def dataset_rows(entry: registry.Dataset, data: DataSection, report: DatasetReport,
                 sampler: tuple[int, Any]) -> list[dict]:
    """The rows of one entry after num_samples and max_samples (LLaMA-Factory's selection); sampler is the run's
    (seed, generator), the generator shared by the datasets in order."""
    rows = list(hub.dataset_rows(entry))
    seed, rng = sampler
    rows, selection = sampling.select_rows(rows, entry.entry.num_samples, data.max_samples, seed, rng=rng,
                                           dataset=entry.name)
    report.rows_read = len(rows)
    for note in (selection.note(), registry.sha1_note(entry), unmapped_columns_note(rows, entry.entry.columns)):
        if note:
            report.notes.append(note)
    return rows


def dataset_records(entry: registry.Dataset, data: DataSection, report: DatasetReport, stage: str,
                    sampler: tuple[int, Any]) -> list[Sample]:
    """The converted records of one registry entry."""
    rows = dataset_rows(entry, data, report, sampler)
    records = []
    media_dir = Path(data.media_dir or data.dataset_dir)
    for index, row in enumerate(rows, start=1):
        try:
            records.append(convert_row(row, entry.entry, entry.name, index, media_dir, stage))
        except DataError as exc:
            if data.on_bad_row == "error":
                raise DataError(exc.problem, dataset=entry.name, file=report.file, row=index, field=exc.field,
                                fix=(exc.fix + ", or set on_bad_row: skip") if exc.fix else "set on_bad_row: skip"
                                ) from None
            prefix = f"{exc.field}: " if exc.field else ""
            report.skip(index, prefix + exc.kind, prefix + exc.problem)
    report.rows_converted = len(records)
    return records


PARALLEL_MIN_ROWS = 20_000  # measured: spawning workers (they import transformers) costs ~5 s on 2 cores


@dataclass
class TokenizedChunk:
    """input_ids/labels of some records and the counts that go into the report."""

    input_ids: list[list[int]] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    without_trained_tokens: int = 0


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


def tokenize_chunk(records: list[Sample], tokenizer: Any, data: DataSection) -> TokenizedChunk:
    """Encode, truncate and label records; counts are kept per dataset."""
    chunk = TokenizedChunk()
    encoder = sample_encoder(tokenizer, data)
    eos_id = tokenizer.eos_token_id if encoder.template.options.efficient_eos else None
    cutoff = effective_cutoff_len(data.cutoff_len, data.packing, data.neat_packing)
    for record, pairs in zip(records, encoder.pairs(records)):
        example = build_example(pairs, cutoff, data.train_on_prompt, data.mask_history, eos_id)
        trained = sum(1 for label in example.labels if label != IGNORE_INDEX)
        counts = chunk.counts.setdefault(record.dataset, {"truncated": 0, "turns_dropped_for_length": 0,
                                                          "tokens": 0, "tokens_trained": 0})
        counts["truncated"] += example.truncated
        counts["turns_dropped_for_length"] += example.turns_dropped
        counts["tokens"] += len(example.input_ids)
        counts["tokens_trained"] += trained
        chunk.without_trained_tokens += trained == 0
        chunk.input_ids.append(example.input_ids)
        chunk.labels.append(example.labels)
    return chunk


def tokenize_records(records: list[Sample], tokenizer: Any, data: DataSection,
                     report: DataReport) -> dict[str, list[list[int]]]:
    """input_ids and labels for every record, in order (in worker processes for large data)."""
    by_name = {d.name: d for d in report.datasets}
    try:
        chunks = tokenize_all(records, tokenizer, data)
    except DataError as exc:  # name the file too: the records only know their dataset
        raise DataError(exc.problem, dataset=exc.dataset, file=by_name[exc.dataset].file if exc.dataset in by_name
                        else None, row=exc.row, field=exc.field, fix=exc.fix, kind=exc.kind) from None
    columns: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    for chunk in chunks:
        columns["input_ids"] += chunk.input_ids
        columns["labels"] += chunk.labels
        report.examples_without_trained_tokens += chunk.without_trained_tokens
        for name, counts in chunk.counts.items():
            for key, value in counts.items():
                setattr(by_name[name], key, getattr(by_name[name], key) + value)
    return columns


def tokenize_all(records: list[Sample], tokenizer: Any, data: DataSection) -> list[TokenizedChunk]:
    """Tokenized chunks in record order: in worker processes from PARALLEL_MIN_ROWS rows on, else here."""
    workers = data.preprocessing_num_workers or 1
    if workers > 1 and len(records) >= PARALLEL_MIN_ROWS:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial
        from multiprocessing import get_context

        size = -(-len(records) // (workers * 4))
        pieces = [records[i:i + size] for i in range(0, len(records), size)]
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            return list(pool.map(partial(tokenize_chunk, tokenizer=tokenizer, data=data), pieces))
    return [tokenize_chunk(records, tokenizer, data)]


def build_data(data: DataSection, tokenizer: Any, seed: int, stage: str = "sft") -> DataBundle:
    """The whole data path for a run of a stage: read, convert, encode, pack, split."""
    from datasets import Dataset

    records, report = load_records(data, stage, seed)
    if not records:
        raise DataError("no rows to train on" + (" (all were skipped; see the data report)" if report.totals()
                        ["rows_skipped"] else ""), dataset=data.dataset)
    if stage == "pt":
        columns, packing = pretrain_columns(records, tokenizer, data, report), "plain"
    else:
        columns = tokenize_records(records, tokenizer, data, report)
        packing = "neat" if data.neat_packing else "plain" if data.packing else "none"
        if packing != "none":
            columns = packed_columns(columns, tokenizer, data, report)
    dataset = Dataset.from_dict(columns)
    train, evaluation = dataset, None
    if data.val_size > 0:
        train, evaluation = split(dataset, data.val_size, seed)
    report.train_examples = len(train)
    report.eval_examples = len(evaluation) if evaluation is not None else 0
    return DataBundle(train=train, eval=evaluation, report=report, packing=packing)


def packed_columns(columns: dict[str, list[list[int]]], tokenizer: Any, data: DataSection,
                   report: DataReport) -> dict[str, list[list[int]]]:
    """SFT examples packed into rows of cutoff_len (LLaMA-Factory's knapsack); examples too long are counted."""
    cutoff = effective_cutoff_len(data.cutoff_len, data.packing, data.neat_packing)
    packed = pack_supervised(columns["input_ids"], columns["labels"], cutoff, data.neat_packing,
                             tokenizer.pad_token_id)
    report.packed_rows = len(packed.input_ids)
    report.dropped_for_length = packed.dropped_examples
    return packed.to_dict()


def pretrain_columns(records: list[Sample], tokenizer: Any, data: DataSection,
                     report: DataReport) -> dict[str, list[list[int]]]:
    """Pre-training text: EOS appended, packed into cutoff_len blocks (default) or truncated one by one."""
    packing = True if data.packing is None else data.packing
    cutoff = effective_cutoff_len(data.cutoff_len, data.packing, data.neat_packing)
    texts = [record.prompt[0].content for record in records]
    packed: PackedColumns = pack_pretrain(texts, tokenizer, cutoff, packing, data.template)
    report.packed_rows = len(packed.input_ids) if packing else 0
    report.tokens_dropped = packed.dropped_tokens
    total = sum(len(ids) for ids in packed.input_ids)
    trained = sum(1 for labels in packed.labels for label in labels if label != IGNORE_INDEX)
    if len(report.datasets) == 1:
        report.datasets[0].tokens, report.datasets[0].tokens_trained = total, trained
        report.datasets[0].truncated = packed.truncated_examples
    else:
        report.notes.append(f"pre-training text of {len(report.datasets)} datasets packed together: "
                            f"{total:,} tokens, {trained:,} trained")
    return packed.to_dict()


def split(dataset: Any, val_size: float, seed: int) -> tuple[Any, Any]:
    """Seeded train/eval split (a fraction or a row count), as LLaMA-Factory does it."""
    size = int(val_size) if val_size >= 1 else val_size
    if (size if isinstance(size, int) else math.ceil(size * len(dataset))) >= len(dataset):
        raise DataError(f"val_size {val_size} leaves no training rows out of {len(dataset)}",
                        fix="lower val_size or add data")
    parts = dataset.train_test_split(test_size=size, seed=seed)
    return parts["train"], parts["test"]
