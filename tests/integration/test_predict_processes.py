"""`tunelab predict` on several processes: the same greedy answers as one process, one file in row order."""

from __future__ import annotations

import json

from .clirun import QUICKSTART, tunelab

ARGS = ("eval_dataset=identity", "max_samples=5", "max_new_tokens=10", "per_device_eval_batch_size=2")


def test_two_processes_answer_like_one(tmp_path):
    one = tunelab("predict", QUICKSTART, f"output_dir={tmp_path / 'one'}", *ARGS)
    two = tunelab("predict", QUICKSTART, f"output_dir={tmp_path / 'two'}", *ARGS, "nproc_per_node=2")
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    assert "predicting on 2 processes" in two.stderr and "5 rows answered on 2 processes" in two.stderr
    text = (tmp_path / "two" / "generated_predictions.jsonl").read_text()
    assert text == (tmp_path / "one" / "generated_predictions.jsonl").read_text()
    assert [json.loads(line)["id"] for line in text.splitlines()] == [f"identity:{i}" for i in range(1, 6)]
    report = json.loads((tmp_path / "two" / "predict_report.json").read_text())
    assert (report["rows"], report["written"], report["processes"]) == (5, 5, 2)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["generated_predictions.jsonl",
                                                                    "predict_report.json"]
