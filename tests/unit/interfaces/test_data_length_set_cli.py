"""`tunelab data length-set` through the real entry point: the printed lines, the files, a bad input's exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.interfaces.cli import main


def test_length_set_writes_and_registers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = tmp_path / "scenarios.txt"
    scenarios.write_text("中秋\n", encoding="utf-8")
    out = tmp_path / "data" / "length.json"
    code = main(["data", "length-set", "--template", "请写一段{N}字的{scenario}祝福语。", "--scenario", "春节",
                 "--scenarios-file", str(scenarios), "--from", "10", "--to", "40", "--step", "10", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "wrote 8 rows" in printed and "lengths 10..40 step 10 (4 lengths x 2 scenarios)" in printed
    assert "length: added in" in printed
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert rows[4] == {"instruction": "请写一段10字的中秋祝福语。", "target_length": 10, "scenario": "中秋"}
    assert "length" in json.loads((out.parent / "dataset_info.json").read_text(encoding="utf-8"))


def test_length_set_bad_input_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "length-set", "--template", "写{N}字", "--from", "40", "--to", "10",
                 "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert code == 2 and "--from 40 is greater than --to 10; swap them" in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()
