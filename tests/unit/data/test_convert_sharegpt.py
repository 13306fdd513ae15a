"""ShareGPT and OpenAI rows -> examples; the expected contents were recorded from LLaMA-Factory 0.9.5's converters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tunelab.data.convert import convert_row
from tunelab.data.errors import DataError
from tunelab.data.examples import Example, Feedback, Message, Pair, Supervised
from tunelab.data.registry import Columns, DatasetEntry, Tags

SHAREGPT = DatasetEntry(formatting="sharegpt", columns=Columns(messages="conversations", system="system",
                                                               tools="tools"))
SHAREGPT_RANKING = DatasetEntry(formatting="sharegpt", ranking=True,
                                columns=Columns(messages="conversations", chosen="chosen", rejected="rejected"))
SHAREGPT_KTO = DatasetEntry(formatting="sharegpt", columns=Columns(messages="conversations", kto_tag="label"))
OPENAI_TAGS = Tags(role_tag="role", content_tag="content", user_tag="user", assistant_tag="assistant",
                   observation_tag="tool", function_tag="function_call", system_tag="system")
OPENAI = DatasetEntry(formatting="openai", columns=Columns(messages="messages", tools="tools"), tags=OPENAI_TAGS)
WEATHER_CALL = '{"name": "get_weather", "arguments": {"city": "北京"}}'


def convert(row: dict[str, Any], spec: DatasetEntry = SHAREGPT, stage: str = "sft") -> Example:
    return convert_row(row, spec, "d", 0, None, stage)


def error(row: dict[str, Any], spec: DatasetEntry = SHAREGPT, stage: str = "sft") -> DataError:
    with pytest.raises(DataError) as excinfo:
        convert(row, spec, stage)
    return excinfo.value


def answers(sample: Example) -> tuple[Message, ...]:
    """The answers an example carries: chosen and rejected for a pair, else its one response."""
    return (sample.chosen, sample.rejected) if isinstance(sample, Pair) else (sample.response,)

def pairs(messages: tuple[Message, ...]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in messages]


def chat(*turns: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"from": role, "value": value} for role, value in turns]


def test_function_call_and_observation_conversation_with_tools() -> None:
    tools = ('[{"name": "get_weather", "description": "天气", "parameters": {"type": "object", '
             '"properties": {"city": {"type": "string"}}}}]')
    row = {"conversations": chat(("human", "北京天气怎么样？"), ("function_call", WEATHER_CALL),
                                 ("observation", '{"temp": 20}'), ("gpt", "北京现在20度。")), "tools": tools}
    sample = convert(row)
    assert pairs(sample.prompt) == [("user", "北京天气怎么样？"), ("function", WEATHER_CALL), ("observation", '{"temp": 20}')]
    assert pairs(answers(sample)) == [("assistant", "北京现在20度。")]
    assert (sample.tools, sample.system, type(sample)) == (tools, "", Supervised)


def test_a_function_call_may_be_the_answer() -> None:
    sample = convert({"conversations": chat(("human", "天气？"), ("function_call", WEATHER_CALL))})
    assert pairs(answers(sample)) == [("function", WEATHER_CALL)]


def test_a_first_system_message_wins_over_the_system_column() -> None:
    row = {"conversations": chat(("system", "From the message"), ("human", "Hi"), ("gpt", "Hello")),
           "system": "From the column"}
    sample = convert(row)
    assert (sample.system, pairs(sample.messages)) == ("From the message", [("user", "Hi"), ("assistant", "Hello")])
    del row["conversations"][0]
    assert convert(row).system == "From the column"


def test_custom_tags() -> None:
    spec = DatasetEntry(formatting="sharegpt", columns=Columns(messages="messages"),
                        tags=Tags(role_tag="role", content_tag="content", user_tag="user", assistant_tag="assistant",
                                  system_tag="system"))
    row = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
                        {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
                        {"role": "assistant", "content": "A2"}]}
    sample = convert(row, spec)
    assert sample.system == "S"  # sharegpt formatting never adds LLaMA-Factory's openai "detailed thinking off"
    assert pairs(sample.prompt) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2")]
    assert pairs(answers(sample)) == [("assistant", "A2")]


@pytest.mark.parametrize(("turns", "field", "problem"), [
    ((("human", "Q"), ("gpt", "A"), ("gpt", "A again")), "conversations[2].from",
     "two assistant-side turns in a row ('gpt' at message 1, then 'gpt'); message 2 must be 'human' or 'observation'"),
    ((("human", "Q"), ("observation", "result")), "conversations[1].from",
     "two user-side turns in a row ('human' at message 0, then 'observation'); message 1 must be 'gpt' or "
     "'function_call'"),
    ((("gpt", "Hello"), ("human", "Q"), ("gpt", "A")), "conversations[0].from",
     "the conversation starts with a 'gpt' turn; it must start with 'human' or 'observation'"),
    ((("system", "S"), ("human", "Q"), ("human", "Q2"), ("gpt", "A")), "conversations[2].from",
     "two user-side turns in a row ('human' at message 1, then 'human'); message 2 must be 'gpt' or 'function_call'"),
])
def test_wrong_role_order_names_the_message_and_the_expected_role(turns: tuple, field: str, problem: str) -> None:
    err = error({"conversations": chat(*turns)})
    assert (err.field, err.problem, err.kind) == (field, problem, "wrong role order")


def test_sft_conversation_must_end_with_the_answer() -> None:
    # LLaMA-Factory logs "Invalid message count" and drops such a row
    err = error({"conversations": chat(("human", "Q"), ("gpt", "A"), ("human", "Q2"))})
    assert (err.field, err.kind) == ("conversations[2].from", "conversation does not end with an answer")
    assert err.problem == "the conversation ends with a 'human' turn (message 2); it must end with the answer to learn"


@pytest.mark.parametrize(("row", "field", "problem", "kind"), [
    ({"conversations": chat(("human", "Q"), ("bot", "A"))}, "conversations[1].from",
     "message 1 has unknown role 'bot'; the entry's tags know 'human', 'gpt', 'observation', 'function_call', "
     "'system'", "unknown role"),
    ({"conversations": chat(("human", "Q"), ("system", "S"), ("gpt", "A"))}, "conversations[1].from",
     "message 1 is a 'system' message; only the first message may be the system prompt", "system message not first"),
    ({"conversations": [{"role": "user", "content": "Q"}]}, "conversations[0]", "message 0 has no 'from' key",
     "message without a role"),
    ({"conversations": ["Q", "A"]}, "conversations[0]", "message 0 is a str, not an object",
     "message is not an object"),
    ({"conversations": chat(("human", 42), ("gpt", "A"))}, "conversations[0].value", "expected text, got int 42",
     "expected text, got int"),
    ({"conversations": chat(("human", "Q"), ("gpt", None))}, "conversations[1].value", "the message has no content",
     "message without content"),
    ({"conversations": "Q: hi A: hello"}, "conversations", "expected a list of messages, got str 'Q: hi A: hello'",
     "messages is not a list"),
    ({"other": []}, "conversations", "missing column 'conversations'", "missing column 'conversations'"),
    ({"conversations": []}, "conversations", "the conversation has no turns", "empty conversation"),
    ({"conversations": chat(("system", "S"))}, "conversations", "the conversation has no turns", "empty conversation"),
    ({"conversations": chat(("human", "Q"), ("gpt", "  "))}, "conversations[1].value", "the response is empty",
     "the response is empty"),
    ({"conversations": chat(("human", ""), ("gpt", "A"))}, "conversations[0].value", "message 0 ('human') is empty",
     "empty message"),
    ({"conversations": chat(("human", "Q"), ("function_call", "get_weather(北京)"), ("observation", "20"),
                            ("gpt", "A"))}, "conversations[1].value",
     "the function call is not valid JSON (Expecting value at character 0): 'get_weather(北京)'",
     "function call is not valid JSON"),
    ({"conversations": chat(("human", "Q"), ("function_call", '{"name": "get_weather"}'), ("observation", "20"),
                            ("gpt", "A"))}, "conversations[1].value",
     "a function call needs 'name' and 'arguments', got {'name': 'get_weather'}",
     "function call without name or arguments"),
    ({"conversations": chat(("human", "Q"), ("gpt", "A")), "tools": "get_weather"}, "tools",
     "tools is not valid JSON (Expecting value at character 0): 'get_weather'", "tools is not valid JSON"),
])
def test_bad_rows_name_the_field(row: dict[str, Any], field: str, problem: str, kind: str) -> None:
    err = error(row)
    assert (err.field, err.problem, err.kind) == (field, problem, kind)


def test_missing_role_key_suggests_the_role_tag() -> None:
    err = error({"conversations": [{"role": "user", "content": "Q"}]})
    assert err.fix == "set the entry's tags.role_tag (and content_tag) to the keys your messages use"


def test_function_call_with_thought_wrappers_is_left_to_the_template() -> None:
    content = '<think>need weather</think><tool_call>{"name": "w", "arguments": {}}</tool_call>'
    sample = convert({"conversations": chat(("human", "Q"), ("function_call", content), ("observation", "20"),
                                            ("gpt", "A"))})
    assert sample.prompt[1] == Message("function", content)


def test_sharegpt_ranking_row() -> None:
    row = {"conversations": chat(("human", "2+2?")), "chosen": {"from": "gpt", "value": "4"},
           "rejected": {"from": "gpt", "value": "5"}}
    sample = convert(row, SHAREGPT_RANKING, "dpo")
    assert pairs(sample.prompt) == [("user", "2+2?")]
    assert pairs(answers(sample)) == [("assistant", "4"), ("assistant", "5")]
    assert isinstance(sample, Pair)


@pytest.mark.parametrize(("row", "field", "problem"), [
    ({"conversations": chat(("human", "2+2?"), ("gpt", "4")), "chosen": {"from": "gpt", "value": "4"},
      "rejected": {"from": "gpt", "value": "5"}}, "conversations[1].from",
     "the conversation ends with a 'gpt' turn (message 1); a ranking row's conversation ends with the prompt, and "
     "the answers go in 'chosen' and 'rejected'"),
    ({"conversations": chat(("human", "2+2?")), "chosen": "4", "rejected": {"from": "gpt", "value": "5"}}, "chosen",
     "expected a message object like {\"from\": \"gpt\", \"value\": \"...\"}, got str '4'"),
    ({"conversations": chat(("human", "2+2?")), "chosen": {"from": "gpt", "value": "4"},
      "rejected": {"from": "human", "value": "5"}}, "rejected.from",
     "the rejected answer has role 'human'; it must be 'gpt' or 'function_call'"),
    ({"conversations": chat(("human", "2+2?")), "chosen": {"from": "gpt", "value": ""},
      "rejected": {"from": "gpt", "value": "5"}}, "chosen.value", "the chosen answer is empty"),
    ({"conversations": chat(("human", "2+2?")), "chosen": {"from": "gpt", "value": "4"}}, "rejected",
     "missing column 'rejected'"),
])
def test_bad_sharegpt_ranking_rows(row: dict[str, Any], field: str, problem: str) -> None:
    err = error(row, SHAREGPT_RANKING, "rm")
    assert (err.field, err.problem) == (field, problem)


def test_sharegpt_kto_row() -> None:
    row = {"conversations": chat(("human", "你好"), ("gpt", "滚开")), "label": False}
    sample = convert(row, SHAREGPT_KTO, "kto")
    assert (pairs(sample.prompt), pairs(answers(sample))) == ([("user", "你好")], [("assistant", "滚开")])
    assert (sample.desirable, type(sample)) == (False, Feedback)


WEATHER_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


def test_openai_tool_calls_and_merged_tool_results() -> None:
    calls = [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
             {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]
    row = {"messages": [{"role": "system", "content": "You are helpful."},
                        {"role": "user", "content": "Weather in Paris and Rome?"},
                        {"role": "assistant", "content": None, "tool_calls": calls},
                        {"role": "tool", "content": "18C"}, {"role": "tool", "content": "25C"},
                        {"role": "assistant", "content": "Paris 18C, Rome 25C."}], "tools": WEATHER_TOOLS}
    sample = convert(row, OPENAI)
    assert pairs(sample.prompt) == [
        ("user", "Weather in Paris and Rome?"),
        ("function", '[{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}, '
                     '{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}]'),
        ("observation", "18C\n</tool_response>\n<tool_response>\n25C")]
    assert pairs(answers(sample)) == [("assistant", "Paris 18C, Rome 25C.")]
    assert sample.system == "You are helpful.\n"  # LLaMA-Factory 0.9.5 adds "\n" when there are tools
    assert json.loads(sample.tools) == WEATHER_TOOLS


@pytest.mark.parametrize(("system", "expected"), [
    (None, "detailed thinking off"),
    ("Be brief.", "Be brief.\ndetailed thinking off"),
    ("detailed thinking on", "detailed thinking on"),
])
def test_openai_system_message_gets_llamafactorys_thinking_suffix(system: str | None, expected: str) -> None:
    head = [{"role": "system", "content": system}] if system is not None else []
    sample = convert({"messages": head + [{"role": "user", "content": "Hi"},
                                          {"role": "assistant", "content": "Hello"}]}, OPENAI)
    assert (sample.system, pairs(sample.messages)) == (expected, [("user", "Hi"), ("assistant", "Hello")])


def test_openai_tool_role_without_observation_tag_is_an_unknown_role() -> None:
    tags = Tags(role_tag="role", content_tag="content", user_tag="user", assistant_tag="assistant",
                observation_tag="observation", system_tag="system")
    spec = DatasetEntry(formatting="openai", columns=Columns(messages="messages"), tags=tags)
    row = {"messages": [{"role": "user", "content": "Q"}, {"role": "function_call", "content": WEATHER_CALL},
                        {"role": "tool", "content": "20"}, {"role": "assistant", "content": "A"}]}
    err = error(row, spec)
    assert (err.field, err.kind) == ("messages[2].role", "unknown role")


def test_openai_conversation_ending_in_tool_results_is_an_error() -> None:
    # LLaMA-Factory silently drops trailing tool results and trains on the call as the answer
    row = {"messages": [{"role": "user", "content": "Q"},
                        {"role": "assistant", "tool_calls": [{"function": {"name": "w", "arguments": "{}"}}]},
                        {"role": "tool", "content": "20"}]}
    err = error(row, OPENAI)
    assert err.problem == "the conversation ends with a 'tool' turn (message 2); it must end with the answer to learn"


def test_openai_bad_tool_calls() -> None:
    row = {"messages": [{"role": "user", "content": "Q"},
                        {"role": "assistant", "content": "", "tool_calls": [{"name": "w"}]}]}
    err = error(row, OPENAI)
    assert (err.field, err.problem) == ("messages[1].tool_calls[0]",
                                        "tool call 0 needs a 'function' object with 'name' and 'arguments'")


def test_openai_content_parts_are_not_text() -> None:
    row = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}]},
                        {"role": "assistant", "content": "A"}]}
    assert error(row, OPENAI).field == "messages[0].content"


def test_openai_ranking_row_with_trailing_tool_result() -> None:
    spec = DatasetEntry(formatting="openai", ranking=True, tags=OPENAI_TAGS,
                        columns=Columns(messages="messages", chosen="chosen", rejected="rejected"))
    row = {"messages": [{"role": "user", "content": "Weather?"},
                        {"role": "assistant", "tool_calls": [{"function": {"name": "w", "arguments": "{}"}}]},
                        {"role": "tool", "content": "20"}],
           "chosen": {"role": "assistant", "content": "It is 20 degrees."},
           "rejected": {"role": "assistant", "content": "No idea."}}
    sample = convert(row, spec, "rm")
    assert pairs(sample.prompt) == [("user", "Weather?"), ("function", '[{"name": "w", "arguments": "{}"}]'),
                                    ("observation", "20")]
    assert pairs(answers(sample)) == [("assistant", "It is 20 degrees."), ("assistant", "No idea.")]
    assert sample.system == "detailed thinking off"
