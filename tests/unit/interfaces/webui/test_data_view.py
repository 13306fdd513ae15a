"""The Data tab's logic: the registry table, rows as the model sees them, lengths, validation, convert + register,
all on the `tunelab data` code paths and with the CLI's own error text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.interfaces.webui.tab_helpers import blocks_with
from tunelab.interfaces import cli
from tunelab.interfaces.webui import data_view
from tunelab.interfaces.webui.strings import LANGS, entry
from tunelab.interfaces.webui.tabs import data as data_tab

ROWS = [{"instruction": "Who are you?", "input": "", "output": "I am tunelab."},
        {"instruction": "Hello there", "input": "", "output": "Hello, how are you?"}]


def form(model: Path, data_dir: Path, datasets: list[str], cutoff_len: int = 1024) -> data_view.DataForm:
    """The tab's values for a tiny model and a test dataset folder."""
    return data_view.DataForm(str(model), None, "sft", datasets, str(data_dir), cutoff_len)


def test_registry_rows_list_the_entries(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, name="demo", entry={"columns": {"prompt": "instruction"}})
    rows, names, message = data_view.registry_rows(str(data_dir), data_dir.parent)
    assert names == ["demo"]
    assert rows[0][:3] == ["demo", "demo.json", "alpaca"] and rows[0][4] == "prompt=instruction"
    assert message == f"1 datasets in {data_dir / 'dataset_info.json'}"


def test_a_folder_without_a_registry_says_so_as_the_cli_does(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rows, names, message = data_view.registry_rows(str(tmp_path), tmp_path)
    assert rows == [] and names == []
    assert message.startswith(f"tunelab: error: {tmp_path / 'dataset_info.json'}: no dataset_info.json in {tmp_path}")


def test_preview_highlights_the_trained_tokens(tiny_model_dir: Path, make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS)
    html, report = data_view.preview(form(tiny_model_dir, data_dir, ["demo"]), 1)
    assert "<h4>example 1:" in html and html.count("<h4>") == 1
    trained = html.split("<span class='tl-trained'>")[1].split("</span>")[0]
    assert trained == "I am tunelab.&lt;|im_end|&gt;\n"
    assert "&lt;|im_start|&gt;user\nWho are you?" in html
    assert report.startswith("rows read 2, converted 2, skipped 0, truncated 0")


def test_preview_uses_the_top_bars_system_prompt(tiny_model_dir: Path, make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS)
    chosen = data_view.DataForm(str(tiny_model_dir), None, "sft", ["demo"], str(data_dir), 1024,
                                system="Answer briefly.")
    assert "default_system=Answer briefly." in chosen.overrides()
    html, _ = data_view.preview(chosen, 1)
    assert "&lt;|im_start|&gt;system\nAnswer briefly.&lt;|im_end|&gt;" in html
    assert "Answer briefly." not in data_view.preview(form(tiny_model_dir, data_dir, ["demo"]), 1)[0]


def test_preview_counts_truncation(tiny_model_dir: Path, make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS)
    _, report = data_view.preview(form(tiny_model_dir, data_dir, ["demo"], cutoff_len=8), 2)
    assert "truncated 2" in report


def test_preview_without_a_dataset_shows_the_cli_error(tiny_model_dir: Path, data_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    html, report = data_view.preview(form(tiny_model_dir, data_dir, []), 1)
    assert html == ""
    assert report == "tunelab: error: field dataset: the config names no dataset; set dataset: NAME (or dataset=NAME)"


def test_stats_writes_the_cli_histogram(tiny_model_dir: Path, make_dataset: Any, data_dir: Path,
                                        tmp_path: Path) -> None:
    make_dataset(ROWS)
    png, text = data_view.stats(form(tiny_model_dir, data_dir, ["demo"], cutoff_len=8), tmp_path / "h" / "l.png")
    assert png == str(tmp_path / "h" / "l.png") and Path(png).stat().st_size > 1000
    assert "2 of 2 examples are longer than cutoff_len 8 and would be truncated" in text


def test_validate_lists_the_bad_rows_with_file_and_row(tiny_model_dir: Path, make_dataset: Any,
                                                       data_dir: Path) -> None:
    make_dataset(ROWS + [{"instruction": "", "input": "", "output": ""}])
    done = data_view.validate(form(tiny_model_dir, data_dir, ["demo"]))
    assert done.code == 2
    assert f"demo ({data_dir / 'demo.json'}) row 3:" in done.out
    assert "1 rows have problems" in done.out


def convert_form(upload: Path, data_dir: Path, mapping: str, name: str = "qa") -> data_view.ConvertForm:
    """A convert panel filled in for a CSV upload."""
    return data_view.ConvertForm(str(upload), "alpaca", mapping, "qa.json", str(data_dir), None, name)


def test_convert_registers_the_output_with_its_sha1(tmp_path: Path, data_dir: Path) -> None:
    data_dir.mkdir()
    upload = tmp_path / "upload.csv"
    upload.write_text("问题,答案\n你是谁？,我是 tunelab。\n你好,你好！\n", encoding="utf-8")
    assert data_view.upload_columns(str(upload), None) == "2 rows; columns: 问题, 答案"
    done = data_view.convert(convert_form(upload, data_dir, "instruction=问题,output=答案"))
    assert done.ok, done.text()
    written = json.loads((data_dir / "qa.json").read_text(encoding="utf-8"))
    assert written[0] == {"instruction": "你是谁？", "input": "", "output": "我是 tunelab。"}
    registry = json.loads((data_dir / "dataset_info.json").read_text(encoding="utf-8"))
    assert registry["qa"]["file_name"] == "qa.json" and len(registry["qa"]["file_sha1"]) == 40


def test_convert_errors_are_the_cli_text(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir.mkdir()
    upload = tmp_path / "upload.csv"
    upload.write_text("问题,答案\n你是谁？,我是 tunelab。\n", encoding="utf-8")
    done = data_view.convert(convert_form(upload, data_dir, "instruction=问题"))
    assert done.code == 2
    code = cli.main(["data", "convert", str(upload), "--to", "alpaca", "--map", "instruction=问题", "--out",
                     str(data_dir / "qa.json"), "--name", "qa"])
    assert (code, done.err) == (2, capsys.readouterr().err)
    assert "--map has no output" in done.err


def test_convert_refuses_a_path_as_the_output_name(tmp_path: Path, data_dir: Path) -> None:
    data_dir.mkdir()
    bad = data_view.ConvertForm(str(tmp_path / "x.csv"), "alpaca", "instruction=a,output=b", "../qa.json",
                                str(data_dir))
    done = data_view.convert(bad)
    assert done.code == 2 and "give a file name ending .json or .jsonl, without a folder" in done.err
    assert not (tmp_path / "qa.json").exists()


def test_the_form_becomes_cli_overrides(tmp_path: Path) -> None:
    values = data_view.DataForm("m", "", "dpo", ["a", "b"], "data", 512, tmp_path).overrides()
    assert values == ["model_name_or_path=m", "stage=dpo", "dataset=a,b", f"dataset_dir={tmp_path.resolve() / 'data'}",
                      "cutoff_len=512"]


def test_the_dataset_folder_follows_the_path_rule(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    escape = "tunelab: the config has 1 problem\n  dataset_dir: ../outside leads outside the working folder"
    assert data_view.registry_rows("../outside", work)[2].startswith(escape)
    assert data_view.registry_rows("data", work)[2].startswith(f"tunelab: error: {work.resolve() / 'data'}")
    bad = data_view.DataForm("m", None, "sft", ["demo"], "../outside", 64, work)
    assert data_view.validate(bad).err.startswith(escape)
    assert data_view.preview(bad, 1) == ("", data_view.validate(bad).err.rstrip())
    png, text = data_view.stats(bad, tmp_path / "l.png")
    assert png is None and text.startswith(escape)
    upload = tmp_path / "upload.csv"
    upload.write_text("q,a\nx,y\n", encoding="utf-8")
    convert = data_view.ConvertForm(str(upload), "alpaca", "instruction=q,output=a", "qa.json", "../outside",
                                    workdir=work)
    assert data_view.convert(convert).err.startswith(escape)
    assert not (tmp_path / "outside" / "qa.json").exists()
    missing = data_view.ConvertForm(str(upload), "alpaca", "instruction=q,output=a", "qa.json", "nope", workdir=work)
    done = data_view.convert(missing)
    assert done.code == 2 and done.err.startswith("tunelab: the config has 1 problem\n  dataset_dir: nope: no such "
                                                  "folder; give the dataset folder")
    assert not (work / "nope").exists()
    inside = data_view.ConvertForm(str(upload), "alpaca", "instruction=q,output=a", "qa.json", "data", workdir=work)
    assert data_view.convert(inside).ok and (work / "data" / "qa.json").is_file()


def test_the_tab_builds_with_every_string_in_both_languages() -> None:
    _, ui = blocks_with(data_tab.build)
    keys = [key for key, _ in ui.registered]
    assert keys and all(key.startswith("data.") for key in keys)
    assert all(entry(key, lang)["label"] for key in keys for lang in LANGS)
    assert len(ui.relabel("zh")) == len(keys)
