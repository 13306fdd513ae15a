"""A length task through `evaluate` on the tiny model: rows without answers, greedy decoding, report and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.data.tools.length_set import LengthSet, target_lengths, write_length_set
from tunelab.eval.errors import EvalError
from tunelab.eval.run import evaluate


def config(model: Path, data: Path, out: Path, task: dict[str, Any], **extra: Any) -> Any:
    flat = {"model_name_or_path": str(model), "dataset_dir": str(data), "output_dir": str(out), "max_new_tokens": 6,
            "per_device_eval_batch_size": 4, "cutoff_len": 64,
            "eval_tasks": [{"name": "len", "type": "length", "dataset": "len", **task}], **extra}
    return build(flat, purpose="eval")


def test_length_task_end_to_end(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    write_length_set(LengthSet("写{N}字的{scenario}祝福", target_lengths(10, 30, 10), ("春节",)),
                     data_dir / "len.json", "len")
    out = tmp_path / "eval"
    models = [{"name": "a"}, {"name": "b", "model_name_or_path": str(tiny_model_dir)}]
    # the config samples, the length task decodes greedily all the same
    results = evaluate(config(tiny_model_dir, data_dir, out, {"target_field": "target_length"}, do_sample=True,
                              eval_models=models), compare=True)
    score = results["a"]["len"]
    assert score.scored == 3 and set(score.metrics) == {"mae", "mre", "within@10", "within@20", "bias"}
    assert score.details["decoding"] == {"do_sample": False, "max_new_tokens": 6, "repetition_penalty": 1.0}
    assert [row["target"] for row in score.rows] == [10, 20, 30]
    for row in score.rows:  # the figures agree with the rows
        assert row["deviation"] == row["actual"] - row["target"]
    assert score.metrics["mae"] == pytest.approx(sum(abs(r["deviation"]) for r in score.rows) / 3)
    assert results["a"]["len"].metrics == results["b"]["len"].metrics  # same weights, greedy
    summary = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))
    assert summary["results"]["b"]["len"]["bands"][0]["band"] == "1-50"
    predictions = (out / "a" / "len" / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(predictions[0])["label"] == ""  # the rows have no reference answer
    assert (out / "len_length.png").stat().st_size > 10_000 and (out / "len_length_bands.png").is_file()
    report = (out / "eval_results.md").read_text(encoding="utf-8")
    assert "mae" in report and "- len: do_sample False, max_new_tokens 6, repetition_penalty 1.0" in report


def test_sampling_when_the_task_asks(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    write_length_set(LengthSet("写{N}字", target_lengths(10, 10, 10)), data_dir / "len.json", "len")
    results = evaluate(config(tiny_model_dir, data_dir, tmp_path / "eval",
                              {"target_regex": r"(\d+)字", "do_sample": True, "temperature": 0.5}))
    assert results["model"]["len"].details["decoding"] == {"do_sample": True, "max_new_tokens": 6,
                                                          "repetition_penalty": 1.0, "temperature": 0.5,
                                                          "top_p": 0.7, "top_k": 50}


def test_a_row_without_its_target_stops_before_the_model_loads(make_dataset: Any, data_dir: Path,
                                                                 tmp_path: Path) -> None:
    make_dataset([{"instruction": "写10字", "target_length": 10}, {"instruction": "写20字"}], name="len",
                 file_name="len.json", entry={"columns": {"prompt": "instruction"}})
    with pytest.raises(EvalError, match=r"row len:2 has no value in field 'target_length' \(its fields: instruction\)"):
        evaluate(config(tmp_path / "no-model", data_dir, tmp_path / "eval", {"target_field": "target_length"}))
