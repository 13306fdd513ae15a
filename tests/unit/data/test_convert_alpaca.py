"""Alpaca rows -> examples of every stage's kind through convert_row; expected values recorded from LLaMA-Factory 0.9.5."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.data.convert import convert_row, unmapped_columns_note
from tunelab.data.errors import DataError
from tunelab.data.examples import Example, Feedback, Message, Pair, PromptOnly, Supervised, TextExample
from tunelab.data.registry import Columns, DatasetEntry


def entry(**columns: Any) -> DatasetEntry:
    return DatasetEntry(columns=Columns(**{"prompt": "instruction", "query": "input", "response": "output", **columns}))


def convert(row: dict[str, Any], spec: DatasetEntry, stage: str = "sft") -> Example:
    return convert_row(row, spec, "d", 7, None, stage)


def error(row: dict[str, Any], spec: DatasetEntry, stage: str = "sft") -> DataError:
    with pytest.raises(DataError) as excinfo:
        convert(row, spec, stage)
    return excinfo.value


def pairs(messages: tuple[Message, ...]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in messages]


def answers(sample: Example) -> tuple[Message, ...]:
    """The answers an example carries: chosen and rejected for a pair, else its one response."""
    return (sample.chosen, sample.rejected) if isinstance(sample, Pair) else (sample.response,)


def test_chinese_history_system_and_input_as_llamafactory_aligns_them() -> None:
    row = {"instruction": "把这句话翻译成英文：", "input": "你好，世界", "output": "Hello, world", "system": "你是翻译助手",
           "history": [["你是谁？", "我是助手。"]]}
    sample = convert(row, entry(history="history", system="system"))
    assert pairs(sample.prompt) == [("user", "你是谁？"), ("assistant", "我是助手。"), ("user", "把这句话翻译成英文：\n你好，世界")]
    assert pairs(answers(sample)) == [("assistant", "Hello, world")]
    assert (sample.system, sample.tools, type(sample), sample.dataset, sample.row) == ("你是翻译助手", "", Supervised, "d", 7)
    assert sample.images == sample.videos == sample.audios == ()


def test_tools_column_is_kept_verbatim_when_it_is_a_json_list() -> None:
    tools = '[{"name": "search", "description": "搜索", "parameters": {"type": "object", "properties": {}}}]'
    sample = convert({"instruction": "Find it", "output": "ok", "tools": tools}, entry(tools="tools"))
    assert sample.tools == tools


def test_tools_given_as_a_parsed_list_become_json_text() -> None:
    sample = convert({"instruction": "Find it", "output": "ok", "tools": [{"name": "搜索"}]}, entry(tools="tools"))
    assert sample.tools == '[{"name": "搜索"}]'


@pytest.mark.parametrize(("tools", "problem", "kind"), [
    ('[{"name": "search"',
     "tools is not valid JSON (Expecting ',' delimiter at character 18): '[{\"name\": \"search\"'",
     "tools is not valid JSON"),
    ('{"name": "search"}', "tools must be a JSON list of tool objects, got a JSON dict", "tools is not a JSON list"),
    ('["search"]', "tool 0 is a JSON str, not an object", "tool is not an object"),
    (42, "expected a JSON list of tools, got int 42", "tools is not a JSON list"),
])
def test_bad_tools_are_errors_not_a_crash_at_render_time(tools: Any, problem: str, kind: str) -> None:
    err = error({"instruction": "Find it", "output": "ok", "tools": tools}, entry(tools="tools"))
    assert (err.problem, err.kind) == (problem, kind)
    assert err.field in ("tools", "tools[0]")


def test_ranking_row_gives_chosen_then_rejected() -> None:
    spec = DatasetEntry(ranking=True, columns=Columns(chosen="chosen", rejected="rejected", response=None))
    sample = convert({"instruction": "Say hi", "input": "", "chosen": "Hi!", "rejected": "Go away"}, spec, "dpo")
    assert pairs(sample.prompt) == [("user", "Say hi")]
    assert pairs(answers(sample)) == [("assistant", "Hi!"), ("assistant", "Go away")]
    assert isinstance(sample, Pair)
    assert convert({"instruction": "Say hi", "chosen": "Hi!", "rejected": "Go away"}, spec, "rm") == sample


@pytest.mark.parametrize(("row", "field", "problem"), [
    ({"instruction": "Q", "chosen": "A"}, "rejected", "missing column 'rejected'"),
    ({"instruction": "Q", "chosen": " ", "rejected": "B"}, "chosen", "the chosen is empty"),
    ({"instruction": "Q", "chosen": {"from": "gpt", "value": "A"}, "rejected": "B"}, "chosen",
     "expected text, got dict {'from': 'gpt', 'value': 'A'}"),
])
def test_bad_ranking_rows(row: dict[str, Any], field: str, problem: str) -> None:
    spec = DatasetEntry(ranking=True, columns=Columns(chosen="chosen", rejected="rejected"))
    err = error(row, spec, "rm")
    assert (err.field, err.problem) == (field, problem)


def test_ranking_entry_without_chosen_column() -> None:
    err = error({"instruction": "Q", "output": "A"}, DatasetEntry(ranking=True), "dpo")
    assert (err.field, err.problem) == ("columns.chosen", "the entry maps no chosen column")


@pytest.mark.parametrize("flag", [True, False])
def test_kto_row_keeps_its_one_answer_and_the_tag(flag: bool) -> None:
    # LLaMA-Factory writes this as _response [answer, ""] (desirable) or ["", answer]; we keep the tag instead
    sample = convert({"instruction": "Say hi", "output": "Hi!", "label": flag}, entry(kto_tag="label"), "kto")
    assert pairs(answers(sample)) == [("assistant", "Hi!")]
    assert (sample.desirable, type(sample)) == (flag, Feedback)


def test_kto_tag_must_be_a_boolean() -> None:
    err = error({"instruction": "Q", "output": "A", "label": "yes"}, entry(kto_tag="label"), "kto")
    assert (err.field, err.problem, err.kind) == ("label", "expected true or false, got str 'yes'; a string is not a "
                                                  "boolean (LLaMA-Factory would silently drop the row)",
                                                  "kto_tag is not a boolean")
    assert error({"instruction": "Q", "output": "A"}, entry(kto_tag="label"), "kto").problem == "missing column 'label'"


def test_stage_kto_needs_a_kto_tag_column() -> None:
    err = error({"instruction": "Q", "output": "A"}, entry(), "kto")
    assert err.field == "columns.kto_tag"
    assert err.problem.startswith("stage kto needs a KTO dataset: a kto_tag column")


@pytest.mark.parametrize(("spec", "stage", "problem"), [
    (DatasetEntry(), "dpo", "stage dpo needs a ranking dataset (a chosen and a rejected answer per row)"),
    (DatasetEntry(), "rm", "stage rm needs a ranking dataset (a chosen and a rejected answer per row)"),
    (DatasetEntry(ranking=True), "sft", "this is a ranking dataset (ranking: true); stage sft cannot use it"),
    (DatasetEntry(ranking=True), "kto", "this is a ranking dataset (ranking: true); stage kto cannot use it"),
    (DatasetEntry(ranking=True), "pt", "this is a ranking dataset (ranking: true); stage pt cannot use it"),
    (entry(kto_tag="label"), "sft",
     "the entry maps kto_tag, so it is a KTO dataset; stage sft would learn its undesirable answers too"),
])
def test_entry_must_suit_the_stage(spec: DatasetEntry, stage: str, problem: str) -> None:
    assert error({"instruction": "Q", "output": "A", "label": True}, spec, stage).problem == problem


def test_unknown_stage_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"unknown stage 'ppx'; expected one of .*; did you mean ppo\?"):
        convert({"instruction": "Q", "output": "A"}, entry(), "ppx")


@pytest.mark.parametrize("stage", ["ppo", "grpo"])
def test_online_stages_read_prompts_with_their_reference_answer(stage: str) -> None:
    sample = convert({"instruction": "Say hi", "input": "", "output": "Hi!"}, entry(), stage)
    assert (type(sample), pairs(sample.prompt), sample.answer) == (PromptOnly, [("user", "Say hi")],
                                                                   Message("assistant", "Hi!"))
    assert convert({"instruction": "Say hi"}, entry(), stage).answer is None


def test_pretraining_reads_the_text_column() -> None:
    sample = convert({"text": "Plain pre-training text. 中文也可以。"}, entry(prompt="text"), "pt")
    assert sample.text == "Plain pre-training text. 中文也可以。"
    assert (type(sample), sample.system) == (TextExample, "")


@pytest.mark.parametrize(("row", "problem"), [
    ({"text": "   "}, "the text is empty"),
    ({"content": "wrong column"}, "missing column 'text'"),
    ({"text": ["a", "b"]}, "expected text, got list ['a', 'b']"),
])
def test_bad_pretraining_rows(row: dict[str, Any], problem: str) -> None:
    err = error(row, entry(prompt="text"), "pt")
    assert (err.field, err.problem) == ("text", problem)


def test_pretraining_without_a_text_mapping_says_how_to_map_it() -> None:
    err = error({"text": "hello"}, entry(), "pt")
    assert err.problem == "missing column 'instruction'"
    assert err.fix == 'map the text column in the entry: "columns": {"prompt": "text"}'


def test_pretraining_needs_plain_text_formatting() -> None:
    err = error({"conversations": []}, DatasetEntry(formatting="sharegpt"), "pt")
    assert (err.field, err.kind) == ("formatting", "stage pt needs plain text")


def test_pretraining_does_not_take_history() -> None:
    err = error({"text": "t", "history": [["a", "b"]]}, entry(prompt="text", history="history"), "pt")
    assert (err.field, err.problem) == ("history", "pre-training reads one text per row; history is not used")


def test_empty_history_turn_is_an_error() -> None:
    err = error({"instruction": "Q", "output": "A", "history": [["a", ""]]}, entry(history="history"))
    assert (err.field, err.problem, err.kind) == ("history[0]", "item 0 has an empty response", "empty message")


def test_missing_response_and_empty_prompt() -> None:
    assert error({"instruction": "Q"}, entry()).problem == "missing column 'output'"
    assert error({"instruction": "Q", "output": ""}, entry()).problem == "the response is empty"
    err = error({"instruction": "", "output": "A"}, entry())
    assert (err.problem, err.kind) == ("the prompt is empty ('instruction' and 'input' are both empty)",
                                       "the prompt is empty")


def test_unmapped_columns_note_is_exported_by_the_package() -> None:
    rows = [{"instruction": "a", "output": "b", "system": "S"}]
    assert unmapped_columns_note(rows, Columns()) is not None
    assert unmapped_columns_note(rows, Columns(system="system")) is None


@pytest.mark.parametrize("stage", ["sft", "kto"])
def test_a_text_corpus_under_an_answer_stage_suggests_stage_pt(stage: str) -> None:
    # issue 21: {"prompt": "text"} under stage sft said only that the entry maps no response column
    entry = DatasetEntry(columns={"prompt": "text"})
    with pytest.raises(DataError) as caught:
        convert_row({"text": "一段预训练文本"}, entry, "corpus", 1, None, stage)
    message = str(caught.value)
    assert "the entry maps no response column, only the text column 'text': a text corpus" in message
    assert "to pre-train on the text use stage: pt" in message


def test_a_misspelt_column_gets_a_did_you_mean() -> None:
    entry = DatasetEntry(columns={"prompt": "instruction", "response": "ouptut"})
    with pytest.raises(DataError) as caught:
        convert_row({"instruction": "q", "output": "a"}, entry, "d", 1, None, "sft")
    assert caught.value.problem == "missing column 'ouptut'; did you mean output?"
    assert caught.value.fix == "correct the column name in dataset_info.json's \"columns\" (the row's fields are: " \
                               "instruction, output)"
    with pytest.raises(DataError) as caught:
        convert_row({"instrution": "q", "output": "a"}, DatasetEntry(), "d", 1, None, "sft")
    assert caught.value.problem == "missing column 'instruction'; did you mean instrution?"
