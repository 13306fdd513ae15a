"""`tunelab data preview`: one encoded example of any kind as text, the trained spans marked.

Supervised and text rows show their tokens with the trained spans marked; a pair shows its shared prompt once, then
the chosen and the rejected answer; a KTO row shows its tag, its example and its KL partner's answer; a prompt (ppo,
grpo) shows what the model generates from and the reference answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunelab.data.encode.cutoff import IGNORE_INDEX

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

EncodedRow = Mapping[str, "Sequence[int] | bool"]  # one row of a kind's dataset: its columns


@dataclass(frozen=True)
class Preview:
    """One example as the preview prints it: a title line and the text under it."""

    title: str
    text: str


def trained_spans(input_ids: list[int], labels: list[int]) -> list[tuple[bool, list[int]]]:
    """Runs of consecutive tokens that are (True) or are not (False) trained."""
    spans: list[tuple[bool, list[int]]] = []
    for token, label in zip(input_ids, labels):
        trained = label != IGNORE_INDEX
        if spans and spans[-1][0] == trained:
            spans[-1][1].append(token)
        else:
            spans.append((trained, [token]))
    return spans


def preview_text(tokenizer: PreTrainedTokenizerBase, input_ids: list[int], labels: list[int], markup: bool) -> str:
    """The decoded example; trained spans in green (markup) or between ⟦ ⟧."""
    from rich.markup import escape

    parts = []
    for trained, ids in trained_spans(input_ids, labels):
        text = tokenizer.decode(ids, skip_special_tokens=False)
        if markup:
            text = f"[bold green]{escape(text)}[/]" if trained else escape(text)
        elif trained:
            text = f"⟦{text}⟧"
        parts.append(text)
    return "".join(parts)


def plain(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], markup: bool) -> str:
    """Untrained tokens as text (escaped for rich markup)."""
    from rich.markup import escape

    text = tokenizer.decode(list(ids), skip_special_tokens=False)
    return escape(text) if markup else text


def heading(label: str, markup: bool) -> str:
    """A part's label inside an example ('chosen:', 'KL partner's answer:')."""
    return f"[bold]{label}[/]" if markup else label


def prompt_length(labels: Sequence[int]) -> int:
    """How many leading tokens are untrained: the prompt of a pair's side or of a KTO example."""
    for index, label in enumerate(labels):
        if label != IGNORE_INDEX:
            return index
    return len(labels)


def trained_count(labels: Sequence[int]) -> int:
    """Trained tokens of one labels column."""
    return sum(1 for label in labels if label != IGNORE_INDEX)


def answer_part(tokenizer: PreTrainedTokenizerBase, row: EncodedRow, prefix: str, markup: bool) -> str:
    """One side's answer after its prompt, trained spans marked."""
    ids, labels = list(row[f"{prefix}input_ids"]), list(row[f"{prefix}labels"])
    start = prompt_length(labels)
    return preview_text(tokenizer, ids[start:], labels[start:], markup)


def pair_preview(tokenizer: PreTrainedTokenizerBase, row: EncodedRow, number: int, markup: bool) -> Preview:
    """The shared prompt once, then the chosen and the rejected answer."""
    chosen, rejected = list(row["chosen_labels"]), list(row["rejected_labels"])
    shared = list(row["chosen_input_ids"])[:prompt_length(chosen)]
    title = (f"pair {number}: prompt {len(shared)} tokens, chosen {trained_count(chosen)} trained, rejected "
             f"{trained_count(rejected)} trained")
    text = "\n".join([heading("prompt:", markup), plain(tokenizer, shared, markup),
                      heading("chosen:", markup), answer_part(tokenizer, row, "chosen_", markup),
                      heading("rejected:", markup), answer_part(tokenizer, row, "rejected_", markup)])
    return Preview(title, text)


def feedback_preview(tokenizer: PreTrainedTokenizerBase, row: EncodedRow, number: int, markup: bool) -> Preview:
    """The example with its tag, then the answer of its KL partner (another example's answer to this prompt)."""
    tag = "desirable (kto_tag true)" if row["kto_tags"] else "undesirable (kto_tag false)"
    labels = list(row["labels"])
    title = f"example {number}: {tag}, {len(labels)} tokens, {trained_count(labels)} trained"
    text = "\n".join([preview_text(tokenizer, list(row["input_ids"]), labels, markup),
                      heading("KL partner's answer (scored for the KL estimate, not learned):", markup),
                      answer_part(tokenizer, row, "kl_", markup)])
    return Preview(title, text)


def prompt_preview(tokenizer: PreTrainedTokenizerBase, row: EncodedRow, number: int, markup: bool) -> Preview:
    """The prompt the model generates from, then the reference answer (labels) when the row has one."""
    ids, labels = list(row["input_ids"]), list(row["labels"])
    title = f"prompt {number}: {len(ids)} tokens, reference answer {len(labels)} tokens"
    text = "\n".join([plain(tokenizer, ids, markup), heading("reference answer:", markup),
                      plain(tokenizer, labels, markup)])
    return Preview(title, text)


def supervised_preview(tokenizer: PreTrainedTokenizerBase, row: EncodedRow, number: int, markup: bool) -> Preview:
    """The example (or packed row) with its trained spans."""
    ids, labels = list(row["input_ids"]), list(row["labels"])
    return Preview(f"example {number}: {len(ids)} tokens, {trained_count(labels)} trained",
                   preview_text(tokenizer, ids, labels, markup))


PREVIEWS = {"pair": pair_preview, "feedback": feedback_preview, "prompt": prompt_preview,
            "supervised": supervised_preview, "text": supervised_preview}


def preview_row(tokenizer: PreTrainedTokenizerBase, kind: str, row: EncodedRow, number: int,
                markup: bool) -> Preview:
    """One encoded row of a kind (data/kinds.py names) as the preview prints it."""
    return PREVIEWS[kind](tokenizer, row, number, markup)
