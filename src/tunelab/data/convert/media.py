"""Image, video and audio columns: paths resolved as LLaMA-Factory does, files checked, placeholders counted."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from tunelab.data.convert.fields import Row
from tunelab.data.errors import DataError
from tunelab.data.examples import Example, Message
from tunelab.data.registry import Columns

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
