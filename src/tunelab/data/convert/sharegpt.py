"""ShareGPT rows (a list of role-tagged messages) -> examples, with LLaMA-Factory's turn rules enforced, not skipped.

The rules (LLaMA-Factory's SharegptDatasetConverter): an optional system message first; then turns alternate
between the user side (user or observation tags) at even positions and the assistant side (assistant or
function tags) at odd positions; sft and kto conversations end with the answer, ranking conversations end with
the prompt and put the answers in the chosen and rejected columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tunelab.data.convert.fields import (Common, Row, check_function_call, content_text, kto_flag, missing_column,
                                         text_field, tools_field)
from tunelab.data.errors import DataError
from tunelab.data.examples import Context, Example, Feedback, Message, Pair, PromptOnly, Role, Supervised
from tunelab.data.registry import DatasetEntry, Tags

USER_SIDE: tuple[Role, ...] = ("user", "observation")
ASSISTANT_SIDE: tuple[Role, ...] = ("assistant", "function")


@dataclass(frozen=True)
class Turn:
    """A message with where it came from: its index in the row's list (the system message counts)."""

    role: Role
    content: str
    index: int


def tag_roles(tags: Tags) -> dict[str, Role]:
    """The dataset's role tags -> our roles, in LLaMA-Factory's order (a later tag wins a clash)."""
    pairs = ((tags.user_tag, "user"), (tags.assistant_tag, "assistant"), (tags.observation_tag, "observation"),
             (tags.function_tag, "function"))
    return {tag: role for tag, role in pairs if tag is not None}


def role_tag_of(tags: Tags, role: Role) -> str:
    """How the dataset writes one of our roles."""
    names = {"user": tags.user_tag, "assistant": tags.assistant_tag, "observation": tags.observation_tag,
             "function": tags.function_tag}
    return str(names[role])


def message_list(row: Row, entry: DatasetEntry) -> list[object]:
    """The messages column, which must be a list."""
    column = entry.columns.messages
    if column is None:
        raise DataError("the entry maps no messages column", field="columns.messages",
                        fix='add "messages": "conversations" (your column) to the entry\'s columns',
                        kind="no messages column")
    value = row.get(column)
    if value is None:
        raise missing_column(column, row=row)
    if not isinstance(value, list):
        raise DataError(f"expected a list of messages, got {type(value).__name__} {value!r:.60}", field=column,
                        fix="write the conversation as a list of message objects", kind="messages is not a list")
    return value


def message_at(messages: list[object], index: int, entry: DatasetEntry) -> tuple[dict[str, object], object]:
    """Message index and its role value, which must be present."""
    column, role_tag = entry.columns.messages, entry.tags.role_tag
    message = messages[index]
    if not isinstance(message, dict):
        raise DataError(f"message {index} is a {type(message).__name__}, not an object", field=f"{column}[{index}]",
                        fix=f'write each message as {{"{role_tag}": ..., "{entry.tags.content_tag}": ...}}',
                        kind="message is not an object")
    if message.get(role_tag) is None:
        raise DataError(f"message {index} has no {role_tag!r} key", field=f"{column}[{index}]",
                        fix="set the entry's tags.role_tag (and content_tag) to the keys your messages use",
                        kind="message without a role")
    return message, message[role_tag]


def leading_system(messages: list[object], row: Row, entry: DatasetEntry) -> tuple[str, int]:
    """(system prompt, index of the first turn): a first system message wins over the system column."""
    tags, column = entry.tags, entry.columns.messages
    if tags.system_tag and messages and isinstance(messages[0], dict) and \
            messages[0].get(tags.role_tag) == tags.system_tag:
        return content_text(messages[0].get(tags.content_tag), f"{column}[0].{tags.content_tag}"), 1
    return text_field(row, entry.columns.system), 0


def mapped_role(role: object, index: int, entry: DatasetEntry) -> Role:
    """Our role for a message's role tag; system messages after the first and unknown tags are errors."""
    tags, field = entry.tags, f"{entry.columns.messages}[{index}].{entry.tags.role_tag}"
    roles = tag_roles(tags)
    if isinstance(role, str) and role in roles:
        return roles[role]
    if tags.system_tag is not None and role == tags.system_tag:
        raise DataError(f"message {index} is a {role!r} message; only the first message may be the system prompt",
                        field=field, fix="move it to the start or merge it into the first system message",
                        kind="system message not first")
    known = ", ".join(repr(t) for t in [*roles, tags.system_tag] if t is not None)
    raise DataError(f"message {index} has unknown role {role!r:.40}; the entry's tags know {known}", field=field,
                    fix="correct the role, or set the entry's tags (user_tag, assistant_tag, observation_tag, "
                        "function_tag, system_tag) to the names your data uses", kind="unknown role")


def check_order(turns: list[Turn], entry: DatasetEntry) -> None:
    """User-side turns at even positions, assistant-side turns at odd ones (LLaMA-Factory's accept_tags)."""
    tags, column, role_tag = entry.tags, entry.columns.messages, entry.tags.role_tag
    for position, turn in enumerate(turns):
        expected = USER_SIDE if position % 2 == 0 else ASSISTANT_SIDE
        if turn.role in expected:
            continue
        want = " or ".join(repr(role_tag_of(tags, role)) for role in expected)
        if position == 0:
            problem = f"the conversation starts with a {role_tag_of(tags, turn.role)!r} turn; it must start with {want}"
            fix = "add the user's turn before it, or remove it"
        else:
            before = turns[position - 1]
            problem = (f"two {'user' if turn.role in USER_SIDE else 'assistant'}-side turns in a row "
                       f"({role_tag_of(tags, before.role)!r} at message {before.index}, then "
                       f"{role_tag_of(tags, turn.role)!r}); message {turn.index} must be {want}")
            fix = "merge them, or remove one"
        raise DataError(problem, field=f"{column}[{turn.index}].{role_tag}", fix=fix, kind="wrong role order")


def check_ending(turns: list[Turn], entry: DatasetEntry, ranking: bool) -> None:
    """sft/kto conversations end with the answer; ranking ones with the prompt (LLaMA-Factory's message count)."""
    tags, column = entry.tags, entry.columns.messages
    if not turns:
        raise DataError("the conversation has no turns", field=column, fix="remove the row",
                        kind="empty conversation")
    last = turns[-1]
    field, last_tag = f"{column}[{last.index}].{tags.role_tag}", role_tag_of(tags, last.role)
    if not ranking and last.role in USER_SIDE:
        raise DataError(f"the conversation ends with a {last_tag!r} turn (message {last.index}); it must end with "
                        f"the answer to learn", field=field, fix="add the assistant's answer, or remove the last turn",
                        kind="conversation does not end with an answer")
    if ranking and last.role in ASSISTANT_SIDE:
        raise DataError(f"the conversation ends with a {last_tag!r} turn (message {last.index}); a ranking row's "
                        f"conversation ends with the prompt, and the answers go in {entry.columns.chosen!r} and "
                        f"{entry.columns.rejected!r}", field=field, fix="remove the last answer from the conversation",
                        kind="ranking conversation ends with an answer")


def check_contents(turns: list[Turn], entry: DatasetEntry) -> None:
    """No empty user or assistant turns; function calls hold JSON calls."""
    tags, column = entry.tags, entry.columns.messages
    for turn in turns:
        field = f"{column}[{turn.index}].{tags.content_tag}"
        if turn.role != "observation" and not turn.content.strip():
            raise DataError(f"message {turn.index} ({role_tag_of(tags, turn.role)!r}) is empty", field=field,
                            fix="write the turn's text, or remove the row", kind="empty message")
        if turn.role == "function":
            check_function_call(turn.content, field)


def ranking_answer(row: Row, entry: DatasetEntry, name: str) -> Message:
    """The chosen or rejected column: one assistant (or function) message object."""
    tags, column = entry.tags, getattr(entry.columns, name)
    shape = f'{{"{tags.role_tag}": "{tags.assistant_tag}", "{tags.content_tag}": "..."}}'
    if column is None:
        raise DataError(f"a ranking entry needs a {name} column", field=f"columns.{name}",
                        fix=f'add "{name}": "your_column" to the entry\'s columns', kind=f"no {name} column")
    value = row.get(column)
    if value is None:
        raise missing_column(column, row=row)
    if not isinstance(value, dict):
        raise DataError(f"expected a message object like {shape}, got {type(value).__name__} {value!r:.60}",
                        field=column, fix=f"write the {name} answer as {shape}", kind=f"{name} is not a message")
    role = value.get(tags.role_tag)
    allowed = {tag: tag_roles(tags)[tag] for tag in (tags.assistant_tag, tags.function_tag) if tag is not None}
    if role not in allowed:
        raise DataError(f"the {name} answer has role {role!r:.40}; it must be "
                        f"{' or '.join(repr(t) for t in allowed)}", field=f"{column}.{tags.role_tag}",
                        fix=f"write the {name} answer as {shape}", kind=f"wrong role in {name}")
    field = f"{column}.{tags.content_tag}"
    content = content_text(value.get(tags.content_tag), field)
    if not content.strip():
        raise DataError(f"the {name} answer is empty", field=field, fix="write the answer, or remove the row",
                        kind=f"the {name} answer is empty")
    if allowed[role] == "function":
        check_function_call(content, field)
    return Message(allowed[role], content)


Messages = tuple[Message, ...]


def supervised(row: Row, entry: DatasetEntry, messages: Messages, common: Common) -> Supervised:
    """The conversation up to its last turn, which is the response."""
    return Supervised(prompt=messages[:-1], response=messages[-1], **common)


def pair(row: Row, entry: DatasetEntry, messages: Messages, common: Common) -> Pair:
    """The conversation as the prompt, with the chosen and rejected columns."""
    chosen, rejected = ranking_answer(row, entry, "chosen"), ranking_answer(row, entry, "rejected")
    return Pair(prompt=messages, chosen=chosen, rejected=rejected, **common)


def feedback(row: Row, entry: DatasetEntry, messages: Messages, common: Common) -> Feedback:
    """The last turn as the response, tagged by kto_tag."""
    flag = kto_flag(row, entry.columns.kto_tag)
    return Feedback(prompt=messages[:-1], response=messages[-1], desirable=flag, **common)


def prompt_only(row: Row, entry: DatasetEntry, messages: Messages, common: Common) -> PromptOnly:
    """The conversation up to its last turn, which is the reference answer (LLaMA-Factory's unsupervised rows)."""
    return PromptOnly(prompt=messages[:-1], answer=messages[-1], **common)


BUILDERS: dict[type[Context], Callable[[Row, DatasetEntry, Messages, Common], Example]] = {
    Supervised: supervised, Pair: pair, Feedback: feedback, PromptOnly: prompt_only}


def finish(turns: list[Turn], row: Row, entry: DatasetEntry, example: type[Example],
           common: Common) -> Example:
    """An example from aligned turns, checked for order, ending and contents (shared with the openai converter)."""
    ranking = example is Pair
    check_order(turns, entry)
    check_ending(turns, entry, ranking)
    last = turns[-1]
    if not ranking and not last.content.strip():
        raise DataError("the response is empty",
                        field=f"{entry.columns.messages}[{last.index}].{entry.tags.content_tag}",
                        fix="write the answer the model should learn, or remove the row", kind="the response is empty")
    check_contents(turns, entry)
    messages = tuple(Message(turn.role, turn.content) for turn in turns)
    return BUILDERS[example](row, entry, messages, common)


def convert(row: Row, entry: DatasetEntry, dataset: str, index: int, example: type[Example]) -> Example:
    """One sharegpt row -> an example of the given kind (supervised, pair, feedback or prompt-only); no media."""
    messages = message_list(row, entry)
    system, start = leading_system(messages, row, entry)
    turns = []
    for position in range(start, len(messages)):
        message, role = message_at(messages, position, entry)
        content_field = f"{entry.columns.messages}[{position}].{entry.tags.content_tag}"
        turns.append(Turn(mapped_role(role, position, entry), content_text(message.get(entry.tags.content_tag),
                                                                             content_field), position))
    tools = tools_field(row, entry.columns.tools)
    common: Common = {"dataset": dataset, "row": index, "system": system, "tools": tools}
    return finish(turns, row, entry, example, common)
