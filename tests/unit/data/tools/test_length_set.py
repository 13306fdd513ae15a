"""`tunelab data length-set`: the rows, the registration, and every bad input refused with its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.errors import DataError
from tunelab.data.gather import load_records
from tunelab.data.registry import sha1_of
from tunelab.data.tools.length_set import LengthSet, length_rows, read_scenarios, target_lengths, write_length_set

TEMPLATE = "请写一段{N}字的{scenario}祝福语。"


def test_default_range_is_the_user_storys() -> None:
    lengths = target_lengths(5, 700, 5)
    assert len(lengths) == 140 and lengths[0] == 5 and lengths[-1] == 700


def test_rows_cover_every_scenario_and_length() -> None:
    rows = length_rows(LengthSet(TEMPLATE, target_lengths(10, 30, 10), ("春节", "中秋")))
    assert len(rows) == 6
    assert rows[0] == {"instruction": "请写一段10字的春节祝福语。", "target_length": 10, "scenario": "春节"}
    assert rows[-1] == {"instruction": "请写一段30字的中秋祝福语。", "target_length": 30, "scenario": "中秋"}
    plain = length_rows(LengthSet("Write {N} words.", target_lengths(7, 8, 5), field="n_words"))
    assert plain == [{"instruction": "Write 7 words.", "n_words": 7}]  # 8 is not reached from 7 in steps of 5


def test_writes_registers_and_reads_back_as_prompts(tmp_path: Path) -> None:
    out = tmp_path / "data" / "len.json"
    count, result = write_length_set(LengthSet(TEMPLATE, target_lengths(10, 40, 10), ("春节",)), out, "len")
    assert count == 4 and result.status == "added"
    entry = json.loads((tmp_path / "data" / "dataset_info.json").read_text(encoding="utf-8"))["len"]
    assert entry == {"file_name": "len.json", "columns": {"prompt": "instruction"}, "file_sha1": sha1_of(out)}
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert [r["target_length"] for r in rows] == [10, 20, 30, 40] and "output" not in rows[0]
    # no answer to learn: the rows read as prompts (stage ppo's kind), and sft refuses them with the reason
    records, _ = load_records(DataSection(dataset="len", dataset_dir=str(out.parent)), stage="ppo")
    assert [r.prompt[-1].content for r in records][:1] == ["请写一段10字的春节祝福语。"]
    with pytest.raises(DataError, match="no response"):
        load_records(DataSection(dataset="len", dataset_dir=str(out.parent)))


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "len.jsonl"
    spec = LengthSet("写{N}字", target_lengths(5, 10, 5))
    write_length_set(spec, out, "len")
    with pytest.raises(DataError, match="the output file exists; pass --overwrite"):
        write_length_set(spec, out, "len")
    count, result = write_length_set(LengthSet("写{N}个字", target_lengths(5, 15, 5)), out, "len", overwrite=True)
    assert count == 3 and result.status.startswith("updated")
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3


def test_a_name_taken_by_another_file_is_refused_before_writing(tmp_path: Path) -> None:
    spec = LengthSet("写{N}字", target_lengths(5, 10, 5))
    write_length_set(spec, tmp_path / "a.json", "len")
    with pytest.raises(DataError, match="already used for a.json; choose another --name, or pass --force"):
        write_length_set(spec, tmp_path / "b.json", "len")
    assert not (tmp_path / "b.json").exists()
    write_length_set(spec, tmp_path / "b.json", "len", force=True)


@pytest.mark.parametrize(("template", "scenarios", "message"), [
    ("写一段祝福语", (), "has no {N} placeholder"),
    ("写{n}字", (), r"unknown placeholder \{n\}; did you mean \{N\}\?"),
    ("写{N}字的{scenrio}", ("春节",), r"unknown placeholder \{scenrio\}; did you mean scenario\?"),
    ("写{N}字", ("春节",), "scenarios are given but the template has no {scenario}"),
    (TEMPLATE, (), "no scenario is given; give --scenario TEXT"),
])
def test_bad_templates(template: str, scenarios: tuple[str, ...], message: str) -> None:
    with pytest.raises(DataError, match=message):
        length_rows(LengthSet(template, target_lengths(5, 10, 5), scenarios))


@pytest.mark.parametrize(("bounds", "message"), [
    ((50, 10, 5), "--from 50 is greater than --to 10"),
    ((5, 10, 0), "--step is 0"),
    ((0, 10, 5), "--from is 0"),
])
def test_bad_bounds(bounds: tuple[int, int, int], message: str) -> None:
    with pytest.raises(DataError, match=message):
        target_lengths(*bounds)


def test_bad_output_and_field(tmp_path: Path) -> None:
    spec = LengthSet("写{N}字", target_lengths(5, 10, 5))
    with pytest.raises(DataError, match="name the output .json or .jsonl"):
        write_length_set(spec, tmp_path / "len.csv", "len")
    with pytest.raises(DataError, match="--field 'instruction' is taken"):
        write_length_set(LengthSet("写{N}字", target_lengths(5, 10, 5), field="instruction"), tmp_path / "x.json", "x")


def test_scenarios_inline_and_from_files(tmp_path: Path) -> None:
    file = tmp_path / "s.txt"
    file.write_text("中秋\n\n元宵\n春节\n", encoding="utf-8")
    assert read_scenarios(["春节"], [file]) == ("春节", "中秋", "元宵")
    with pytest.raises(DataError, match="scenarios file not found"):
        read_scenarios([], [tmp_path / "none.txt"])
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no scenario"):
        read_scenarios([], [tmp_path / "empty.txt"])
    with pytest.raises(DataError, match="--scenario is empty"):
        read_scenarios([" "], [])
