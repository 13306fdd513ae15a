"""Alpaca rows -> ChatRecords, as LLaMA-Factory converts them, with strict field checks."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.data.convert.alpaca import convert_row, unmapped_columns_note
from tunelab.data.errors import DataError
from tunelab.data.examples import Message, Supervised
from tunelab.data.registry import Columns

DEFAULT = Columns()
WITH_HISTORY_AND_SYSTEM = Columns(history="history", system="system")


def turns(record: Supervised) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in record.messages]


def test_instruction_and_input_are_joined_with_a_newline() -> None:
    record = convert_row({"instruction": "Translate to French:", "input": "cat", "output": "chat"}, DEFAULT, "d", 3)
    assert turns(record) == [("user", "Translate to French:\ncat"), ("assistant", "chat")]
    assert (record.dataset, record.row, record.system) == ("d", 3, "")


@pytest.mark.parametrize("row", [
    {"instruction": "Hello there", "input": "", "output": "Hi"},
    {"instruction": "Hello there", "output": "Hi"},
    {"instruction": "Hello there", "input": None, "output": "Hi"},
])
def test_empty_or_missing_input_gives_the_instruction_alone(row: dict[str, Any]) -> None:
    assert turns(convert_row(row, DEFAULT, "d", 1))[0] == ("user", "Hello there")


def test_input_alone_is_the_prompt() -> None:
    assert turns(convert_row({"input": "cat", "output": "chat"}, DEFAULT, "d", 1))[0] == ("user", "cat")


def test_history_pairs_come_before_the_last_turn() -> None:
    row = {"instruction": "And a dog?", "output": "chien", "history": [["A cat?", "chat"], ["A bird?", "oiseau"]]}
    assert turns(convert_row(row, WITH_HISTORY_AND_SYSTEM, "d", 1)) == [
        ("user", "A cat?"), ("assistant", "chat"), ("user", "A bird?"), ("assistant", "oiseau"),
        ("user", "And a dog?"), ("assistant", "chien")]


def test_system_is_used_only_when_mapped() -> None:
    row = {"instruction": "Hi", "output": "Hello", "system": "Be brief.", "history": [["a", "b"]]}
    assert convert_row(row, WITH_HISTORY_AND_SYSTEM, "d", 1).system == "Be brief."
    unmapped = convert_row(row, DEFAULT, "d", 1)
    assert unmapped.system == ""
    assert turns(unmapped) == [("user", "Hi"), ("assistant", "Hello")]


def test_renamed_columns() -> None:
    columns = Columns(prompt="question", query=None, response="answer")
    record = convert_row({"question": "Q", "input": "ignored", "answer": "A"}, columns, "d", 1)
    assert record.messages == (Message("user", "Q"), Message("assistant", "A"))


def test_as_dicts_puts_the_system_first_and_falls_back_to_default_system() -> None:
    record = convert_row({"instruction": "Hi", "output": "Hello"}, DEFAULT, "d", 1)
    assert record.as_dicts() == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert record.as_dicts("Be kind.")[0] == {"role": "system", "content": "Be kind."}
    with_system = convert_row({"instruction": "Hi", "output": "Hello", "system": "Own."},
                              WITH_HISTORY_AND_SYSTEM, "d", 1)
    assert with_system.as_dicts("Be kind.")[0] == {"role": "system", "content": "Own."}


@pytest.mark.parametrize(("row", "field", "problem", "fix"), [
    ({"instruction": "Hi", "output": "   "}, "output", "the response is empty",
     "write the answer the model should learn, or remove the row"),
    ({"instruction": "Hi"}, "output", "missing column 'output'",
     "add a 'output' value to the row, or map the right column in dataset_info.json"),
    ({"instruction": "Hi", "output": None}, "output", "missing column 'output'",
     "add a 'output' value to the row, or map the right column in dataset_info.json"),
    ({"instruction": "", "input": "", "output": "x"}, "instruction",
     "the prompt is empty ('instruction' and 'input' are both empty)", "give the row an instruction"),
    ({"instruction": 42, "output": "x"}, "instruction", "expected text, got int 42", "make the value a string"),
    ({"instruction": "Hi", "output": ["a", "b"]}, "output", "expected text, got list ['a', 'b']",
     "make the value a string"),
])
def test_bad_rows_name_the_field_and_the_fix(row: dict[str, Any], field: str, problem: str, fix: str) -> None:
    with pytest.raises(DataError) as excinfo:
        convert_row(row, DEFAULT, "d", 1)
    assert (excinfo.value.field, excinfo.value.problem, excinfo.value.fix) == (field, problem, fix)


@pytest.mark.parametrize(("history", "field", "problem"), [
    ("a, b", "history", "expected a list of [prompt, response] pairs, got str"),
    ([["a", "b"], ["c"]], "history[1]", "item 1 is not a [prompt, response] pair of strings"),
    ([["a", 2]], "history[0]", "item 0 is not a [prompt, response] pair of strings"),
])
def test_bad_history_names_the_item(history: Any, field: str, problem: str) -> None:
    with pytest.raises(DataError) as excinfo:
        convert_row({"instruction": "Hi", "output": "x", "history": history}, WITH_HISTORY_AND_SYSTEM, "d", 1)
    assert (excinfo.value.field, excinfo.value.problem) == (field, problem)


def test_long_values_are_shortened_in_the_message() -> None:
    with pytest.raises(DataError) as excinfo:
        convert_row({"instruction": "Hi", "output": {"text": "x" * 500}}, DEFAULT, "d", 1)
    assert len(excinfo.value.problem) < 100


def test_unmapped_system_and_history_fields_get_a_note() -> None:
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "a", "output": "b", "system": "S", "history": [["q", "r"]]}]
    assert unmapped_columns_note(rows, DEFAULT) == (
        "rows have system and history fields that dataset_info.json does not map, so they are not used (as in "
        'LLaMA-Factory); to use them add to the entry\'s columns: {"system": "system", "history": "history"}')
    assert unmapped_columns_note(rows, WITH_HISTORY_AND_SYSTEM) is None
    assert unmapped_columns_note([{"instruction": "a", "output": "b", "system": ""}], DEFAULT) is None
