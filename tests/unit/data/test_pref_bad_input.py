"""Bad preference and KTO input: identical pairs, missing sides, kto_tag that is not a boolean, and datasets that do
not suit the stage, each an error naming the dataset, row and field (identical pairs skipped and counted on request)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.convert import convert_row
from tunelab.data.errors import DataError
from tunelab.data.gather import load_records
from tunelab.data.registry import DatasetEntry

ALPACA_RANKING = {"ranking": True, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                               "rejected": "rejected"}}
SHAREGPT_RANKING = {"ranking": True, "formatting": "sharegpt",
                    "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}}
KTO = {"columns": {"prompt": "instruction", "response": "output", "kto_tag": "label"}}
PAIRS = [{"instruction": f"Who are you {i}?", "chosen": "I am tunelab-assistant.", "rejected": f"I am model {i}."}
         for i in range(4)]


def gpt(text: Any) -> dict[str, Any]:
    return {"from": "gpt", "value": text}


def sharegpt_pair(chosen: Any, rejected: Any) -> dict[str, Any]:
    return {"conversations": [{"from": "human", "value": "Who are you?"}], "chosen": chosen, "rejected": rejected}


def data(data_dir: Path, **values: Any) -> DataSection:
    return DataSection(dataset="demo", dataset_dir=str(data_dir), **values)


def load_error(section: DataSection, stage: str) -> DataError:
    with pytest.raises(DataError) as caught:
        load_records(section, stage)
    return caught.value


def test_an_identical_pair_is_an_error_naming_dataset_row_and_fields(make_dataset: Any, data_dir: Path) -> None:
    rows = PAIRS[:2] + [{"instruction": "Q", "chosen": "Same.", "rejected": "Same."}] + PAIRS[2:]
    make_dataset(rows, entry=ALPACA_RANKING)
    error = load_error(data(data_dir), "dpo")
    assert (error.dataset, error.row, error.field) == ("demo", 3, "chosen/rejected")
    assert "the chosen and rejected answers are identical ('Same.')" in str(error)
    assert "write a worse rejected answer, or remove the row, or set on_bad_row: skip" in str(error)


def test_identical_pairs_are_skipped_and_counted_with_on_bad_row_skip(make_dataset: Any, data_dir: Path) -> None:
    same = {"conversations": [{"from": "human", "value": "Q"}], "chosen": gpt("A"), "rejected": gpt("A")}
    rows = [sharegpt_pair(gpt("I am tunelab-assistant."), gpt("I am Qwen.")), same, same]
    make_dataset(rows, entry=SHAREGPT_RANKING)
    records, report = load_records(data(data_dir, on_bad_row="skip"), "rm")
    assert len(records) == 1
    counts = report.dataset("demo")
    assert counts.skipped == {"chosen/rejected: chosen and rejected are identical": 2}
    assert [issue.row for issue in counts.skipped_rows] == [2, 3]


def test_pairs_differing_only_in_role_or_spacing_are_kept() -> None:
    entry = DatasetEntry(**SHAREGPT_RANKING)
    call = '{"name": "f", "arguments": {}}'
    row = sharegpt_pair(gpt(call), {"from": "function_call", "value": call})
    assert convert_row(row, entry, "d", 1, None, "dpo").chosen.role == "assistant"
    spaced = sharegpt_pair(gpt("A"), gpt("A "))
    assert convert_row(spaced, entry, "d", 1, None, "dpo").rejected.content == "A "


@pytest.mark.parametrize(("row", "field", "problem"), [
    ({"instruction": "Q", "chosen": None, "rejected": "B"}, "chosen", "missing column 'chosen'"),
    ({"instruction": "Q", "chosen": "A", "rejected": None}, "rejected", "missing column 'rejected'"),
    ({"instruction": "Q", "chosen": "A", "rejected": ""}, "rejected", "the rejected is empty"),
    ({"instruction": "Q", "rejected": "B"}, "chosen", "missing column 'chosen'"),
])
def test_missing_empty_or_null_alpaca_sides(row: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(DataError) as caught:
        convert_row(row, DatasetEntry(**ALPACA_RANKING), "d", 5, None, "dpo")
    assert (caught.value.field, caught.value.problem) == (field, problem)


@pytest.mark.parametrize(("row", "field", "problem"), [
    (sharegpt_pair(None, gpt("B")), "chosen", "missing column 'chosen'"),
    (sharegpt_pair(gpt("A"), gpt(None)), "rejected.value", "the message has no content"),
    (sharegpt_pair(gpt("  "), gpt("B")), "chosen.value", "the chosen answer is empty"),
    ({"conversations": [{"from": "human", "value": "Q"}], "chosen": gpt("A")}, "rejected",
     "missing column 'rejected'"),
])
def test_missing_empty_or_null_sharegpt_sides(row: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(DataError) as caught:
        convert_row(row, DatasetEntry(**SHAREGPT_RANKING), "d", 5, None, "rm")
    assert (caught.value.field, caught.value.problem) == (field, problem)


@pytest.mark.parametrize(("tag", "says", "fix"), [
    ("true", "got str 'true'; a string is not a boolean (LLaMA-Factory would silently drop the row)",
     'true (no quotes) instead of "true"'),
    ("False", "got str 'False'; a string is not a boolean", 'false (no quotes) instead of "False"'),
    (1, "got int 1; a number is not a boolean (LLaMA-Factory would silently drop the row)",
     "true (no quotes) instead of 1"),
    (0, "got int 0; a number is not a boolean", "false (no quotes) instead of 0"),
    ("good", "got str 'good'; the tag says whether the answer is desirable (true) or undesirable (false)",
     "true or false (no quotes)"),
])
def test_a_kto_tag_that_is_not_a_boolean_says_so(tag: Any, says: str, fix: str, make_dataset: Any,
                                                  data_dir: Path) -> None:
    make_dataset([{"instruction": "Q", "output": "A", "label": True},
                  {"instruction": "Q", "output": "B", "label": tag}], entry=KTO)
    error = load_error(data(data_dir), "kto")
    assert (error.dataset, error.row, error.field) == ("demo", 2, "label")
    assert says in error.problem and fix in error.fix


@pytest.mark.parametrize(("entry", "rows", "stage", "problem"), [
    (ALPACA_RANKING, PAIRS, "sft", "this is a ranking dataset (ranking: true); stage sft cannot use it"),
    (ALPACA_RANKING, PAIRS, "pt", "this is a ranking dataset (ranking: true); stage pt cannot use it"),
    (ALPACA_RANKING, PAIRS, "kto", "this is a ranking dataset (ranking: true); stage kto cannot use it"),
    (None, [{"instruction": "Q", "output": "A"}], "dpo", "stage dpo needs a ranking dataset"),
    (None, [{"instruction": "Q", "output": "A"}], "rm", "stage rm needs a ranking dataset"),
    (None, [{"instruction": "Q", "output": "A"}], "kto", "stage kto needs a KTO dataset: a kto_tag column"),
    (KTO, [{"instruction": "Q", "output": "A", "label": True}], "sft",
     "so it is a KTO dataset; stage sft would learn its undesirable answers too"),
    (KTO, [{"instruction": "Q", "output": "A", "label": True}], "dpo", "stage dpo needs a ranking dataset"),
    (KTO, [{"instruction": "Q", "output": "A", "label": False}], "grpo",
     "so it is a KTO dataset; stage grpo would take its undesirable answers as references"),
    (None, PAIRS, "sft", "the rows hold 'chosen' and 'rejected' answers: a preference dataset, but its entry has no "
                         "ranking: true, and stage sft trains on one answer per row"),
])
@pytest.mark.parametrize("on_bad_row", ["error", "skip"])
def test_a_dataset_that_does_not_suit_the_stage_is_one_error(entry: dict[str, Any] | None, rows: list[dict[str, Any]],
                                                             stage: str, problem: str, on_bad_row: str,
                                                             make_dataset: Any, data_dir: Path) -> None:
    make_dataset(rows, entry=entry)
    error = load_error(data(data_dir, on_bad_row=on_bad_row), stage)
    assert problem in error.problem
    assert error.dataset == "demo" and error.row is None and error.file and error.file.endswith("demo.json")
    assert "on_bad_row" not in str(error)  # skipping rows cannot make a dataset suit a stage


def test_an_eval_dataset_that_does_not_suit_the_stage_is_named(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(PAIRS, entry=ALPACA_RANKING)
    make_dataset([{"instruction": "Q", "output": "A"}], name="held", file_name="held.json")
    section = data(data_dir, eval_dataset="held")
    from tunelab.data.pipeline import split_records
    from tunelab.data.report import DataReport

    with pytest.raises(DataError) as caught:
        split_records(section, "dpo", 42, DataReport())
    assert caught.value.dataset == "held" and "stage dpo needs a ranking dataset" in caught.value.problem


def test_sft_rows_with_a_response_next_to_chosen_fields_still_train(make_dataset: Any, data_dir: Path) -> None:
    make_dataset([{"instruction": "Q", "output": "A", "chosen": "x", "rejected": "y"}])
    records, _ = load_records(data(data_dir), "sft")
    assert records[0].response.content == "A"


def test_prompt_stages_read_the_prompts_of_rows_with_chosen_fields(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(PAIRS[:2])
    records, _ = load_records(data(data_dir), "grpo")
    assert [record.reference for record in records] == ["", ""]
