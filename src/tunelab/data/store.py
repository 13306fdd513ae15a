"""Encoded examples as Arrow columns, chunk by chunk, in worker processes for large data.

Each kind's encoder (data/encode/) turns a chunk of examples into flat int32 arrays with offsets, one per column
the kind declares, so memory stays at about 8 bytes per token instead of a Python list per example. With
`preprocessing_num_workers` > 1 and enough rows, chunks are encoded in forked worker processes: they inherit the
examples and the tokenizer (nothing is pickled on the way in) and send back only the flat arrays and the counts.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tunelab.config.schema import DataSection
from tunelab.data.encode.turns import Encoder
from tunelab.data.examples import Example
from tunelab.runtime import env

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

PARALLEL_MIN_ROWS = 20_000  # measured: below this, starting workers costs more than they save on 2 cores
CHUNK_ROWS = 10_000  # examples encoded at a time (one batched tokenizer call per chunk)
Counts = dict[tuple[str, str], dict[str, int]]  # (dataset, role) -> truncated/turns dropped/tokens/trained


class Column:
    """One list-of-ints column: flat int32 values and int64 offsets (one more than the rows)."""

    __slots__ = ("values", "offsets")

    def __init__(self) -> None:
        self.values, self.offsets = array("i"), array("q", [0])

    def add(self, ids: list[int]) -> None:
        """Append one row."""
        self.values.extend(ids)
        self.offsets.append(len(self.values))


@dataclass
class EncodedChunk:
    """The columns of some encoded examples (lists of ids, and flags such as kto_tags) and the counts that go into
    the report."""

    lists: dict[str, Column] = field(default_factory=dict)
    flags: dict[str, list[bool]] = field(default_factory=dict)
    counts: Counts = field(default_factory=dict)
    without_trained_tokens: int = 0

    def add(self, **columns: list[int] | bool) -> None:
        """Append one example: a list of ids or a flag per column."""
        for name, value in columns.items():
            if isinstance(value, bool):
                self.flags.setdefault(name, []).append(value)
            else:
                self.column(name).add(value)

    def column(self, name: str) -> Column:
        """One list column, created empty (encoders of many examples append to it directly)."""
        column = self.lists.get(name)
        if column is None:
            column = self.lists[name] = Column()
        return column

    def __len__(self) -> int:
        first = next(iter(self.lists.values()), None)
        return len(first.offsets) - 1 if first is not None else 0

    def rows(self, column: str) -> list[list[int]]:
        """One list column as a list per example."""
        flat, offsets = self.lists[column].values, self.lists[column].offsets
        return [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]

    def count(self, dataset: str, role: str) -> dict[str, int]:
        """The counts of one (dataset, role), created at zero."""
        return self.counts.setdefault((dataset, role), {
            "truncated": 0, "turns_dropped_for_length": 0, "tokens": 0, "tokens_trained": 0})


ChunkEncoder = Callable[[Sequence[Example], Encoder, DataSection, str], EncodedChunk]


# the work of forked workers: set just before the pool forks, inherited by the children
_WORK: tuple[ChunkEncoder, Sequence[Example], Encoder, DataSection, str] | None = None


def encode_range(bounds: tuple[int, int]) -> EncodedChunk:
    """A worker's chunk: records[start:stop] of the inherited work."""
    assert _WORK is not None
    encode_chunk, records, encoder, data, role = _WORK
    return encode_chunk(records[bounds[0]:bounds[1]], encoder, data, role)


def encode_records(encode_chunk: ChunkEncoder, records: Sequence[Example], encoder: Encoder, data: DataSection,
                   role: str = "train") -> list[EncodedChunk]:
    """Chunks encoded by a kind's chunk encoder, in record order: in forked workers from PARALLEL_MIN_ROWS rows on,
    else in this process."""
    if use_processes(data.preprocessing_num_workers or 1, len(records)):
        return encode_in_workers(encode_chunk, records, encoder, data, role, data.preprocessing_num_workers or 1)
    return [encode_chunk(records[i:i + CHUNK_ROWS], encoder, data, role) for i in range(0, len(records), CHUNK_ROWS)]


def use_processes(workers: int, rows: int) -> bool:
    """Worker processes only where they pay: enough rows, fork available, and more than 2 CPUs. The Rust
    tokenizer already spreads one process's batches over every CPU; on 2 CPUs, 2 single-threaded processes
    were measured slower than one process (bench/results/preprocess_*.md)."""
    return workers > 1 and rows >= PARALLEL_MIN_ROWS and can_fork() and env.cpu_cores() > 2


def workers_note(workers: int, rows: int) -> str | None:
    """Why preprocessing_num_workers > 1 did not start processes (for the data report), or None."""
    if workers <= 1 or use_processes(workers, rows):
        return None
    why = (f"{rows:,} rows are too few to pay for starting them (from {PARALLEL_MIN_ROWS:,})" if rows < PARALLEL_MIN_ROWS
           else "this system cannot fork" if not can_fork() else
           f"on {env.cpu_cores()} CPUs one process is faster: its tokenizer already uses every CPU")
    return f"preprocessing_num_workers {workers}: tokenized in this process, not in worker processes: {why}"


def can_fork() -> bool:
    """Forked workers inherit the tokenizer and records; where fork is unavailable (Windows) one process works."""
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def encode_in_workers(encode_chunk: ChunkEncoder, records: Sequence[Example], encoder: Encoder, data: DataSection,
                      role: str, workers: int) -> list[EncodedChunk]:
    """Chunks of at most CHUNK_ROWS records, a few per worker, encoded in `workers` forked processes."""
    import multiprocessing

    global _WORK
    size = min(CHUNK_ROWS, -(-len(records) // (workers * 4)))
    bounds = [(start, min(start + size, len(records))) for start in range(0, len(records), size)]
    _WORK = (encode_chunk, records, encoder, data, role)
    try:  # each worker tokenizes on one thread, and says nothing of it
        with env.variable_set("TOKENIZERS_PARALLELISM", "false"), \
                multiprocessing.get_context("fork").Pool(workers) as pool:  # the children are forked here
            return pool.map(encode_range, bounds, chunksize=1)
    finally:
        _WORK = None


def list_array(flat: array, offsets: array) -> pa.Array:
    """An Arrow list<int32> column from flat values and offsets."""
    import numpy as np
    import pyarrow as pa

    values = pa.array(np.frombuffer(flat, dtype=np.int32))  # array("i") is int32: no copy, no per-item conversion
    bounds = np.frombuffer(offsets, dtype=np.int64)
    if bounds[-1] < 2**31:
        return pa.ListArray.from_arrays(pa.array(bounds.astype(np.int32)), values)
    return pa.LargeListArray.from_arrays(pa.array(bounds), values)


def chunks_table(chunks: list[EncodedChunk], columns: tuple[str, ...], flags: tuple[str, ...] = ()) -> pa.Table:
    """One Arrow table holding every chunk, in order: list<int32> columns, then boolean flag columns."""
    import pyarrow as pa

    tables = [pa.table({**{name: list_array(c.lists[name].values, c.lists[name].offsets) for name in columns},
                        **{name: pa.array(c.flags[name], pa.bool_()) for name in flags}})
              for c in chunks if len(c)]
    if not tables:
        return pa.table({**{name: pa.array([], pa.list_(pa.int32())) for name in columns},
                         **{name: pa.array([], pa.bool_()) for name in flags}})
    return pa.concat_tables(tables)


def lists_table(columns: dict[str, list[list[int]]]) -> pa.Table:
    """An Arrow table of int32 list columns from Python lists (packed rows)."""
    import pyarrow as pa

    arrays = {}
    for name, rows in columns.items():
        column = Column()
        for row in rows:
            column.add(row)
        arrays[name] = list_array(column.values, column.offsets)
    return pa.table(arrays)


def as_dataset(table: pa.Table) -> Dataset:
    """A datasets.Dataset over an in-memory Arrow table (a fresh fingerprint: hashing the table would cost seconds)."""
    import uuid

    from datasets import Dataset

    return Dataset(table, fingerprint=uuid.uuid4().hex)
