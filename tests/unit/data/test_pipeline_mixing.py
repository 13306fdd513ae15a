"""build_data with several datasets: mix_strategy, eval_dataset (merged or one by one), val_size split before
packing, and the per-dataset counts of the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data import mix, store
from tunelab.data.errors import DataError
from tunelab.data.dataset import packed_columns
from tunelab.data.examples import Message, Supervised
from tunelab.data.pipeline import build_data
from tunelab.data.report import DataReport, DatasetReport


def rows(prefix: str, count: int) -> list[dict[str, str]]:
    return [{"instruction": f"{prefix} question {i}?", "output": f"{prefix} answer {i}."} for i in range(count)]


@pytest.fixture
def three(make_dataset: Any) -> None:
    make_dataset(rows("a", 6), name="a", file_name="a.json")
    make_dataset(rows("b", 3), name="b", file_name="b.json")
    make_dataset(rows("c", 4), name="c", file_name="c.json")


def section(data_dir: Path, **values: Any) -> DataSection:
    return DataSection(dataset_dir=str(data_dir), **{"dataset": "a,b", **values})


def decoded(dataset: Any, tokenizer: Any) -> list[str]:
    return [tokenizer.decode(ids) for ids in dataset["input_ids"]]


def test_interleave_under_takes_rows_in_datasets_order_and_reports_them(three: None, data_dir: Path,
                                                                        tiny_tokenizer: Any) -> None:
    bundle = build_data(section(data_dir, mix_strategy="interleave_under"), tiny_tokenizer, seed=42)
    order = mix.interleave_order([6, 3], "interleave_under", None, 42)
    texts = decoded(bundle.train, tiny_tokenizer)
    assert len(texts) == len(order) == 6  # a0 b0 a1 b1 a2 b2, then b is used up
    for text, (d, i) in zip(texts, order):
        assert f"{'ab'[d]} question {i}?" in text
    assert bundle.report.mixing["train"]["rows_taken"] == {"a": 3, "b": 3}
    assert bundle.report.mixing["train"]["rows_converted"] == {"a": 6, "b": 3}


def test_interleave_over_repeats_the_small_dataset(three: None, data_dir: Path, tiny_tokenizer: Any) -> None:
    bundle = build_data(section(data_dir, mix_strategy="interleave_over", interleave_probs="0.5,0.5"),
                        tiny_tokenizer, seed=1)
    taken = bundle.report.mixing["train"]["rows_taken"]
    assert taken["a"] >= 6 and taken["b"] >= 3 and len(bundle.train) == taken["a"] + taken["b"]


def test_eval_dataset_is_merged_into_one_validation_set(three: None, data_dir: Path, tiny_tokenizer: Any) -> None:
    bundle = build_data(section(data_dir, eval_dataset="c"), tiny_tokenizer, seed=42)
    assert len(bundle.train) == 9 and len(bundle.eval) == 4
    assert all("c question" in text for text in decoded(bundle.eval, tiny_tokenizer))
    report = bundle.report
    assert [(d.name, d.role) for d in report.datasets] == [("a", "train"), ("b", "train"), ("c", "eval")]
    assert report.dataset("c", "eval").tokens == sum(len(ids) for ids in bundle.eval["input_ids"])
    assert (report.train_examples, report.eval_examples) == (9, 4)


def test_eval_on_each_dataset_gives_one_set_per_dataset(three: None, data_dir: Path, tiny_tokenizer: Any) -> None:
    bundle = build_data(section(data_dir, dataset="a", eval_dataset="b,c", eval_on_each_dataset=True),
                        tiny_tokenizer, seed=42)
    assert {name: len(part) for name, part in bundle.eval.items()} == {"b": 3, "c": 4}
    assert bundle.report.eval_sets == {"b": 3, "c": 4}


def test_val_size_splits_rows_before_packing_as_llamafactory(three: None, data_dir: Path,
                                                              tiny_tokenizer: Any) -> None:
    bundle = build_data(section(data_dir, dataset="a", val_size=2, packing=True, cutoff_len=64), tiny_tokenizer,
                        seed=42)
    _, held = mix.split(list(range(6)), 2, 42)
    eval_text = " ".join(decoded(bundle.eval, tiny_tokenizer))
    assert all(f"a question {i}?" in eval_text for i in held)
    train_text = " ".join(decoded(bundle.train, tiny_tokenizer))
    assert not any(f"a question {i}?" in train_text for i in held)
    assert bundle.report.dataset("a").rows_read == 6  # held-out rows are counted with their dataset


def test_an_empty_eval_set_is_an_error(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 3), name="a", file_name="a.json")
    make_dataset([{"instruction": "x", "output": ""}], name="e", file_name="e.json")
    with pytest.raises(DataError, match="the evaluation set 'validation' has no rows"):
        build_data(section(data_dir, dataset="a", eval_dataset="e", on_bad_row="skip"), tiny_tokenizer, seed=0)


def test_examples_too_long_for_packing_are_counted_per_dataset(tiny_tokenizer: Any) -> None:
    # truncation keeps examples within cutoff_len, so only examples made elsewhere can be too long
    records = [Supervised.chat((Message("user", "q"), Message("assistant", "a")), dataset=name, row=1)
               for name in ("a", "b", "b")]
    chunk = store.EncodedChunk()
    for length in (3, 9, 12):
        chunk.add(input_ids=list(range(1, length + 1)), labels=list(range(1, length + 1)))
    report = DataReport(datasets=[DatasetReport(name="a"), DatasetReport(name="b")])
    data = DataSection(neat_packing=True, cutoff_len=8)
    packed = packed_columns(records, [chunk], tiny_tokenizer, data, report, "train")
    assert len(packed["input_ids"]) == 1
    assert [d.dropped_for_length for d in report.datasets] == [0, 2]
    assert report.dropped_for_length == 2 and report.totals()["dropped_for_length"] == 2


def test_workers_that_would_not_pay_are_explained(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 5), name="a", file_name="a.json")
    bundle = build_data(section(data_dir, dataset="a", preprocessing_num_workers=2), tiny_tokenizer, seed=0)
    assert bundle.report.notes == ["preprocessing_num_workers 2: tokenized in this process, not in worker processes: "
                                   "5 rows are too few to pay for starting them (from 20,000)"]


def test_preprocessing_batch_size_bounds_what_is_packed_together(make_dataset: Any, data_dir: Path,
                                                                 tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 6), name="a", file_name="a.json")
    together = build_data(section(data_dir, dataset="a", neat_packing=True, cutoff_len=512), tiny_tokenizer, seed=0)
    apart = build_data(section(data_dir, dataset="a", neat_packing=True, cutoff_len=512, preprocessing_batch_size=1),
                       tiny_tokenizer, seed=0)
    assert [len(r) for r in together.train["example_lengths"]] == [6]
    assert [len(r) for r in apart.train["example_lengths"]] == [1] * 6
