"""Records -> input_ids/labels as Arrow columns, chunk by chunk, in worker processes for large data.

Each chunk of records is encoded and truncated (data/encode.py, data/tokenize.py) into flat int32 arrays with
offsets, so memory stays at about 8 bytes per token instead of a Python list per example. With
`preprocessing_num_workers` > 1 and enough rows, chunks are encoded in forked worker processes: they inherit the
records and the tokenizer (nothing is pickled on the way in) and send back only the flat arrays and the counts.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from tunelab.config.schema import DataSection
from tunelab.data.encode import Encoder
from tunelab.data.packing import effective_cutoff_len
from tunelab.data.records import Sample
from tunelab.data.tokenize import IGNORE_INDEX, build_example
from tunelab.runtime import env

PARALLEL_MIN_ROWS = 20_000  # measured: below this, starting workers costs more than they save on 2 cores
CHUNK_ROWS = 10_000  # records encoded at a time (one batched tokenizer call per chunk)
Counts = dict[tuple[str, str], dict[str, int]]  # (dataset, role) -> truncated/turns dropped/tokens/trained


@dataclass
class EncodedChunk:
    """Flat input_ids/labels of some records, their offsets, and the counts that go into the report."""

    input_ids: array = field(default_factory=lambda: array("i"))
    labels: array = field(default_factory=lambda: array("i"))
    offsets: array = field(default_factory=lambda: array("q", [0]))
    counts: Counts = field(default_factory=dict)
    without_trained_tokens: int = 0

    def add(self, input_ids: list[int], labels: list[int]) -> None:
        """Append one example."""
        self.input_ids.extend(input_ids)
        self.labels.extend(labels)
        self.offsets.append(len(self.input_ids))

    def rows(self, column: str) -> list[list[int]]:
        """One column as a list per example."""
        flat, offsets = getattr(self, column), self.offsets
        return [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


def encode_chunk(records: list[Sample], encoder: Encoder, data: DataSection, role: str = "train") -> EncodedChunk:
    """Encode, truncate and label records; counts are kept per (dataset, role): role is train or eval."""
    chunk = EncodedChunk()
    eos_id = encoder.tokenizer.eos_token_id if encoder.template.options.efficient_eos else None
    cutoff = effective_cutoff_len(data.cutoff_len, data.packing, data.neat_packing)
    for record, pairs in zip(records, encoder.pairs(records)):
        example = build_example(pairs, cutoff, data.train_on_prompt, data.mask_history, eos_id)
        trained = len(example.labels) - example.labels.count(IGNORE_INDEX)
        counts = chunk.counts.setdefault((record.dataset, role), {
            "truncated": 0, "turns_dropped_for_length": 0, "tokens": 0, "tokens_trained": 0})
        counts["truncated"] += example.truncated
        counts["turns_dropped_for_length"] += example.turns_dropped
        counts["tokens"] += len(example.input_ids)
        counts["tokens_trained"] += trained
        chunk.without_trained_tokens += trained == 0
        chunk.add(example.input_ids, example.labels)
    return chunk


# the work of forked workers: set just before the pool forks, inherited by the children
_WORK: tuple[list[Sample], Encoder, DataSection, str] | None = None


def encode_range(bounds: tuple[int, int]) -> EncodedChunk:
    """A worker's chunk: records[start:stop] of the inherited work."""
    assert _WORK is not None
    records, encoder, data, role = _WORK
    return encode_chunk(records[bounds[0]:bounds[1]], encoder, data, role)


def encode_records(records: list[Sample], encoder: Encoder, data: DataSection,
                   role: str = "train") -> list[EncodedChunk]:
    """Encoded chunks in record order: in forked workers from PARALLEL_MIN_ROWS rows on, else in this process."""
    if use_processes(data.preprocessing_num_workers or 1, len(records)):
        return encode_in_workers(records, encoder, data, role, data.preprocessing_num_workers or 1)
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


def encode_in_workers(records: list[Sample], encoder: Encoder, data: DataSection, role: str,
                      workers: int) -> list[EncodedChunk]:
    """Chunks of at most CHUNK_ROWS records, a few per worker, encoded in `workers` forked processes."""
    import multiprocessing

    global _WORK
    size = min(CHUNK_ROWS, -(-len(records) // (workers * 4)))
    bounds = [(start, min(start + size, len(records))) for start in range(0, len(records), size)]
    _WORK = (records, encoder, data, role)
    try:  # each worker tokenizes on one thread, and says nothing of it
        with env.variable_set("TOKENIZERS_PARALLELISM", "false"), \
                multiprocessing.get_context("fork").Pool(workers) as pool:  # the children are forked here
            return pool.map(encode_range, bounds, chunksize=1)
    finally:
        _WORK = None


def list_array(flat: Any, offsets: Any) -> Any:
    """An Arrow list<int32> column from flat values and offsets."""
    import numpy as np
    import pyarrow as pa

    values = pa.array(np.frombuffer(flat, dtype=np.int32))  # array("i") is int32: no copy, no per-item conversion
    bounds = np.frombuffer(offsets, dtype=np.int64)
    if bounds[-1] < 2**31:
        return pa.ListArray.from_arrays(pa.array(bounds.astype(np.int32)), values)
    return pa.LargeListArray.from_arrays(pa.array(bounds), values)


def chunks_table(chunks: list[EncodedChunk]) -> Any:
    """One Arrow table (input_ids, labels) holding every chunk, in order."""
    import pyarrow as pa

    tables = [pa.table({"input_ids": list_array(c.input_ids, c.offsets), "labels": list_array(c.labels, c.offsets)})
              for c in chunks if len(c.offsets) > 1]
    if not tables:
        return pa.table({"input_ids": pa.array([], pa.list_(pa.int32())), "labels": pa.array([], pa.list_(pa.int32()))})
    return pa.concat_tables(tables)


def lists_table(columns: dict[str, list[list[int]]]) -> Any:
    """An Arrow table of int32 list columns from Python lists (packed rows)."""
    import pyarrow as pa

    arrays = {}
    for name, rows in columns.items():
        flat, offsets = array("i"), array("q", [0])
        for row in rows:
            flat.extend(row)
            offsets.append(len(flat))
        arrays[name] = list_array(flat, offsets)
    return pa.table(arrays)


def as_dataset(table: Any) -> Any:
    """A datasets.Dataset over an in-memory Arrow table (a fresh fingerprint: hashing the table would cost seconds)."""
    import uuid

    from datasets import Dataset

    return Dataset(table, fingerprint=uuid.uuid4().hex)
