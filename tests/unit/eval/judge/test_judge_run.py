"""`tunelab eval` with a judge task on the tiny model, the judge a scripted loopback server: faults retried,
unreadable replies asked again then reported, every reply cached so a second run asks nothing, pairwise both
orders, the files and figures of the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fault_server import fault_server

from tunelab.config.load import build
from tunelab.eval.errors import EvalError
from tunelab.eval.run import evaluate

ROWS = [{"instruction": "写一句春节祝福", "output": "新春快乐"}, {"instruction": "Say hi", "output": "hi there"},
        {"instruction": "Name a colour", "output": "red"}]


def config(tiny_model_dir: Path, data_dir: Path, out: Path, url: str, **task: Any) -> Any:
    flat = {"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir), "output_dir": str(out),
            "max_new_tokens": 4, "per_device_eval_batch_size": 2, "cutoff_len": 64,
            "eval_tasks": [{"name": "judged", "type": "judge", "dataset": "demo", "judge_base_url": url,
                            "judge_model": "judge", "judge_max_retries": 3, "judge_timeout": 5, **task}]}
    return build(flat, purpose="eval")


def grader(messages: list[dict[str, str]]) -> str:
    """A judge that rambles without a score at first and gives one when asked again; never scores 'Say hi'."""
    if "Say hi" in messages[0]["content"]:
        return "I cannot decide on this one."
    if len(messages) == 1:
        return "The answer is short; it mentions 2 things."
    return "[[7]]" if "春节" in messages[0]["content"] else "Score: 9"


def test_single_scores_reasks_reports_and_resumes(tiny_model_dir: Path, make_dataset: Any, data_dir: Path,
                                                  tmp_path: Path) -> None:
    make_dataset(ROWS)
    out = tmp_path / "eval"
    with fault_server(["429", "500"], answer=grader) as server:
        score = evaluate(config(tiny_model_dir, data_dir, out, server.base_url, reask=2,
                                judge_price_input=1.0, judge_price_output=2.0))["model"]["judged"]
        first_requests = len(server.received)
        assert score.unextracted == ["demo:2"]  # never readable: reported, not dropped
        assert score.metrics == {"judge-mean": 8.0, "judge-std": pytest.approx(2 ** 0.5), "judge-top": 50.0,
                                 "judge-low": 0.0}
        assert score.details["distribution"] == {"7": 1, "9": 1}
        rows = [json.loads(line) for line in (out / "model" / "judged" / "rows.jsonl").read_text("utf-8").splitlines()]
        assert [r["score"] for r in rows] == [7.0, None, 9.0] and rows[1]["unparsed"] is True
        assert [r["attempts"] for r in rows] == [2, 3, 2] and rows[2]["reason"] == "Score: 9"
        assert sum(r["score"] for r in rows if r["score"] is not None) / 2 == score.metrics["judge-mean"]
        usage = score.details["judge_usage"]
        assert usage["retries"] == 2 and usage["requests"] == first_requests == 9  # 3 + 2 re-asks + 2 + 2 faults
        assert usage["cost"] > 0
        assert len((out / "judge_cache" / "judged.jsonl").read_text("utf-8").splitlines()) == 7
        assert (out / "judged_judge.png").stat().st_size > 5000
        summary = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))
        assert summary["results"]["model"]["judged"]["unextracted_ids"] == ["demo:2"]
        assert "judge-mean (score on the task's scale)" in (out / "eval_results.md").read_text(encoding="utf-8")

        again = evaluate(config(tiny_model_dir, data_dir, out, server.base_url, reask=2))["model"]["judged"]
        assert len(server.received) == first_requests  # everything came from the cache
        assert again.metrics == score.metrics
        more = evaluate(config(tiny_model_dir, data_dir, out, server.base_url, reask=3))["model"]["judged"]
        assert len(server.received) == first_requests + 1  # one more re-ask allowed: only that is asked
        assert more.unextracted == ["demo:2"]


def test_a_failed_request_is_reported_and_asked_on_the_next_run(tiny_model_dir: Path, make_dataset: Any,
                                                                 data_dir: Path, tmp_path: Path) -> None:
    make_dataset(ROWS[:1])
    out = tmp_path / "eval"
    with fault_server(["500"] * 3, answer=lambda messages: "[[6]]") as server:
        score = evaluate(config(tiny_model_dir, data_dir, out, server.base_url, judge_max_retries=2))["model"]["judged"]
        assert score.unextracted == ["demo:1"] and "failed 3 times" in str(score.rows[0]["reason"])
        assert score.details["judge_failed_requests"] == 1
        score = evaluate(config(tiny_model_dir, data_dir, out, server.base_url))["model"]["judged"]
        assert score.unextracted == [] and score.metrics["judge-mean"] == 6.0


def test_pairwise_asks_both_orders_and_cancels_position_bias(tiny_model_dir: Path, make_dataset: Any,
                                                             data_dir: Path, tmp_path: Path) -> None:
    make_dataset(ROWS[:2])
    out = tmp_path / "eval"
    models = [{"name": "base"}, {"name": "tuned", "model_name_or_path": str(tiny_model_dir)}]
    with fault_server(answer=lambda messages: "Answer A is better. [[A]]") as server:
        run = config(tiny_model_dir, data_dir, out, server.base_url, mode="pairwise", rubric="zh")
        results = evaluate(run.model_copy(update={"eval": run.eval.model_copy(update={"eval_models": models})}),
                           compare=True)
        prompts = [body["messages"][0]["content"] for body in server.received]
    tuned = results["tuned"]["judged"]
    # the same weights give the same answers: both orders are one question each row, and "always A" is a tie
    assert len(prompts) == 2 and all("[回答 A]" in p for p in prompts)
    assert tuned.metrics == {"win": 0.0, "tie": 100.0, "loss": 0.0}
    assert tuned.details["against"] == "base" and tuned.details["position_bias_rows"] == 2
    assert results["base"]["judged"].metrics == {} and results["base"]["judged"].details["baseline"] is True
    table = (out / "eval_results.md").read_text(encoding="utf-8")
    assert "| base | - |" in table and "| tuned | 0.00 / 100.00 / 0.00 |" in table
    assert (out / "judged_judge.png").is_file()


def test_pairwise_without_a_second_model_stops_before_loading(tiny_model_dir: Path, make_dataset: Any,
                                                              data_dir: Path, tmp_path: Path) -> None:
    make_dataset(ROWS)
    run = config(tiny_model_dir, data_dir, tmp_path / "eval", "http://127.0.0.1:9/v1", mode="pairwise")
    with pytest.raises(EvalError, match="mode pairwise compares two models.*--compare"):
        evaluate(run)
    assert not (tmp_path / "eval" / "model").exists()


def test_a_budget_stops_the_asking_and_the_rest_is_reported(tiny_model_dir: Path, make_dataset: Any,
                                                            data_dir: Path, tmp_path: Path) -> None:
    make_dataset(ROWS)
    out = tmp_path / "eval"
    with fault_server(answer=lambda messages: "[[5]]") as server:
        run = config(tiny_model_dir, data_dir, out, server.base_url, judge_concurrency=1, judge_max_tokens_total=1)
        score = evaluate(run)["model"]["judged"]
        assert len(server.received) == 1  # the first reply spent the budget: nothing more was sent
        assert score.details["judged"] == 1 and len(score.unextracted) == 2
        assert "token budget" in str(score.details["judge_stopped"]) and "2 of 3 rows" in str(score.details["hint"])
        assert all("token budget" in str(r["reason"]) for r in score.rows if r["score"] is None)
        again = evaluate(config(tiny_model_dir, data_dir, out, server.base_url))["model"]["judged"]
        assert len(server.received) == 3 and again.unextracted == []  # only the two not asked


def test_max_cost_needs_prices(data_dir: Path, tmp_path: Path) -> None:
    from tunelab.config.errors import ConfigError

    with pytest.raises(ConfigError, match="judge_max_cost needs the prices"):
        config(tmp_path, data_dir, tmp_path, "http://127.0.0.1:9/v1", judge_max_cost=1.0)
