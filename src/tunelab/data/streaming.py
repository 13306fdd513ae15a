"""`streaming: true`: rows are read, converted, shuffled, tokenized and packed while training, never all at once.

Like LLaMA-Factory's streaming mode: datasets are chained (concat) or interleaved with a seeded draw, examples go
through a shuffle buffer of `buffer_size` (seed + epoch, as `datasets` shuffles an iterable dataset), and
encoding and packing happen in batches of `preprocessing_batch_size`. `val_size` must be a row count: the first
rows of the first pass become the (in-memory) evaluation set and are left out of training in every epoch.
`eval_dataset`s are read whole. Training needs max_steps (the length is unknown). The data report counts the
rows of the first pass; the run writes it again when training ends.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from tunelab.config.schema import DataSection
from tunelab.data import hub, registry, sampling
from tunelab.data.bundle import DataBundle, eval_set
from tunelab.data.convert import convert_row
from tunelab.data.convert.media import listed_media, refuse_row_media
from tunelab.data.errors import DataError
from tunelab.data.examples import Example
from tunelab.data.gather import bad_row, dataset_report, entry_suits_stage, eval_records, split_names
from tunelab.data.kinds import kind_of
from tunelab.runtime.names import parse_probs
from tunelab.data.report import DataReport, DatasetReport
from tunelab.data.tokenizer import Tokenizer

Key = tuple[str, int]  # (dataset, row): identifies a record across epochs
Item = TypeVar("Item")
Row = dict[str, object]  # one encoded example: its columns


def record_stream(entry: registry.Dataset, data: DataSection, report: DatasetReport, stage: str,
                  count: bool) -> Iterator[Example]:
    """The converted records of one entry, read lazily; bad rows stop or are skipped (and counted on the first
    pass)."""
    if entry.entry.num_samples is not None:
        raise DataError("num_samples draws from the whole dataset, which streaming does not hold", dataset=entry.name,
                        field="num_samples", fix="remove num_samples from the entry, or turn streaming off")
    rows = hub.dataset_rows(entry, streaming=True)
    if data.max_samples is not None:
        rows = islice(rows, data.max_samples)
    media_dir = Path(data.media_dir or data.dataset_dir)
    for index, row in enumerate(rows, start=1):
        if index == 1:
            entry_suits_stage(entry, stage, row, report)
        if count:
            report.rows_read += 1
        try:
            record = convert_row(row, entry.entry, entry.name, index, media_dir, stage, data.drop_media)
            refuse_row_media(record)
        except DataError as exc:
            bad_row(exc, entry.name, data, report, index, count)
            continue
        if count:
            report.rows_converted += 1
            report.media_dropped += listed_media(row, entry.entry.columns) if data.drop_media else 0
        yield record


def interleave(sources: list[Iterator[Example]], restart: list[Callable[[], Iterator[Example]]], strategy: str,
               probs: list[float] | None, seed: int) -> Iterator[Example]:
    """Draw from the sources in turn (or by probs) until the first runs out (under), until each has run out once
    (over: finished sources start again) or until all have run out (once)."""
    rng = np.random.default_rng(seed)
    exhausted = [False] * len(sources)
    live = list(range(len(sources)))
    turn = 0
    while live:
        pick = live[turn % len(live)] if probs is None else int(rng.choice(len(sources), p=probs))
        turn += 1
        if pick not in live:
            continue
        item = next(sources[pick], None)
        if item is not None:
            yield item
            continue
        exhausted[pick] = True
        if strategy == "interleave_under" or (strategy == "interleave_over" and all(exhausted)):
            return
        if strategy == "interleave_over":
            sources[pick] = restart[pick]()
            first = next(sources[pick], None)
            if first is None:
                return
            yield first
        else:  # once: every row exactly once
            live.remove(pick)
            if probs is not None and live:
                probs = renormalised(probs, live)


def renormalised(probs: list[float], live: list[int]) -> list[float]:
    """Probabilities with the finished sources' share spread over the live ones."""
    total = sum(probs[i] for i in live)
    return [probs[i] / total if i in live else 0.0 for i in range(len(probs))]


def shuffled(items: Iterator[Item], buffer_size: int, seed: int) -> Iterator[Item]:
    """A shuffle buffer: each new item takes the place of a random one, which is yielded."""
    rng = random.Random(seed)
    buffer: list[Item] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        index = rng.randrange(buffer_size)
        yield buffer[index]
        buffer[index] = item
    rng.shuffle(buffer)
    yield from buffer


class StreamingExamples(torch.utils.data.IterableDataset):
    """Training examples made on the fly from the configured datasets (a torch IterableDataset for the Trainer)."""

    def __init__(self, data: DataSection, tokenizer: Tokenizer, seed: int, stage: str, report: DataReport,
                 held_out: set[Key] | None = None) -> None:
        super().__init__()
        self.data, self.tokenizer, self.seed, self.stage, self.report = data, tokenizer, seed, stage, report
        self.kind = kind_of(stage)
        self.held_out = held_out or set()
        self.entries = registry.lookup(split_names(data.dataset), data.dataset_dir)
        self.epoch, self.passes = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer at each epoch: the shuffle changes with it."""
        self.epoch = epoch

    def records(self, count: bool) -> Iterator[Example]:
        """The mixed, shuffled records of one pass."""
        def source(i: int) -> Iterator[Example]:
            entry = self.entries[i]
            return record_stream(entry, self.data, self.report.dataset(entry.name), self.stage, count)

        sources = [source(i) for i in range(len(self.entries))]
        if len(sources) == 1 or self.data.mix_strategy == "concat":
            mixed = chain.from_iterable(sources)
        else:
            restart = [lambda i=i: source(i) for i in range(len(sources))]
            mixed = interleave(sources, restart, self.data.mix_strategy, parse_probs(self.data.interleave_probs),
                               self.seed)
        if self.data.disable_shuffling:
            return mixed
        return shuffled(mixed, self.data.buffer_size, self.seed + self.epoch)

    def __iter__(self) -> Iterator[Row]:
        count = self.passes == 0
        self.passes += 1
        records = (r for r in self.records(count) if (r.dataset, r.row) not in self.held_out)
        share, shares = reader_share()
        yield from islice(self.examples(records), share, None, shares)

    def examples(self, records: Iterator[Example]) -> Iterator[Row]:
        """Encode (and pack) the records a batch at a time, as the stage's kind is encoded."""
        size = self.data.preprocessing_batch_size
        while batch := list(islice(records, size)):
            yield from self.kind.build(batch, self.tokenizer, self.data, self.report, "train")


def reader_share() -> tuple[int, int]:
    """(index, count) of this reader among all training processes and their dataloader workers: each takes every
    count-th example, so together they read the stream once."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    worker = torch.utils.data.get_worker_info()
    workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
    return rank * workers + worker_id, world * workers


def scratch(report: DataReport) -> DataReport:
    """An empty report over the same datasets: for looking ahead without counting twice."""
    return DataReport(datasets=[DatasetReport(name=d.name, file=d.file, role=d.role) for d in report.datasets])


def streaming_data(data: DataSection, tokenizer: Tokenizer, seed: int, stage: str) -> DataBundle:
    """The DataBundle of a streaming run: a lazy train set, an in-memory eval set; the first example is made
    here so that data errors show before the model loads."""
    kind = kind_of(stage)
    if data.val_size and data.val_size != int(data.val_size):
        raise DataError(f"val_size {data.val_size:g} is a fraction, but a stream has no known length",
                        field="val_size", fix="give a row count (e.g. val_size: 500), as LLaMA-Factory requires")
    report = DataReport(notes=["streaming: rows are read while training; the counts cover the rows read so far"])
    report.datasets += [dataset_report(entry) for entry in registry.lookup(split_names(data.dataset),
                                                                           data.dataset_dir)]
    evaluation, held_out = {}, set()
    if data.eval_dataset:
        parts = eval_records(data, stage, (seed, sampling.sampling_rng(seed)), report)
        evaluation = {name: kind.build(part, tokenizer, data, report, "eval") for name, part in parts.items()}
    elif data.val_size:
        probe = StreamingExamples(data, tokenizer, seed, stage, scratch(report))
        head = list(islice(probe.records(count=False), int(data.val_size)))
        held_out = {(r.dataset, r.row) for r in head}
        evaluation["validation"] = kind.build(head, tokenizer, data, report, "train")
    train = StreamingExamples(data, tokenizer, seed, stage, report, held_out)
    if next(iter(StreamingExamples(data, tokenizer, seed, stage, scratch(report), held_out)), None) is None:
        raise DataError("no rows to train on", dataset=data.dataset)
    return DataBundle(train=train, eval=eval_set(evaluation, data, report), report=report,
                      packing=kind.packing(data))
