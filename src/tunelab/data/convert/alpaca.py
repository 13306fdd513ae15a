"""Alpaca rows (instruction, input, output, system, history, tools, chosen/rejected, kto_tag) -> examples, strictly."""

from __future__ import annotations

from collections.abc import Callable

from tunelab.data.convert.fields import Common, Row, kto_flag, missing_column, text_field, tools_field
from tunelab.data.errors import DataError
from tunelab.data.examples import Context, Example, Feedback, Message, Pair, PromptOnly, Supervised
from tunelab.data.registry import Columns, DatasetEntry
from tunelab.runtime.suggest import suggest

__all__ = ["convert", "convert_row", "pretrain_text", "text_field", "unmapped_columns_note"]


def history_turns(row: Row, column: str | None) -> list[Message]:
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
        if not (pair[0].strip() and pair[1].strip()):
            raise DataError(f"item {index} has an empty {'prompt' if not pair[0].strip() else 'response'}",
                            field=f"{column}[{index}]", fix="complete the pair or remove it", kind="empty message")
        turns += [Message("user", pair[0]), Message("assistant", pair[1])]
    return turns


def query_text(row: Row, columns: Columns) -> str:
    """The last user turn: 'instruction\\ninput', either part left out when empty (LLaMA-Factory's join)."""
    query = [t for t in (text_field(row, columns.prompt), text_field(row, columns.query)) if t]
    if not query:
        if columns.prompt is not None and columns.prompt not in row and suggest(columns.prompt, row):
            raise missing_column(columns.prompt, row=row)
        raise DataError(f"the prompt is empty ({columns.prompt!r} and {columns.query!r} are both empty)",
                        field=columns.prompt, fix="give the row an instruction", kind="the prompt is empty")
    return "\n".join(query)


def answer(row: Row, column: str | None, name: str = "response") -> Message:
    """A required, non-empty answer column as the assistant's message."""
    if column is None:
        raise DataError(f"the entry maps no {name} column", field=f"columns.{name}",
                        fix=f'add "{name}": "your_column" to the entry\'s columns', kind=f"no {name} column")
    text = text_field(row, column, required=True)
    if not text.strip():
        raise DataError(f"the {name} is empty", field=column,
                        fix="write the answer the model should learn, or remove the row", kind=f"the {name} is empty")
    return Message("assistant", text)


Prompt = tuple[Message, ...]


def supervised(row: Row, columns: Columns, prompt: Prompt, common: Common) -> Supervised:
    """The prompt and the response column."""
    return Supervised(prompt=prompt, response=answer(row, columns.response), **common)


def pair(row: Row, columns: Columns, prompt: Prompt, common: Common) -> Pair:
    """The prompt and the chosen and rejected columns."""
    chosen, rejected = answer(row, columns.chosen, "chosen"), answer(row, columns.rejected, "rejected")
    return Pair(prompt=prompt, chosen=chosen, rejected=rejected, **common)


def feedback(row: Row, columns: Columns, prompt: Prompt, common: Common) -> Feedback:
    """The prompt, the response and its kto_tag."""
    flag = kto_flag(row, columns.kto_tag)
    return Feedback(prompt=prompt, response=answer(row, columns.response), desirable=flag, **common)


def prompt_only(row: Row, columns: Columns, prompt: Prompt, common: Common) -> PromptOnly:
    """The prompt, and the response column as the reference answer when the row has one."""
    reference = text_field(row, columns.response)
    return PromptOnly(prompt=prompt, answer=Message("assistant", reference) if reference.strip() else None, **common)


BUILDERS: dict[type[Context], Callable[[Row, Columns, Prompt, Common], Example]] = {
    Supervised: supervised, Pair: pair, Feedback: feedback, PromptOnly: prompt_only}


def convert(row: Row, entry: DatasetEntry, dataset: str, index: int, example: type[Example]) -> Example:
    """One alpaca row -> an example of the given kind (supervised, pair, feedback or prompt-only); no media."""
    columns = entry.columns
    prompt = tuple(history_turns(row, columns.history)) + (Message("user", query_text(row, columns)),)
    common: Common = {"dataset": dataset, "row": index, "system": text_field(row, columns.system),
              "tools": tools_field(row, columns.tools)}
    return BUILDERS[example](row, columns, prompt, common)


def pretrain_text(row: Row, columns: Columns) -> str:
    """The text of a pre-training row: the prompt column (LLaMA-Factory maps {"prompt": "text"}), plus query if set."""
    fix = 'map the text column in the entry: "columns": {"prompt": "text"}'
    if columns.prompt is None:
        raise DataError("the entry maps no prompt column to read the text from", field="columns.prompt", fix=fix,
                        kind="no text column")
    if row.get(columns.prompt) is None and not text_field(row, columns.query):
        raise missing_column(columns.prompt, fix, row)
    if columns.history is not None and row.get(columns.history):
        raise DataError("pre-training reads one text per row; history is not used", field=columns.history,
                        fix="remove history from the entry's columns, or use stage sft", kind="history in stage pt")
    parts = [t for t in (text_field(row, columns.prompt), text_field(row, columns.query)) if t]
    text = "\n".join(parts)
    if not text.strip():
        raise DataError("the text is empty", field=columns.prompt, fix="remove the row", kind="the text is empty")
    return text


def convert_row(row: Row, columns: Columns, dataset: str, index: int) -> Supervised:
    """One alpaca row -> a supervised example from columns alone (the older entry point; see convert for every
    kind)."""
    return convert(row, DatasetEntry(columns=columns), dataset, index, Supervised)


def unmapped_columns_note(rows: list[Row], columns: Columns) -> str | None:
    """A note when rows carry 'system' or 'history' fields that the registry entry does not map."""
    unused = [name for name in ("system", "history")
              if getattr(columns, name) is None and any(row.get(name) for row in rows[:1000])]
    if not unused:
        return None
    mapping = ", ".join(f'"{name}": "{name}"' for name in unused)
    return (f"rows have {' and '.join(unused)} fields that dataset_info.json does not map, so they are not used "
            f"(as in LLaMA-Factory); to use them add to the entry's columns: {{{mapping}}}")
