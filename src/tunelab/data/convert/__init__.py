"""Rows of any LLaMA-Factory dataset format (alpaca, sharegpt, openai) -> examples of one training stage's kind.

`convert_row` is the one entry point: it checks that the entry suits the stage, converts the row with its
format's converter, attaches the media files and checks them against the placeholders. Every problem is a
DataError naming the field; the pipeline adds the dataset, file and row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tunelab.data.convert import alpaca, openai, sharegpt
from tunelab.data.convert.alpaca import unmapped_columns_note
from tunelab.data.convert.fields import Row
from tunelab.data.convert.media import MEDIA_KINDS, with_media, without_media
from tunelab.data.errors import DataError
from tunelab.data.examples import Example, Feedback, Pair, Supervised, TextExample
from tunelab.data.kinds import kind_of, stages_of
from tunelab.data.registry import DatasetEntry

__all__ = ["convert_row", "unmapped_columns_note"]

Converter = Callable[[Row, DatasetEntry, str, int, type[Example]], Example]
CONVERTERS: dict[str, Converter] = {"alpaca": alpaca.convert, "sharegpt": sharegpt.convert, "openai": openai.convert}


def check_kind(entry: DatasetEntry, stage: str, example: type[Example]) -> None:
    """Ranking entries only for the pair stages (rm, dpo) and only they (LLaMA-Factory's 'not applicable' check);
    kto_tag only for the feedback stage (kto)."""
    wants_ranking = example is Pair
    pair_stages = " or ".join(stages_of(Pair))
    if wants_ranking and not entry.ranking:
        raise DataError(f"stage {stage} needs a ranking dataset (a chosen and a rejected answer per row)",
                        field="ranking", fix='set "ranking": true and map the chosen and rejected columns in the '
                                            "entry, or use a ranking dataset", kind="not a ranking dataset")
    if entry.ranking and not wants_ranking:
        raise DataError(f"this is a ranking dataset (ranking: true); stage {stage} cannot use it", field="ranking",
                        fix=f"use it with stage {pair_stages}, or pick a dataset without ranking",
                        kind="ranking dataset")
    if entry.columns.kto_tag is not None and example is not Feedback:
        raise DataError(f"the entry maps kto_tag, so it is a KTO dataset; stage {stage} would learn its undesirable "
                        "answers too", field="columns.kto_tag",
                        fix=f"use it with stage {' or '.join(stages_of(Feedback))}, or remove kto_tag from the "
                            "entry's columns", kind="kto dataset")


def check_text_corpus(entry: DatasetEntry, stage: str, example: type[Example]) -> None:
    """An alpaca entry that maps a text column and no response is a pre-training corpus: the stages that learn a
    response cannot use it, and the error says which stage can."""
    columns = entry.columns
    if example not in (Supervised, Feedback) or entry.formatting != "alpaca" or columns.response is not None:
        return
    if columns.prompt is None or columns.history is not None:
        return
    text_stages = " or ".join(stages_of(TextExample))
    raise DataError(f"the entry maps no response column, only the text column {columns.prompt!r}: a text corpus, "
                    f"but stage {stage} learns answers to prompts", field="columns.response",
                    fix=f"to pre-train on the text use stage: {text_stages}; to fine-tune, map the answers: "
                        '"response": "your_column" in the entry\'s columns', kind="no response column")


def text_example(row: Row, entry: DatasetEntry, dataset: str, index: int, stage: str,
                 drop_media: bool = False) -> TextExample:
    """Pre-training text; media are not used in pre-training (dropped with their placeholders with drop_media)."""
    if entry.formatting != "alpaca":
        raise DataError(f"stage {stage} reads plain text, but the entry has formatting {entry.formatting!r}",
                        field="formatting",
                        fix='register the text with the default formatting and "columns": {"prompt": "text"}',
                        kind=f"stage {stage} needs plain text")
    for kind in MEDIA_KINDS:
        column = getattr(entry.columns, kind)
        if column is not None and row.get(column) and not drop_media:
            raise DataError(f"stage {stage} trains on text only; the row has {kind}", field=column,
                            fix=f"set drop_media: true to train on the text alone, or remove {kind} from the "
                                "entry's columns", kind=f"{kind} in stage {stage}")
    example = TextExample(text=alpaca.pretrain_text(row, entry.columns), dataset=dataset, row=index)
    return without_media(example, entry.columns) if drop_media else example


def convert_row(row: Row, entry: DatasetEntry, dataset: str, index: int, media_dir: Path | None,
                stage: str, drop_media: bool = False) -> Example:
    """One row of any format -> the example kind the stage trains on (data/kinds.py), strictly checked (DataError
    names the field and the fix); drop_media leaves the row's media and their placeholders out."""
    example = kind_of(stage).example
    check_kind(entry, stage, example)
    check_text_corpus(entry, stage, example)
    if example is TextExample:  # plain text has no turns, template or media: no format converter applies
        return text_example(row, entry, dataset, index, stage, drop_media)
    converted = CONVERTERS[entry.formatting](row, entry, dataset, index, example)
    if drop_media:
        return without_media(converted, entry.columns)
    return with_media(converted, row, entry.columns, media_dir)
