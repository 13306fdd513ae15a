"""A train or eval set that packing leaves empty stops with its cause and fix (not the trainer's num_samples error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.errors import DataError
from tunelab.data.pipeline import build_data

TEXTS = [{"text": f"Document {i}: tunelab trains small models on plain text, line after line."} for i in range(8)]


def section(data_dir: Path, **values: Any) -> DataSection:
    return DataSection(dataset="corpus", dataset_dir=str(data_dir), **values)


def test_a_short_eval_part_of_a_corpus_is_named(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(TEXTS, name="corpus", file_name="corpus.json", entry={"columns": {"prompt": "text"}})
    with pytest.raises(DataError, match="the evaluation set 'validation' has no examples: its 1 text makes"):
        build_data(section(data_dir, val_size=1, cutoff_len=64), tiny_tokenizer, seed=0, stage="pt")


def test_batches_too_small_for_a_block_say_so(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(TEXTS, name="corpus", file_name="corpus.json", entry={"columns": {"prompt": "text"}})
    with pytest.raises(DataError) as excinfo:
        build_data(section(data_dir, cutoff_len=64, preprocessing_batch_size=1), tiny_tokenizer, seed=0, stage="pt")
    assert excinfo.value.field == "preprocessing_batch_size"
    assert "no preprocessing batch of 1 texts fills one block of 64 tokens" in excinfo.value.problem

