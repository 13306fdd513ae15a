"""Registry entries -> rows -> converted records, per dataset and per role (train, eval), with the counts of the data
report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunelab.config.schema import DataSection
from tunelab.data import hub, mix, registry, sampling
from tunelab.data.convert import check_entry, convert_row, unmapped_columns_note
from tunelab.data.convert.fields import Row
from tunelab.data.convert.media import listed_media
from tunelab.data.errors import DataError
from tunelab.data.examples import Example, PromptOnly
from tunelab.data.kinds import stages_of
from tunelab.data.report import DataReport, DatasetReport
from tunelab.runtime.names import parse_probs, split_names

Sampler = tuple[int, np.random.RandomState]  # the run's seed and the one generator that draws num_samples


def load_records(data: DataSection, stage: str = "sft", seed: int = 42) -> tuple[list[Example], DataReport]:
    """Read and convert every dataset of the config for a stage, one after the other, strictly or skipping bad
    rows (counted)."""
    report = DataReport()
    parts = dataset_parts(data, split_names(data.dataset), stage, (seed, sampling.sampling_rng(seed)), report)
    return [record for part in parts for record in part], report


def load_prompts(data: DataSection, seed: int = 42) -> tuple[list[PromptOnly], DataReport]:
    """The datasets' rows as prompts to answer, each with its reference answer when it has one: rows need no
    response (a length or judge task, predictions for them)."""
    records, report = load_records(data, stages_of(PromptOnly)[0], seed)
    return [record for record in records if isinstance(record, PromptOnly)], report


def selected_rows(data: DataSection, seed: int = 42) -> dict[str, list[dict]]:
    """Each dataset's raw rows as load_records selects them (same num_samples/max_samples draw), so record.row
    (1-based) finds its row: for the columns a conversion does not map."""
    rows, sampler = {}, (seed, sampling.sampling_rng(seed))
    for entry in registry.lookup(split_names(data.dataset), data.dataset_dir):
        rows[entry.name] = dataset_rows(entry, data, dataset_report(entry), sampler)
    return rows


def dataset_parts(data: DataSection, names: list[str], stage: str, sampler: Sampler, report: DataReport,
                  role: str = "train") -> list[list[Example]]:
    """The converted records of each named dataset, each with its report (role train or eval); sampler is the
    run's (seed, generator): one generator over the datasets in order, as LLaMA-Factory draws num_samples."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        key = "dataset" if role == "train" else "eval_dataset"
        raise DataError(f"{key} lists {', '.join(repeated)} more than once", field=key, fix="name each dataset once")
    parts = []
    for entry in registry.lookup(names, data.dataset_dir):
        report.datasets.append(dataset_report(entry, role))
        parts.append(dataset_records(entry, data, report.datasets[-1], stage, sampler))
    return parts


def dataset_report(entry: registry.Dataset, role: str = "train") -> DatasetReport:
    """An empty report for one entry, named by its file (or its hub URL)."""
    return DatasetReport(name=entry.name, file=str(entry.path) if entry.path else hub.source_url(entry), role=role)


def mixed_records(data: DataSection, names: list[str], stage: str, sampler: Sampler, report: DataReport,
                  role: str = "train") -> list[Example]:
    """The named datasets merged by mix_strategy (concat or interleaved with interleave_probs and the seed)."""
    parts = dataset_parts(data, names, stage, sampler, report, role)
    probs = parse_probs(data.interleave_probs)
    merged, taken = mix.merge(parts, data.mix_strategy, probs, sampler[0])
    if len(parts) > 1 and data.mix_strategy != "concat":
        report.mixing[role] = {"strategy": data.mix_strategy, "probs": probs,
                               "rows_taken": {name: n for name, n in zip(names, taken)},
                               "rows_converted": {name: len(part) for name, part in zip(names, parts)}}
    return merged


def dataset_rows(entry: registry.Dataset, data: DataSection, report: DatasetReport,
                 sampler: Sampler) -> list[dict]:
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
                    sampler: Sampler) -> list[Example]:
    """The converted records of one registry entry."""
    rows = dataset_rows(entry, data, report, sampler)
    entry_suits_stage(entry, stage, rows[0] if rows else None, report)
    records = []
    media_dir = Path(data.media_dir or data.dataset_dir)
    for index, row in enumerate(rows, start=1):
        try:
            records.append(convert_row(row, entry.entry, entry.name, index, media_dir, stage, data.drop_media))
        except DataError as exc:
            bad_row(exc, entry.name, data, report, index)
            continue
        report.media_dropped += listed_media(row, entry.entry.columns) if data.drop_media else 0
    report.rows_converted = len(records)
    return records


def entry_suits_stage(entry: registry.Dataset, stage: str, first_row: Row | None, report: DatasetReport) -> None:
    """A dataset that does not suit the stage (a preference set in sft, an sft set in dpo, ...) stops the run with
    one error naming it, whatever on_bad_row says: skipping would drop every row."""
    try:
        check_entry(entry.entry, stage, first_row)
    except DataError as exc:
        raise DataError(exc.problem, dataset=entry.name, file=report.file, field=exc.field, fix=exc.fix,
                        kind=exc.kind) from None


def bad_row(exc: DataError, dataset: str, data: DataSection, report: DatasetReport, index: int,
            count: bool = True) -> None:
    """A row that did not convert: stop with its place and the skip option (on_bad_row: error), or count it."""
    if data.on_bad_row == "error":
        raise DataError(exc.problem, dataset=dataset, file=report.file, row=index, field=exc.field,
                        fix=(exc.fix + ", or set on_bad_row: skip") if exc.fix else "set on_bad_row: skip") from None
    if count:
        prefix = f"{exc.field}: " if exc.field else ""
        report.skip(index, prefix + exc.kind, prefix + exc.problem)




def eval_records(data: DataSection, stage: str, sampler: Sampler, report: DataReport) -> dict[str, list[Example]]:
    """The eval_dataset records: merged as `validation`, or one set per dataset (eval_on_each_dataset)."""
    names = split_names(data.eval_dataset)
    if not names:
        return {}
    if data.eval_on_each_dataset:
        parts = dataset_parts(data, names, stage, sampler, report, role="eval")
        return {name: part for name, part in zip(names, parts)}
    return {"validation": mixed_records(data, names, stage, sampler, report, role="eval")}
