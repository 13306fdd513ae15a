"""Image, video and audio columns: paths resolved as LLaMA-Factory does, files checked, placeholders counted; or,
with `drop_media: true`, the media and their placeholders removed so the text alone is trained.

tunelab trains on text only: a row that carries media is refused before training (`refuse_media`) unless the
user drops the media, since its placeholders would otherwise be trained as plain text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from tunelab.data.convert.fields import Row
from tunelab.data.errors import DataError
from tunelab.data.examples import Example, Message
from tunelab.data.registry import Columns
from tunelab.data.report import DataReport

MEDIA_KINDS = ("images", "videos", "audios")
# LLaMA-Factory's IMAGE_PLACEHOLDER / VIDEO_PLACEHOLDER / AUDIO_PLACEHOLDER defaults
PLACEHOLDERS = {"images": "<image>", "videos": "<video>", "audios": "<audio>"}


def resolve_path(item: object, field: str, media_dir: Path | None) -> str:
    """media_dir/item when that file exists (LLaMA-Factory's _find_medias), else item as given; it must exist."""
    if isinstance(item, list):
        raise DataError("lists of video frames are not supported; give one video file per entry", field=field,
                        fix="encode the frames as a video file", kind="video frame lists are not supported")
    if not isinstance(item, str):
        raise DataError(f"expected a file path, got {type(item).__name__} {item!r:.60}", field=field,
                        fix="save the media as files and list their paths", kind="media is not a file path")
    if not item:
        raise DataError("the media path is empty", field=field, fix="give the file's path or remove the entry",
                        kind="empty media path")
    if media_dir is not None:
        joined = os.path.join(media_dir, item)
        if os.path.isfile(joined):
            return joined
    if os.path.isfile(item):
        return item
    looked = f"{os.path.join(media_dir, item)} or " if media_dir is not None else ""
    raise DataError(f"media file {item!r} not found (looked for {looked}{os.path.abspath(item)})", field=field,
                    fix="put the file under media_dir (default: dataset_dir) or correct the path",
                    kind="media file not found")


def media_paths(row: Row, column: str | None, media_dir: Path | None) -> tuple[str, ...]:
    """The resolved paths of one media column: a single path or a list; null or [] gives none."""
    if column is None or row.get(column) is None:
        return ()
    value = row[column]
    items = value if isinstance(value, list) else [value]
    return tuple(resolve_path(item, f"{column}[{index}]", media_dir) for index, item in enumerate(items))


def with_media(sample: Example, row: Row, columns: Columns, media_dir: Path | None) -> Example:
    """The sample with its media attached and their count checked against the placeholders."""
    found = {kind: media_paths(row, getattr(columns, kind), media_dir) for kind in MEDIA_KINDS}
    sample = replace(sample, **found)
    check_placeholders(sample, columns)
    return sample


def check_placeholders(sample: Example, columns: Columns) -> None:
    """Each conversation the trainer sees has one placeholder per media file (LLaMA-Factory's _validate_messages).

    Only mapped media columns are checked: for a dataset without one, '<image>' is plain text.
    """
    conversations = sample.conversations()
    for kind in MEDIA_KINDS:
        column = getattr(columns, kind)
        if column is None:
            continue
        have, tag = len(getattr(sample, kind)), PLACEHOLDERS[kind]
        for which, messages in conversations:
            count = placeholder_count(messages, tag)
            if count != have:
                raise DataError(f"the row has {have} {noun(kind, have)} but the conversation{which} has {count} "
                                f"{tag} placeholder{'' if count == 1 else 's'}", field=column,
                                fix=f"put one {tag} in the text where each {kind[:-1]} goes, or correct the "
                                    f"{column!r} list", kind=f"{kind} count does not match {tag} placeholders")


def placeholder_count(messages: tuple[Message, ...], tag: str) -> int:
    """How often tag occurs across the messages' contents."""
    return sum(message.content.count(tag) for message in messages)


def noun(kind: str, count: int) -> str:
    """'image' or 'images' (likewise video, audio) for count."""
    return kind if count != 1 else kind[:-1]


def listed_media(row: Row, columns: Columns) -> int:
    """How many media entries the row lists in its mapped media columns (what drop_media drops)."""
    count = 0
    for kind in MEDIA_KINDS:
        column = getattr(columns, kind)
        value = row.get(column) if column is not None else None
        count += len(value) if isinstance(value, list) else int(value is not None and value != "")
    return count


def strip_placeholders(value: object, tags: tuple[str, ...]) -> object:
    """A message, a tuple of messages or a text with the placeholder tags removed; anything else as it is."""
    if isinstance(value, str):
        for tag in tags:
            value = value.replace(tag, "")
        return value
    if isinstance(value, Message):
        return replace(value, content=strip_placeholders(value.content, tags))
    if isinstance(value, tuple) and value and isinstance(value[0], Message):
        return tuple(strip_placeholders(message, tags) for message in value)
    return value


def without_media(sample: Example, columns: Columns) -> Example:
    """The sample with no media and without the placeholders of its mapped media columns (drop_media: true)."""
    tags = tuple(PLACEHOLDERS[kind] for kind in MEDIA_KINDS if getattr(columns, kind) is not None)
    kept = ("dataset", "row", "system", "tools") + MEDIA_KINDS
    texts = {f.name: strip_placeholders(getattr(sample, f.name), tags) for f in fields(sample) if f.name not in kept}
    return replace(sample, **texts, **{kind: () for kind in MEDIA_KINDS})


@dataclass(frozen=True)
class ModelMedia:
    """The run's model as the media check sees it: its name and the media kinds it has an encoder (tower) for."""

    name: str
    towers: frozenset[str] = frozenset()


def media_rows(records: Sequence[Example]) -> dict[str, dict[str, int]]:
    """Per dataset, the rows that carry media ("rows") and the files of each media kind."""
    found: dict[str, dict[str, int]] = {}
    for record in records:
        counts = {kind: len(getattr(record, kind)) for kind in MEDIA_KINDS if getattr(record, kind)}
        if counts:
            target = found.setdefault(record.dataset, {"rows": 0})
            target["rows"] += 1
            for kind, count in counts.items():
                target[kind] = target.get(kind, 0) + count
    return found


def why_not(kinds: list[str], model: ModelMedia | None) -> str:
    """Why the media cannot be trained: what the model lacks, or that tunelab trains on text only."""
    if model is None:
        return "tunelab trains on text only"
    missing = [kind for kind in kinds if kind not in model.towers]
    if missing:
        tower = "audio encoder (its config.json has no audio_config)" if missing == ["audios"] else \
            "vision tower (its config.json has no vision_config)"
        return f"the model {model.name} has no {tower}"
    return f"tunelab trains on text only and does not feed media to the model {model.name} yet"


DROP_FIX = ("set drop_media: true to train on the text alone (the media and their placeholders are removed and "
            "counted in the data report), or use a dataset without media")


def media_problem(counts: dict[str, int], rows: str, model: ModelMedia | None) -> str:
    """'3 of 40 rows carry media (4 images), but the model X has no vision tower; ...' for a count of media files."""
    kinds = [kind for kind in MEDIA_KINDS if kind in counts]
    files = ", ".join(f"{counts[kind]} {noun(kind, counts[kind])}" for kind in kinds)
    tags = " ".join(PLACEHOLDERS[kind] for kind in kinds)
    return (f"{rows} media ({files}), but {why_not(kinds, model)}; the {tags} placeholders would be trained as plain "
            "text")


def refuse_media(records: Sequence[Example], report: DataReport, model: ModelMedia | None) -> None:
    """Stop before training when rows carry media (their placeholders would be trained as plain text), naming the
    dataset, how many rows carry what, and the drop_media switch."""
    for dataset, counts in media_rows(records).items():
        converted = sum(d.rows_converted for d in report.datasets if d.name == dataset)
        raise DataError(media_problem(counts, f"{counts['rows']:,} of {converted:,} rows carry", model),
                        dataset=dataset, file=next((d.file for d in report.datasets if d.name == dataset), None),
                        field="drop_media", fix=DROP_FIX)


def refuse_row_media(record: Example) -> None:
    """The streaming form of refuse_media: a row that carries media stops (or is skipped with on_bad_row: skip)."""
    for counts in media_rows([record]).values():
        raise DataError(media_problem(counts, "the row carries", None), field="drop_media", fix=DROP_FIX,
                        kind="the row carries media")
