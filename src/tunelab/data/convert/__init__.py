"""Rows of any LLaMA-Factory dataset format (alpaca, sharegpt, openai) -> Samples for one training stage.

`convert_row` is the one entry point: it checks that the entry suits the stage, converts the row with its
format's converter, attaches the media files and checks them against the placeholders. Every problem is a
DataError naming the field; the pipeline adds the dataset, file and row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunelab.data.convert import alpaca, openai, sharegpt
from tunelab.data.convert.alpaca import unmapped_columns_note
from tunelab.data.convert.media import MEDIA_KINDS, with_media
from tunelab.data.errors import DataError
from tunelab.data.records import Message, Sample
from tunelab.data.registry import DatasetEntry

__all__ = ["STAGES", "convert_row", "unmapped_columns_note"]

STAGES = ("pt", "sft", "rm", "dpo", "kto")
CONVERTERS: dict[str, Callable[[dict[str, Any], DatasetEntry, str, int, str], Sample]] = {
    "alpaca": alpaca.convert, "sharegpt": sharegpt.convert, "openai": openai.convert}


def check_stage(entry: DatasetEntry, stage: str) -> None:
    """Ranking entries only for rm/dpo and only they (LLaMA-Factory's 'not applicable' check); kto_tag only for kto."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    wants_ranking = stage in ("rm", "dpo")
    if wants_ranking and not entry.ranking:
        raise DataError(f"stage {stage} needs a ranking dataset (a chosen and a rejected answer per row)",
                        field="ranking", fix='set "ranking": true and map the chosen and rejected columns in the '
                                            "entry, or use a ranking dataset", kind="not a ranking dataset")
    if entry.ranking and not wants_ranking:
        raise DataError(f"this is a ranking dataset (ranking: true); stage {stage} cannot use it", field="ranking",
                        fix="use it with stage rm or dpo, or pick a dataset without ranking", kind="ranking dataset")
    if entry.columns.kto_tag is not None and stage != "kto":
        raise DataError(f"the entry maps kto_tag, so it is a KTO dataset; stage {stage} would learn its undesirable "
                        "answers too", field="columns.kto_tag",
                        fix="use it with stage kto, or remove kto_tag from the entry's columns", kind="kto dataset")


def pretrain_sample(row: dict[str, Any], entry: DatasetEntry, dataset: str, index: int) -> Sample:
    """A pre-training Sample: the text as prompt[0], no response; media are not used in pre-training."""
    if entry.formatting != "alpaca":
        raise DataError(f"stage pt reads plain text, but the entry has formatting {entry.formatting!r}",
                        field="formatting",
                        fix='register the text with the default formatting and "columns": {"prompt": "text"}',
                        kind="stage pt needs plain text")
    for kind in MEDIA_KINDS:
        column = getattr(entry.columns, kind)
        if column is not None and row.get(column):
            raise DataError(f"stage pt trains on text only; the row has {kind}", field=column,
                            fix=f"remove {kind} from the entry's columns, or use stage sft", kind=f"{kind} in stage pt")
    text = alpaca.pretrain_text(row, entry.columns)
    return Sample(prompt=(Message("user", text),), response=(), dataset=dataset, row=index, kind="pt")


def convert_row(row: dict[str, Any], entry: DatasetEntry, dataset: str, index: int, media_dir: Path | None,
                stage: str) -> Sample:
    """One row of any format -> the Sample stage needs, strictly checked (DataError names the field and the fix)."""
    check_stage(entry, stage)
    if stage == "pt":
        return pretrain_sample(row, entry, dataset, index)
    sample = CONVERTERS[entry.formatting](row, entry, dataset, index, stage)
    return with_media(sample, row, entry.columns, media_dir)
