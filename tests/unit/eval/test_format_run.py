"""`tunelab eval` with a format metric: the layout config on a generation task, the failing rows in the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunelab.config.load import build
from tunelab.eval.run import evaluate

LAYOUT = r"(?s)问题[:：](?P<question>.*?)\n答案[:：](?P<answer>.*)"


def test_failing_rows_reach_the_report(make_dataset: Any, data_dir: Path, tmp_path: Path) -> None:
    make_dataset([{"instruction": "出一道题", "output": "问题：一加一？\n答案：二"},
                  {"instruction": "再出一道", "output": "问题：二加二？\n答案：四"}])
    lines = [{"prompt": "p", "predict": "问题：一加一？\n答案：二", "label": "问题：一加一？\n答案：二"},
             {"prompt": "p", "predict": "二加二等于四", "label": "问题：二加二？\n答案：四"}]
    predictions = tmp_path / "generated_predictions.jsonl"
    predictions.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines), encoding="utf-8")
    out = tmp_path / "out"
    config = build({"model_name_or_path": "not/loaded", "dataset_dir": str(data_dir), "output_dir": str(out),
                    "eval_tasks": [{"name": "qg", "type": "generation", "dataset": "demo",
                                    "predictions": str(predictions), "format_regex": LAYOUT,
                                    "metrics": ["format", "format:answer", "rouge-l"]}]}, purpose="eval")
    score = evaluate(config)["model"]["qg"]
    assert score.metrics["format"] == 50.0 and score.metrics["format:answer"] == 50.0
    summary = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))
    assert summary["results"]["model"]["qg"]["format"]["failed"] == [
        {"id": "demo:2", "why": "does not match format_regex"}]
    rows = [json.loads(line) for line in (out / "rows" / "qg.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[1]["models"]["model"]["format_error"] == "does not match format_regex"
