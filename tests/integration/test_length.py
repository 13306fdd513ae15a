"""Length control on the real SmolLM2: `tunelab data length-set`, then `tunelab eval` with a length task."""

from __future__ import annotations

import json
from pathlib import Path

from tunelab.text.length import words

from .clirun import tunelab

CONFIG = """model_name_or_path: smollm2-135m-instruct
template: smollm2
dataset_dir: {data}
output_dir: {out}
max_new_tokens: 8
per_device_eval_batch_size: 4
do_sample: true          # the length task decodes greedily all the same
eval_tasks:
  - {{name: greeting, type: length, dataset: greeting_len, target_field: target_length, length_rule: words,
     tolerance: [5], bands: [20]}}
"""


def test_length_set_then_eval(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "eval"
    made = tunelab("data", "length-set", "--template", "Write a greeting for {scenario} in exactly {N} words.",
                   "--scenario", "the New Year", "--from", "10", "--to", "40", "--step", "10",
                   "--out", str(data / "greeting_len.json"))
    assert made.returncode == 0, made.stderr
    assert "wrote 4 rows" in made.stdout and "greeting_len: added" in made.stdout
    config = tmp_path / "length.yaml"
    config.write_text(CONFIG.format(data=data, out=out), encoding="utf-8")
    result = tunelab("eval", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    score = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))["results"]["model"]["greeting"]
    assert score["scored"] == 4 and list(score["metrics"]) == ["mae", "mre", "within@5", "bias"]
    assert score["decoding"] == {"do_sample": False, "max_new_tokens": 8, "repetition_penalty": 1.0}
    rows = [json.loads(line) for line in (out / "rows" / "greeting.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["label"] for row in rows] == ["10", "20", "30", "40"]
    deviations = []
    for row in rows:
        mine = row["models"]["model"]
        # the length is the words rule on the answer, and the deviation is actual minus target
        assert mine["actual"] == words(mine["predict"].strip())
        assert mine["deviation"] == mine["actual"] - mine["target"]
        deviations.append(mine["deviation"])
    assert abs(score["metrics"]["mae"] - sum(abs(d) for d in deviations) / 4) < 1e-3
    assert abs(score["metrics"]["bias"] - sum(deviations) / 4) < 1e-3
    assert [band["band"] for band in score["bands"]] == ["1-20", "21+"]
    assert (out / "greeting_length.png").stat().st_size > 10_000
    assert (out / "greeting_length_bands.png").stat().st_size > 10_000
