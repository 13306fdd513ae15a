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
from tunelab.data.examples import Example, Feedback, Pair, PromptOnly, Supervised, TextExample
from tunelab.data.kinds import kind_of, stages_of
from tunelab.data.read import BadRow
from tunelab.data.registry import DatasetEntry

__all__ = ["check_entry", "convert_row", "unmapped_columns_note"]

Converter = Callable[[Row, DatasetEntry, str, int, type[Example]], Example]
CONVERTERS: dict[str, Converter] = {"alpaca": alpaca.convert, "sharegpt": sharegpt.convert, "openai": openai.convert}


def check_kind(entry: DatasetEntry, stage: str, example: type[Example]) -> None:
    """Ranking entries only for the pair stages (rm, dpo) and only they (LLaMA-Factory's 'not applicable' check);
    kto_tag only for the feedback stage (kto)."""
    wants_ranking = example is Pair
    pair_stages = " or ".join(stages_of(Pair))
    kto_stages = " or ".join(stages_of(Feedback))
    if wants_ranking and not entry.ranking:
        raise DataError(f"stage {stage} needs a ranking dataset (a chosen and a rejected answer per row)",
                        field="ranking", fix='set "ranking": true and map the chosen and rejected columns in the '
                                            "entry, or use a ranking dataset", kind="not a ranking dataset")
    if entry.ranking and not wants_ranking:
        raise DataError(f"this is a ranking dataset (ranking: true); stage {stage} cannot use it", field="ranking",
                        fix=f"use it with stage {pair_stages}, or pick a dataset without ranking",
                        kind="ranking dataset")
    if entry.columns.kto_tag is not None and example is not Feedback:
        harm = "would take its undesirable answers as references" if example is PromptOnly else \
            "would learn its undesirable answers too"
        raise DataError(f"the entry maps kto_tag, so it is a KTO dataset; stage {stage} {harm}",
                        field="columns.kto_tag", fix=f"use it with stage {kto_stages}, or remove kto_tag from the "
                                                     "entry's columns", kind="kto dataset")


def check_ranking_fields(entry: DatasetEntry, stage: str, first_row: Row) -> None:
    """Rows holding chosen and rejected answers in an entry without ranking: true are preference data that a
    one-answer stage cannot read (LLaMA-Factory would report a missing column or train on nothing)."""
    columns = entry.columns
    names = (columns.chosen or "chosen", columns.rejected or "rejected")
    if entry.ranking or not all(name in first_row for name in names):
        return
    if columns.response is not None and first_row.get(columns.response) is not None:
        return
    pair_stages = " or ".join(stages_of(Pair))
    raise DataError(f"the rows hold {names[0]!r} and {names[1]!r} answers: a preference dataset, but its entry has "
                    f"no ranking: true, and stage {stage} trains on one answer per row", field="ranking",
                    fix=f'set "ranking": true in the entry and train it with stage {pair_stages}, or use a dataset '
                        "with one answer per row", kind="preference rows without ranking: true")


def check_entry(entry: DatasetEntry, stage: str, first_row: Row | None) -> None:
    """Whether a dataset suits a stage at all, checked once per dataset: a mismatch is never a bad row to skip."""
    example = kind_of(stage).example
    check_kind(entry, stage, example)
    check_text_corpus(entry, stage, example)
    if example is Feedback and entry.columns.kto_tag is None:
        raise DataError(f"stage {stage} needs a KTO dataset: a kto_tag column (true for a desirable answer, false "
                        "for an undesirable one)", field="columns.kto_tag",
                        fix='add "kto_tag": "label" (your column) to the entry\'s columns, or use a KTO dataset',
                        kind="no kto_tag column")
    if first_row is not None and example in (TextExample, Supervised, Feedback):  # prompts need no answer
        check_ranking_fields(entry, stage, first_row)


def check_pair(pair: Pair, entry: DatasetEntry) -> None:
    """A pair whose two answers are the same teaches nothing (its preference margin is zero by construction)."""
    if pair.chosen != pair.rejected:
        return
    columns = entry.columns
    raise DataError(f"the chosen and rejected answers are identical ({pair.chosen.content!r:.60})",
                    field=f"{columns.chosen or 'chosen'}/{columns.rejected or 'rejected'}",
                    fix="write a worse rejected answer, or remove the row", kind="chosen and rejected are identical")


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
    if isinstance(row, BadRow):  # the reader could not read it whole: refused (or skipped and counted) like any row
        raise row.error
    example = kind_of(stage).example
    check_entry(entry, stage, None)
    if example is TextExample:  # plain text has no turns, template or media: no format converter applies
        return text_example(row, entry, dataset, index, stage, drop_media)
    converted = CONVERTERS[entry.formatting](row, entry, dataset, index, example)
    if isinstance(converted, Pair):
        check_pair(converted, entry)
    if drop_media:
        return without_media(converted, entry.columns)
    return with_media(converted, row, entry.columns, media_dir)
