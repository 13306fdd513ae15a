"""Media columns: LLaMA-Factory's path resolution, file checks, and placeholder counts per conversation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tunelab.data.convert import convert_row
from tunelab.data.convert.media import ModelMedia, listed_media, refuse_media
from tunelab.data.errors import DataError
from tunelab.data.examples import Example
from tunelab.data.registry import Columns, DatasetEntry
from tunelab.data.report import DataReport, DatasetReport

IMAGES = DatasetEntry(formatting="sharegpt", columns=Columns(messages="conversations", images="images"))
ALL_MEDIA = DatasetEntry(formatting="sharegpt", columns=Columns(messages="conversations", images="images",
                                                                videos="videos", audios="audios"))


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    (folder / "sub").mkdir(parents=True)
    for name in ("cat.png", "dog.png", "sub/clip.mp4", "sub/voice.wav"):
        (folder / name).write_bytes(b"x")
    return folder


def chat(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"from": role, "value": value} for role, value in turns]


def convert(row: dict[str, Any], media_dir: Path | None, spec: DatasetEntry = IMAGES, stage: str = "sft") -> Example:
    return convert_row(row, spec, "d", 0, media_dir, stage)


def error(row: dict[str, Any], media_dir: Path | None, spec: DatasetEntry = IMAGES, stage: str = "sft") -> DataError:
    with pytest.raises(DataError) as excinfo:
        convert(row, media_dir, spec, stage)
    return excinfo.value


def test_relative_paths_join_media_dir_and_absolute_paths_stay(media_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "abs.png"
    outside.write_bytes(b"x")
    row = {"conversations": chat(("human", "<image>What is this?<image>"), ("gpt", "A cat and something.")),
           "images": ["cat.png", str(outside)]}
    # LLaMA-Factory 0.9.5 gives [media_dir + "/cat.png", the absolute path] for this row
    assert convert(row, media_dir).images == (os.path.join(media_dir, "cat.png"), str(outside))


def test_a_path_missing_from_media_dir_is_used_as_given_when_it_exists(media_dir: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "local.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    row = {"conversations": chat(("human", "<image>?"), ("gpt", "A")), "images": "local.png"}
    assert convert(row, media_dir).images == ("local.png",)
    assert convert(row, None).images == ("local.png",)


def test_missing_media_file_names_the_path(media_dir: Path) -> None:
    row = {"conversations": chat(("human", "<image><image>?"), ("gpt", "A")), "images": ["cat.png", "missing.png"]}
    err = error(row, media_dir)
    assert err.field == "images[1]"
    assert err.kind == "media file not found"
    assert err.problem == (f"media file 'missing.png' not found (looked for {os.path.join(media_dir, 'missing.png')} "
                           f"or {os.path.abspath('missing.png')})")
    assert err.fix == "put the file under media_dir (default: dataset_dir) or correct the path"


@pytest.mark.parametrize(("images", "text", "problem"), [
    (["cat.png", "dog.png"], "<image>What is this?",
     "the row has 2 images but the conversation has 1 <image> placeholder"),
    (["cat.png"], "What is this?", "the row has 1 image but the conversation has 0 <image> placeholders"),
    (None, "<image>What is this?", "the row has 0 images but the conversation has 1 <image> placeholder"),
    ([], "<image>What is this?", "the row has 0 images but the conversation has 1 <image> placeholder"),
])
def test_media_count_must_match_placeholders(media_dir: Path, images: Any, text: str, problem: str) -> None:
    err = error({"conversations": chat(("human", text), ("gpt", "A cat.")), "images": images}, media_dir)
    assert (err.field, err.problem, err.kind) == ("images", problem, "images count does not match <image> placeholders")
    assert err.fix == "put one <image> in the text where each image goes, or correct the 'images' list"


def test_placeholders_are_counted_across_the_whole_conversation(media_dir: Path) -> None:
    row = {"conversations": chat(("human", "<image>这是什么？"), ("gpt", "猫。"), ("human", "那这个呢<image>"), ("gpt", "狗。")),
           "images": ["cat.png", "dog.png"]}
    sample = convert(row, media_dir)
    assert len(sample.images) == 2
    assert sample.prompt[2].content == "那这个呢<image>"


def test_without_a_media_column_a_placeholder_is_plain_text(media_dir: Path) -> None:
    row = {"conversations": chat(("human", "What does <image> mean in HTML-ish markup?"), ("gpt", "Nothing."))}
    assert convert(row, media_dir, DatasetEntry(formatting="sharegpt")).images == ()


def test_videos_and_audios(media_dir: Path) -> None:
    row = {"conversations": chat(("human", "<video><audio>Describe both."), ("gpt", "A clip and a voice.")),
           "videos": "sub/clip.mp4", "audios": ["sub/voice.wav"], "images": None}
    sample = convert(row, media_dir, ALL_MEDIA)
    assert sample.videos == (os.path.join(media_dir, "sub/clip.mp4"),)
    assert sample.audios == (os.path.join(media_dir, "sub/voice.wav"),)
    assert sample.images == ()
    row["audios"] = []
    err = error(row, media_dir, ALL_MEDIA)
    assert (err.field, err.problem) == ("audios", "the row has 0 audios but the conversation has 1 <audio> placeholder")


def test_ranking_checks_each_answer_with_the_prompt(media_dir: Path) -> None:
    spec = DatasetEntry(formatting="sharegpt", ranking=True, columns=Columns(messages="conversations", images="images",
                                                                           chosen="chosen", rejected="rejected"))
    row = {"conversations": chat(("human", "What is this?")), "images": ["cat.png"],
           "chosen": {"from": "gpt", "value": "<image> is a cat."}, "rejected": {"from": "gpt", "value": "A dog."}}
    err = error(row, media_dir, spec, "dpo")
    assert err.problem == "the row has 1 image but the conversation with the rejected answer has 0 <image> placeholders"
    row["conversations"] = chat(("human", "<image>What is this?"))
    row["chosen"] = {"from": "gpt", "value": "A cat."}
    assert convert(row, media_dir, spec, "dpo").images == (os.path.join(media_dir, "cat.png"),)


def test_alpaca_rows_carry_media_too(media_dir: Path) -> None:
    spec = DatasetEntry(columns=Columns(prompt="instruction", query="input", response="output", images="images"))
    row = {"instruction": "<image>Describe.", "input": "", "output": "A cat.", "images": ["cat.png"]}
    assert convert(row, media_dir, spec).images == (os.path.join(media_dir, "cat.png"),)


@pytest.mark.parametrize(("images", "field", "kind"), [
    ([["f1.png", "f2.png"]], "images[0]", "video frame lists are not supported"),
    ([{"bytes": b"x", "path": None}], "images[0]", "media is not a file path"),
    ([""], "images[0]", "empty media path"),
])
def test_unsupported_media_values(media_dir: Path, images: Any, field: str, kind: str) -> None:
    err = error({"conversations": chat(("human", "<image>?"), ("gpt", "A")), "images": images}, media_dir)
    assert (err.field, err.kind) == (field, kind)


def test_pretraining_rows_cannot_carry_media(media_dir: Path) -> None:
    spec = DatasetEntry(columns=Columns(prompt="text", images="images"))
    err = error({"text": "<image> caption", "images": ["cat.png"]}, media_dir, spec, "pt")
    assert (err.field, err.problem) == ("images", "stage pt trains on text only; the row has images")
    assert convert({"text": "just text", "images": None}, media_dir, spec, "pt").images == ()


def test_drop_media_removes_the_media_and_their_placeholders(media_dir: Path) -> None:
    row = {"conversations": chat(("human", "<image>What is this? <image>"), ("gpt", "Two cats.")),
           "images": ["cat.png", "gone.png"]}  # a missing file does not matter once it is dropped
    sample = convert_row(row, IMAGES, "d", 1, media_dir, "sft", drop_media=True)
    assert sample.images == () and [m.content for m in sample.messages] == ["What is this? ", "Two cats."]
    assert listed_media(row, IMAGES.columns) == 2


def test_drop_media_leaves_placeholders_of_unmapped_kinds(media_dir: Path) -> None:
    row = {"conversations": chat(("human", "<image><video>?"), ("gpt", "A")), "images": ["cat.png"]}
    assert convert_row(row, IMAGES, "d", 1, media_dir, "sft", drop_media=True).messages[0].content == "<video>?"


def test_pretraining_text_drops_its_media_when_asked(media_dir: Path) -> None:
    spec = DatasetEntry(columns=Columns(prompt="text", images="images"))
    sample = convert_row({"text": "<image> caption", "images": ["cat.png"]}, spec, "d", 1, media_dir, "pt", True)
    assert sample.text == " caption" and sample.images == ()


def test_rows_with_media_are_refused_with_their_count(media_dir: Path) -> None:
    rows = [convert({"conversations": chat(("human", "<image>?"), ("gpt", "A")), "images": ["cat.png"]}, media_dir),
            convert({"conversations": chat(("human", "plain"), ("gpt", "B")), "images": None}, media_dir)]
    report = DataReport(datasets=[DatasetReport("d", file="pics.json", rows_converted=2)])
    with pytest.raises(DataError) as excinfo:
        refuse_media(rows, report, ModelMedia("SmolLM2"))
    assert str(excinfo.value) == (
        "dataset 'd' (pics.json), field drop_media: 1 of 2 rows carry media (1 image), but the model SmolLM2 has no "
        "vision tower (its config.json has no vision_config); the <image> placeholders would be trained as plain "
        "text; set drop_media: true to train on the text alone (the media and their placeholders are removed and "
        "counted in the data report), or use a dataset without media")
    with pytest.raises(DataError, match="tunelab trains on text only and does not feed media to the model VL yet"):
        refuse_media(rows, report, ModelMedia("VL", frozenset({"images", "videos"})))
    refuse_media(rows[1:], report, ModelMedia("SmolLM2"))  # no media: nothing to refuse
