"""Alpaca rows (instruction, input, output, system, history) -> ChatRecords, strictly checked."""

from __future__ import annotations

from typing import Any

from tunelab.data.errors import DataError
from tunelab.data.records import Message, Sample
from tunelab.data.registry import Columns


def text_field(row: dict[str, Any], column: str | None, required: bool = False) -> str:
    """A string cell; None or missing gives '' unless required; other types are errors."""
    if column is None:
        return ""
    value = row.get(column)
    if value is None:
        if required:
            raise DataError(f"missing column {column!r}", field=column,
                            fix=f"add a {column!r} value to the row, or map the right column in dataset_info.json")
        return ""
    if not isinstance(value, str):
        raise DataError(f"expected text, got {type(value).__name__} {value!r:.60}", field=column,
                        fix="make the value a string", kind=f"expected text, got {type(value).__name__}")
    return value


def history_turns(row: dict[str, Any], column: str | None) -> list[Message]:
    """Earlier [prompt, response] pairs as messages."""
    if column is None or row.get(column) is None:
        return []
    history = row[column]
    if not isinstance(history, list):
        raise DataError(f"expected a list of [prompt, response] pairs, got {type(history).__name__}", field=column)
    turns = []
    for index, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise DataError(f"item {index} is not a [prompt, response] pair of strings", field=f"{column}[{index}]",
                            fix='write it as ["question", "answer"]', kind="not a [prompt, response] pair")
        turns += [Message("user", pair[0]), Message("assistant", pair[1])]
    return turns


def convert_row(row: dict[str, Any], columns: Columns, dataset: str, index: int) -> Sample:
    """One alpaca row -> Sample ('instruction\\ninput' as the user turn, LLaMA-Factory's join)."""
    query = [t for t in (text_field(row, columns.prompt), text_field(row, columns.query)) if t]
    if not query:
        raise DataError(f"the prompt is empty ({columns.prompt!r} and {columns.query!r} are both empty)",
                        field=columns.prompt, fix="give the row an instruction")
    response = text_field(row, columns.response, required=True)
    if not response.strip():
        raise DataError("the response is empty", field=columns.response,
                        fix="write the answer the model should learn, or remove the row")
    prompt = history_turns(row, columns.history) + [Message("user", "\n".join(query))]
    return Sample(prompt=tuple(prompt), response=(Message("assistant", response),), dataset=dataset, row=index,
                  system=text_field(row, columns.system))


def unmapped_columns_note(rows: list[dict[str, Any]], columns: Columns) -> str | None:
    """A note when rows carry 'system' or 'history' fields that the registry entry does not map."""
    unused = [name for name in ("system", "history")
              if getattr(columns, name) is None and any(row.get(name) for row in rows[:1000])]
    if not unused:
        return None
    mapping = ", ".join(f'"{name}": "{name}"' for name in unused)
    return (f"rows have {' and '.join(unused)} fields that dataset_info.json does not map, so they are not used "
            f"(as in LLaMA-Factory); to use them add to the entry's columns: {{{mapping}}}")
