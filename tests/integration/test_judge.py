"""`tunelab eval` with judge tasks on the real SmolLM2: the judge is `tunelab api` serving the embedded model
(single scores, and pairwise with both orders), or the same model loaded locally. SmolLM2 is no judge worth
listening to, so these check the files and their consistency, not the quality of the verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .clirun import REPO, tunelab
from .conftest import API_KEY

EXAMPLE = REPO / "examples" / "judge_task.yaml"
ROWS = 3
# tiny rubrics keep the prompts short: the machine running these is small and shared
SINGLE = "Rate the answer from {{ scale_min }} to {{ scale_max }}; reply [[score]].\nQ: {{ question }}\nA: {{ answer }}"
PAIRWISE = "Which answer is better? Reply [[A]], [[B]] or [[C]] (tie).\nQ: {{ question }}\nA: {{ answer_a }}\n" \
           "B: {{ answer_b }}"


def judge_config(tmp_path: Path, base: str | None, models: list[dict] | None = None, **task: object) -> Path:
    """The example with the fixture's server (or a local judge), a few rows and short replies."""
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    entry = config["eval_tasks"][0]
    rubric = tmp_path / "rubric.jinja"
    rubric.write_text(PAIRWISE if task.get("mode") == "pairwise" else SINGLE, encoding="utf-8")
    entry.update({"judge_max_tokens": 16, "judge_api_key_env": "API_KEY", "judge_timeout": 300, "rubric": str(rubric)})
    if base is None:
        for key in ("judge_base_url", "judge_model", "judge_api_key_env"):
            entry.pop(key)
        entry["judge_model_path"] = "smollm2-135m-instruct"
    else:
        entry["judge_base_url"] = f"{base}/v1"
    entry.update(task)
    config.update({"output_dir": str(tmp_path / "eval"), "max_new_tokens": 16, "max_samples": ROWS,
                   "dataset_dir": str(REPO / "examples" / "data")})
    if models:
        config["eval_models"] = models
    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_single(out: Path, model: str) -> dict:
    """Every row has a score or is listed as unparsed; the figures follow from the rows."""
    score = json.loads((out / model / "quality" / "score.json").read_text(encoding="utf-8"))
    rows = rows_of(out / model / "quality" / "rows.jsonl")
    assert len(rows) == ROWS and all(r["reason"] for r in rows)
    unparsed = [r["id"] for r in rows if r["score"] is None]
    assert score["unextracted_ids"] == unparsed
    values = [r["score"] for r in rows if r["score"] is not None]
    assert all(1 <= v <= 10 for v in values)
    assert sum(score["distribution"].values()) == len(values) == score["judged"]
    mean = sum(values) / len(values) if values else 0.0
    assert score["metrics"]["judge-mean"] == pytest.approx(mean, abs=1e-4)
    assert score["metrics"]["judge-top"] == pytest.approx(100 * sum(v >= 9 for v in values) / max(1, len(values)),
                                                          abs=1e-3)
    return score


def test_judge_through_the_api_server(api_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    config = judge_config(tmp_path, api_server)
    result = tunelab("eval", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "eval"
    score = check_single(out, "model")
    assert score["judge_usage"]["requests"] >= ROWS and score["judge_usage"]["completion_tokens"] > 0
    assert len(rows_of(out / "judge_cache" / "quality.jsonl")) == score["judge_usage"]["requests"]
    assert (out / "quality_judge.png").stat().st_size > 5000
    assert "judge-mean" in (out / "eval_results.md").read_text(encoding="utf-8")
    again = tunelab("eval", str(config))  # answers and verdicts reused: no request to the judge
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((out / "model" / "quality" / "score.json").read_text(encoding="utf-8"))
    assert rerun["judge_usage"]["requests"] == 0 and rerun["metrics"] == score["metrics"]


def test_pairwise_through_the_api_server(api_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", API_KEY)
    models = [{"name": "base"}, {"name": "alpaca", "template": "alpaca"}]  # another template: other answers
    config = judge_config(tmp_path, api_server, models, mode="pairwise", with_reference=False)
    result = tunelab("eval", str(config), "--compare")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "eval"
    score = json.loads((out / "alpaca" / "quality" / "score.json").read_text(encoding="utf-8"))
    rows = rows_of(out / "alpaca" / "quality" / "rows.jsonl")
    results = [r["result"] for r in rows]
    assert [r["id"] for r in rows if r["result"] is None] == score["unextracted_ids"]
    known = [r for r in results if r is not None]
    for name in ("win", "tie", "loss"):
        expected = 100 * known.count(name) / len(known) if known else 0.0
        assert score["metrics"][name] == pytest.approx(expected, abs=1e-3)
    assert all(r["verdict_shown_first"] and r["verdict_shown_second"] for r in rows if r["result"])  # both orders
    assert score["against"] == "base" and score["judge_usage"]["requests"] >= ROWS
    base = json.loads((out / "base" / "quality" / "score.json").read_text(encoding="utf-8"))
    assert base["metrics"] == {} and base["baseline"] is True
    assert (out / "quality_judge.png").is_file()


def test_local_judge_model(tmp_path: Path) -> None:
    config = judge_config(tmp_path, None, reask=1)
    result = tunelab("eval", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    score = check_single(tmp_path / "eval", "model")
    assert score["judge"] == "local:smollm2-135m-instruct" and score["judge_usage"]["prompt_tokens"] > 0
