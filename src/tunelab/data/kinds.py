"""Which example kind each training stage reads, and what each kind brings: its example type, the columns it
stores, how a list of examples becomes a dataset, how it packs and how it is batched.

The data layer looks a stage up here once; nothing below branches on stage names, so a new stage is one line in
STAGE_KINDS and a new shape of example is one Kind (its example type in examples.py, its encoder in encode/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Union

from tunelab.config.schema import DataSection
from tunelab.data import collate
from tunelab.data.bundle import Packing
from tunelab.data.dataset import chunked_dataset, feedback_dataset, supervised_dataset, text_dataset
from tunelab.data.encode import feedback, pair, prompt, supervised, text
from tunelab.data.examples import Example, Feedback, Pair, PromptOnly, Supervised, TextExample
from tunelab.data.report import DataReport
from tunelab.data.tokenizer import Tokenizer
from tunelab.runtime.suggest import suggest

if TYPE_CHECKING:
    from datasets import Dataset

DatasetBuilder = Callable[[Sequence[Example], Tokenizer, DataSection, DataReport, str], "Dataset"]
Collator = Union[collate.PadCollator, collate.PairCollator, collate.FeedbackCollator, collate.PromptCollator]


@dataclass(frozen=True)
class Kind:
    """One shape of training example and everything the data layer does with it."""

    name: str
    example: type[Example]
    columns: tuple[str, ...]  # the tokenized columns it stores (flags last)
    build: DatasetBuilder  # examples -> datasets.Dataset of the columns, counts into the report
    packing: Callable[[DataSection], Packing]
    collator: Callable[[int], Collator]  # pad token id -> the padding collator of the kind


def no_packing(data: DataSection) -> Packing:
    """Kinds that are never packed."""
    return "none"


def text_packing(data: DataSection) -> Packing:
    """Pre-training text is packed into blocks that attend across texts (LLaMA-Factory's pt)."""
    return "plain"


def supervised_packing(data: DataSection) -> Packing:
    """`neat_packing` keeps packed examples apart, `packing` lets them attend to each other, else none."""
    return "neat" if data.neat_packing else "plain" if data.packing else "none"


TEXT = Kind("text", TextExample, text.COLUMNS, text_dataset, text_packing, collate.PadCollator)
SUPERVISED = Kind("supervised", Supervised, supervised.COLUMNS, supervised_dataset, supervised_packing,
                  collate.PadCollator)
PAIR = Kind("pair", Pair, pair.COLUMNS, partial(chunked_dataset, pair.encode_chunk, pair.COLUMNS, ()), no_packing,
            collate.PairCollator)
FEEDBACK = Kind("feedback", Feedback, feedback.COLUMNS + feedback.FLAGS, feedback_dataset, no_packing,
                collate.FeedbackCollator)
PROMPT = Kind("prompt", PromptOnly, prompt.COLUMNS, partial(chunked_dataset, prompt.encode_chunk, prompt.COLUMNS, ()),
              no_packing, collate.PromptCollator)

STAGE_KINDS: dict[str, Kind] = {
    "pt": TEXT,
    "sft": SUPERVISED,
    "rm": PAIR,
    "dpo": PAIR,
    "kto": FEEDBACK,
    "ppo": PROMPT,
    "grpo": PROMPT,
}


def kind_of(stage: str) -> Kind:
    """The example kind a stage trains on; an unknown stage is an error that lists the known ones."""
    kind = STAGE_KINDS.get(stage)
    if kind is None:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGE_KINDS)}"
                         f"{suggest(stage, STAGE_KINDS)}")
    return kind


def stages_of(example: type[Example]) -> list[str]:
    """The stages that train on one example type (for messages: 'rm or dpo')."""
    return [stage for stage, kind in STAGE_KINDS.items() if kind.example is example]
