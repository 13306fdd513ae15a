"""The data path: registry -> rows -> records (strict or skipping, counted) -> tokens -> train/eval split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data import store
from tunelab.data.errors import DataError
from tunelab.data.gather import load_records, split_names
from tunelab.data.pipeline import build_data, tokenize_records
from tunelab.data.report import DataReport, DatasetReport
from tunelab.data.examples import Message, Supervised
from tunelab.data.encode.cutoff import IGNORE_INDEX

GOOD = {"instruction": "What is the capital of France?", "output": "Paris"}


def rows(count: int) -> list[dict[str, str]]:
    return [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(count)]


def section(data_dir: Path, **values: Any) -> DataSection:
    return DataSection(dataset=values.pop("dataset", "demo"), dataset_dir=str(data_dir), **values)


def test_split_names() -> None:
    assert split_names(" a, b ,,c ") == ["a", "b", "c"]
    assert split_names(None) == []


def test_records_keep_dataset_and_row(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(rows(3), name="one", file_name="one.json")
    make_dataset(rows(2), name="two", file_name="two.jsonl", raw="\n".join(json.dumps(r) for r in rows(2)))
    records, report = load_records(section(data_dir, dataset="one, two"))
    assert [(r.dataset, r.row) for r in records] == [("one", 1), ("one", 2), ("one", 3), ("two", 1), ("two", 2)]
    assert [(d.name, d.rows_read, d.rows_converted) for d in report.datasets] == [("one", 3, 3), ("two", 2, 2)]
    assert report.datasets[0].file == str(data_dir / "one.json")


def test_a_bad_row_stops_with_dataset_file_row_field_and_the_skip_option(make_dataset: Any, data_dir: Path) -> None:
    path = make_dataset([GOOD, GOOD, {"instruction": "Hi", "output": ""}])
    with pytest.raises(DataError) as excinfo:
        load_records(section(data_dir))
    assert str(excinfo.value) == (f"dataset 'demo' ({path}), row 3, field output: the response is empty; write the "
                                  "answer the model should learn, or remove the row, or set on_bad_row: skip")


def test_a_bad_row_without_a_fix_still_offers_skipping(make_dataset: Any, data_dir: Path) -> None:
    path = make_dataset([{**GOOD, "history": "not a list"}], entry={"columns": {"history": "history"}})
    with pytest.raises(DataError) as excinfo:
        load_records(section(data_dir))
    assert str(excinfo.value) == (f"dataset 'demo' ({path}), row 1, field history: expected a list of [prompt, "
                                  "response] pairs, got str; set on_bad_row: skip")


def test_skipping_counts_rows_by_reason(make_dataset: Any, data_dir: Path) -> None:
    make_dataset([GOOD, {"instruction": "Hi", "output": ""}, {"instruction": "Hi"}, GOOD,
                  {"instruction": "Hi", "output": " "}])
    records, report = load_records(section(data_dir, on_bad_row="skip"))
    assert [r.row for r in records] == [1, 4]
    stats = report.datasets[0]
    assert stats.skipped == {"output: the response is empty": 2, "output: missing column 'output'": 1}
    assert [(issue.row, issue.reason) for issue in stats.skipped_rows] == [
        (2, "output: the response is empty"), (3, "output: missing column 'output'"),
        (5, "output: the response is empty")]
    assert report.totals()["rows_skipped"] == 3
    assert (stats.rows_read, stats.rows_converted) == (5, 2)


def test_skip_reasons_group_rows_with_the_same_problem(make_dataset: Any, data_dir: Path) -> None:
    make_dataset([GOOD] + [{"instruction": "Hi", "output": n} for n in range(5)])
    _, report = load_records(section(data_dir, on_bad_row="skip"))
    assert len(report.datasets[0].skipped) == 1


def test_all_rows_skipped_says_so(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset([{"instruction": "Hi", "output": ""}])
    with pytest.raises(DataError) as excinfo:
        build_data(section(data_dir, on_bad_row="skip"), tiny_tokenizer, seed=0)
    assert str(excinfo.value) == "dataset 'demo': no rows to train on (all were skipped; see the data report)"


def test_max_samples_takes_the_first_rows(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(rows(10))
    records, report = load_records(section(data_dir, max_samples=4))
    assert [r.messages[0].content for r in records] == [f"Question {i}?" for i in range(4)]
    assert report.datasets[0].rows_read == 4


def test_file_sha1_mismatch_is_a_report_note(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(rows(2), entry={"file_sha1": "0" * 40})
    _, report = load_records(section(data_dir))
    (note,) = report.datasets[0].notes
    assert f"file_sha1 in dataset_info.json is {'0' * 40} but the file's is " in note
    assert "the file changed since it was registered" in note


def test_matching_file_sha1_gives_no_note(make_dataset: Any, data_dir: Path) -> None:
    import hashlib

    path = make_dataset(rows(2))
    make_dataset(rows(2), entry={"file_sha1": hashlib.sha1(path.read_bytes()).hexdigest()})
    _, report = load_records(section(data_dir))
    assert report.datasets[0].notes == []


def test_unmapped_system_field_is_a_report_note(make_dataset: Any, data_dir: Path) -> None:
    make_dataset([{**GOOD, "system": "You are a pirate."}])
    records, report = load_records(section(data_dir))
    assert records[0].system == ""
    (note,) = report.datasets[0].notes
    assert 'rows have system fields that dataset_info.json does not map' in note
    assert '{"system": "system"}' in note


def test_a_sharegpt_entry_is_converted(make_dataset: Any, data_dir: Path) -> None:
    conversation = [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."},
                    {"from": "human", "value": "Bye?"}, {"from": "gpt", "value": "Bye."}]
    make_dataset([{"conversations": conversation}], entry={"formatting": "sharegpt"})
    records, _ = load_records(section(data_dir))
    assert [m.content for m in records[0].messages] == ["Hi?", "Hello.", "Bye?", "Bye."]


def test_a_ranking_entry_is_refused_for_sft(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(rows(1), entry={"ranking": True})
    with pytest.raises(DataError, match="this is a ranking dataset"):
        load_records(section(data_dir))


def test_num_samples_up_samples_with_the_run_seed(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(rows(3), entry={"num_samples": 7})
    records, report = load_records(section(data_dir))
    assert len(records) == 7 and {r.messages[0].content for r in records} == {f"Question {i}?" for i in range(3)}
    assert any("num_samples" in note for note in report.datasets[0].notes)


def test_hub_entries_are_refused_offline(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('{"hub": {"hf_hub_url": "org/name"}}')
    with pytest.raises(DataError, match="cannot reach https://huggingface.co/datasets/org/name"):
        load_records(section(data_dir, dataset="hub"))


def test_build_data_tokenizes_and_reports(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows(5))
    bundle = build_data(section(data_dir), tiny_tokenizer, seed=0)
    assert bundle.eval is None
    assert len(bundle.train) == 5 and bundle.train.column_names == ["input_ids", "labels"]
    totals = bundle.report.totals()
    assert totals["rows_read"] == totals["rows_converted"] == 5
    assert totals["tokens"] == sum(len(ids) for ids in bundle.train["input_ids"])
    assert totals["tokens_trained"] == sum(sum(1 for x in labels if x != IGNORE_INDEX)
                                           for labels in bundle.train["labels"])
    assert 0 < totals["tokens_trained"] < totals["tokens"]
    assert (bundle.report.train_examples, bundle.report.eval_examples) == (5, 0)


@pytest.mark.parametrize(("val_size", "train", "evaluation"), [(0.2, 8, 2), (0.25, 7, 3), (3.0, 7, 3), (1.0, 9, 1)])
def test_val_size_fraction_or_count(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any, val_size: float,
                                    train: int, evaluation: int) -> None:
    make_dataset(rows(10))
    bundle = build_data(section(data_dir, val_size=val_size), tiny_tokenizer, seed=0)
    assert (len(bundle.train), len(bundle.eval)) == (train, evaluation)
    assert (bundle.report.train_examples, bundle.report.eval_examples) == (train, evaluation)
    everything = build_data(section(data_dir), tiny_tokenizer, seed=0).train
    assert sorted(list(bundle.train["input_ids"]) + list(bundle.eval["input_ids"])) == sorted(everything["input_ids"])


def test_split_is_seeded(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows(10))
    first = list(build_data(section(data_dir, val_size=0.3), tiny_tokenizer, seed=1).eval["input_ids"])
    again = list(build_data(section(data_dir, val_size=0.3), tiny_tokenizer, seed=1).eval["input_ids"])
    assert first == again


@pytest.mark.parametrize("val_size", [10.0, 12.0, 0.96])
def test_val_size_that_leaves_no_training_rows(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any,
                                               val_size: float) -> None:
    make_dataset(rows(10))
    with pytest.raises(DataError) as excinfo:
        build_data(section(data_dir, val_size=val_size), tiny_tokenizer, seed=0)
    assert str(excinfo.value) == f"val_size {val_size} leaves no training rows out of 10; lower val_size or add data"


def test_val_size_fraction_rounding_up_to_all_rows_is_a_data_error(make_dataset: Any, data_dir: Path,
                                                                   tiny_tokenizer: Any) -> None:
    make_dataset(rows(10))
    with pytest.raises(DataError, match="leaves no training rows"):
        build_data(section(data_dir, val_size=0.91), tiny_tokenizer, seed=0)


def test_data_report_is_written_as_json(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any,
                                        tmp_path: Path) -> None:
    make_dataset([GOOD, {"instruction": "Hi"}])
    bundle = build_data(section(data_dir, on_bad_row="skip"), tiny_tokenizer, seed=0)
    bundle.report.write(tmp_path / "data_report.json")
    saved = json.loads((tmp_path / "data_report.json").read_text())
    assert saved["totals"]["rows_skipped"] == 1
    assert saved["datasets"][0]["skipped"] == {"output: missing column 'output'": 1}
    assert saved["train_examples"] == 1


def two_dataset_records(count: int) -> list[Supervised]:
    return [Supervised.chat(messages=(Message("user", f"Question {i}?"), Message("assistant", f"Answer {i}, thanks.")),
                       dataset="a" if i % 3 else "b", row=i + 1) for i in range(count)]


def tokenize_with(records: list[Supervised], tokenizer: Any, **values: Any) -> tuple[dict[str, Any], DataReport]:
    report = DataReport(datasets=[DatasetReport(name="a"), DatasetReport(name="b")])
    return tokenize_records(records, tokenizer, DataSection(**values), report), report


def test_worker_processes_give_the_same_examples_and_counts(tiny_tokenizer: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "PARALLEL_MIN_ROWS", 4)
    monkeypatch.setattr(store.env, "cpu_cores", lambda: 4)
    records = two_dataset_records(10)
    parallel = tokenize_with(records, tiny_tokenizer, preprocessing_num_workers=2, cutoff_len=10)
    serial = tokenize_with(records, tiny_tokenizer, cutoff_len=10)
    assert parallel == serial
    assert parallel[1].datasets[0].truncated > 0 and parallel[1].datasets[1].tokens > 0


def test_a_data_error_in_a_worker_keeps_its_message(tiny_tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "PARALLEL_MIN_ROWS", 2)
    monkeypatch.setattr(store.env, "cpu_cores", lambda: 4)
    records = two_dataset_records(3)
    records[0] = Supervised.chat(messages=(Message("user", "Weather?"), Message("function", "{not json")),
                             dataset="b", row=1)
    with pytest.raises(DataError) as excinfo:
        tokenize_with(records, tiny_tokenizer, preprocessing_num_workers=2)
    assert str(excinfo.value).startswith("dataset 'b', row 1, field function_call: ")


def test_few_rows_are_tokenized_in_process(tiny_tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pool(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a process pool was started for a few rows")

    monkeypatch.setattr(store, "encode_in_workers", no_pool)
    columns, _ = tokenize_with(two_dataset_records(5), tiny_tokenizer, preprocessing_num_workers=4)
    assert len(columns["input_ids"]) == 5


def test_an_encoding_error_names_dataset_file_and_row(tiny_tokenizer: Any) -> None:
    turns = (Message("user", "a"), Message("function", '{"name": "f"}'))
    record = Supervised(prompt=turns[:1], response=turns[1], dataset="chats", row=7, tools="[{bad")
    report = DataReport(datasets=[DatasetReport(name="chats", file="data/chats.json")])
    with pytest.raises(DataError) as excinfo:
        tokenize_records([record], tiny_tokenizer, DataSection(dataset="chats"), report)
    assert str(excinfo.value).startswith("dataset 'chats' (data/chats.json), row 7, field tools: ")
