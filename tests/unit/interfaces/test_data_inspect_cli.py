"""`tunelab data tokenize | preview | stats | validate` on a tiny model folder and dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.interfaces.cli import main

ROWS = [{"instruction": f"Question {i}?", "output": f"Answer number {i}."} for i in range(6)]


@pytest.fixture()
def config(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any, data_dir: Path) -> Path:
    make_dataset(ROWS)
    path = tmp_path / "run.yaml"
    path.write_text(f"model_name_or_path: {tiny_model_dir}\ndataset: demo\ndataset_dir: {data_dir}\n"
                    "cutoff_len: 64\n", encoding="utf-8")
    return path


def test_tokenize_writes_what_the_trainer_sees(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "tok.jsonl"
    assert main(["data", "tokenize", str(config), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 6 and all(len(x["input_ids"]) == len(x["labels"]) for x in lines)
    assert all(any(label != -100 for label in x["labels"]) for x in lines)


def test_tokenize_with_neat_packing_writes_packed_rows(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "packed.jsonl"
    assert main(["data", "tokenize", str(config), "neat_packing=true", "cutoff_len=512", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) < 6 and all("position_ids" in x and "example_lengths" in x for x in lines)
    assert sum(len(x["example_lengths"]) for x in lines) == 6


def test_tokenize_names_each_eval_set(config: Path, tmp_path: Path, make_dataset: Any) -> None:
    make_dataset(ROWS[:2], name="held", file_name="held.json")
    out = tmp_path / "tok.jsonl"
    assert main(["data", "tokenize", str(config), "eval_dataset=held", "eval_on_each_dataset=true",
                 "--out", str(out)]) == 0
    splits = [json.loads(line)["split"] for line in out.read_text().splitlines()]
    assert splits == ["train"] * 6 + ["eval_held"] * 2


def test_preview_of_a_stream(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "preview", str(config), "streaming=true", "disable_shuffling=true", "--rows", "2",
                 "--plain"]) == 0
    out = capsys.readouterr().out
    assert "⟦Answer number 1.<|im_end|>\n⟧" in out and "example 3" not in out


def test_preview_marks_trained_spans(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "preview", str(config), "--rows", "1", "--plain"]) == 0
    out = capsys.readouterr().out
    assert "⟦Answer number 0.<|im_end|>\n⟧" in out and "rows read 6" in out


def test_stats_writes_a_histogram(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "len.png"
    assert main(["data", "stats", str(config), "cutoff_len=12", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert png.stat().st_size > 0 and "of 6 examples are longer than cutoff_len 12" in out
    assert "0 of 6" not in out


def test_validate_lists_every_bad_row(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any, data_dir: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    make_dataset(ROWS[:2] + [{"instruction": "x"}, {"instruction": "y", "output": ""}])
    path = tmp_path / "run.yaml"
    path.write_text(f"model_name_or_path: {tiny_model_dir}\ndataset: demo\ndataset_dir: {data_dir}\n")
    assert main(["data", "validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "demo.json) row 3: output: missing column 'output'" in out
    assert "demo.json) row 4: output: the response is empty" in out


@pytest.mark.parametrize("command", ["validate", "preview"])
def test_validate_and_preview_flag_a_column_read_twice(command: str, tmp_path: Path, tiny_model_dir: Path,
                                                       make_dataset: Any, data_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # an entry written by hand (or by the register of an older version) that feeds 'input' to prompt and query
    make_dataset([{"input": "q", "output": "a"}], entry={"columns": {"prompt": "input", "query": "input",
                                                                      "response": "output"}})
    path = tmp_path / "run.yaml"
    path.write_text(f"model_name_or_path: {tiny_model_dir}\ndataset: demo\ndataset_dir: {data_dir}\n")
    assert main(["data", command, str(path)]) == 2
    err = capsys.readouterr().err
    assert "dataset 'demo'" in err and "columns prompt and query both read the field 'input'" in err
    assert "map 'input' to one role only: remove \"query\": \"input\"" in err and "Traceback" not in err


def test_validate_names_the_dataset_of_a_sha1_note_once(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # issue 21: the warning read "dataset 'general': dataset 'general': file_sha1 ..."
    make_dataset(ROWS, name="general", entry={"file_sha1": "0" * 40})
    path = tmp_path / "run.yaml"
    path.write_text(f"model_name_or_path: {tiny_model_dir}\ndataset: general\ndataset_dir: {data_dir}\n")
    assert main(["data", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"  general: file_sha1 in dataset_info.json is {'0' * 40} but the file's is " in out
    assert out.count("general") == 1


def test_validate_suggests_the_field_a_misspelt_column_meant(tmp_path: Path, tiny_model_dir: Path,
                                                            make_dataset: Any, data_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # issue 21: a near-miss column name in dataset_info.json got no did-you-mean
    make_dataset([{"question": "q", "answer": "a"}], entry={"columns": {"prompt": "questoin", "response": "answr"}})
    path = tmp_path / "run.yaml"
    path.write_text(f"model_name_or_path: {tiny_model_dir}\ndataset: demo\ndataset_dir: {data_dir}\n")
    assert main(["data", "validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "demo.json) row 1: questoin: missing column 'questoin'; did you mean question?" in out
    make_dataset([{"question": "q", "answer": "a"}], entry={"columns": {"prompt": "question", "response": "answr"}})
    assert main(["data", "validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "demo.json) row 1: answr: missing column 'answr'; did you mean answer?" in out


def test_register_input_output_rows_then_validate_and_preview(tmp_path: Path, tiny_model_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # issue 21, the user's own steps: their rows have input and output; register maps prompt=input, and the prompt
    # must hold the text once (it used to get "query": "input" too, and validate said valid)
    folder = tmp_path / "data"
    folder.mkdir()
    data = folder / "kefu.jsonl"
    data.write_text("".join(json.dumps({"input": f"退货流程{i}？", "output": f"请在订单页申请{i}。"},
                                       ensure_ascii=False) + "\n" for i in range(3)), encoding="utf-8")
    assert main(["data", "register", str(data), "--columns", "prompt=input,response=output"]) == 0
    assert json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))["kefu"]["columns"] == {
        "prompt": "input", "response": "output"}
    path = tmp_path / "run.yaml"
    path.write_text(f"model_name_or_path: {tiny_model_dir}\ndataset: kefu\ndataset_dir: {folder}\n")
    assert main(["data", "validate", str(path)]) == 0
    assert "valid: every row converts" in capsys.readouterr().out
    assert main(["data", "preview", str(path), "--rows", "1", "--plain", "disable_shuffling=true"]) == 0
    assert capsys.readouterr().out.count("退货流程0？") == 1
