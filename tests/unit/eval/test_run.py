"""`tunelab eval` end to end on the tiny model: tasks, --compare, reuse of predictions, bad input first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.data.errors import DataError
from tunelab.eval.errors import EvalError
from tunelab.eval.reuse import DECODING_VERSION, FINGERPRINT
from tunelab.eval.run import evaluate

ROWS = [{"instruction": "评价：很好用", "output": "正面"}, {"instruction": "评价：太差了", "output": "负面"},
        {"instruction": "Say hi", "output": "hi there"}]


def eval_config(tiny_model_dir: Path, data_dir: Path, out: Path, **extra: Any) -> Any:
    flat = {"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir), "output_dir": str(out),
            "max_new_tokens": 4, "per_device_eval_batch_size": 2, "cutoff_len": 64,
            "eval_tasks": [
                {"name": "gen", "type": "generation", "dataset": "demo"},
                {"name": "cls", "type": "classification", "dataset": "demo", "labels": ["正面", "负面"]},
                {"name": "ppl", "type": "perplexity", "dataset": "text"},
            ], **extra}
    return build(flat, purpose="eval")


@pytest.fixture
def datasets(make_dataset: Any, data_dir: Path) -> Path:
    make_dataset(ROWS)
    make_dataset([{"text": "今天天气很好。"}, {"text": "hello world " * 30}], name="text", file_name="text.json",
                 entry={"columns": {"prompt": "text"}})
    return data_dir


def test_compare_writes_the_table_rows_and_plot(tiny_model_dir: Path, datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    models = [{"name": "a"}, {"name": "b", "model_name_or_path": str(tiny_model_dir)}]
    results = evaluate(eval_config(tiny_model_dir, datasets, out, eval_models=models), compare=True)
    assert list(results) == ["a", "b"]
    gen = results["a"]["gen"]
    assert gen.scored == 3 and set(gen.metrics) == {"bleu-4", "rouge-1", "rouge-2", "rouge-l"}
    assert results["a"]["ppl"].metrics["perplexity"] > 1
    # same weights, greedy decoding: both models give the same numbers
    assert results["a"]["cls"].metrics == results["b"]["cls"].metrics
    summary = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))
    assert summary["models"] == ["a", "b"] and summary["results"]["b"]["cls"]["scored"] == 3
    table = (out / "eval_results.md").read_text(encoding="utf-8")
    assert "|  | gen | cls | ppl |" in table and "bleu-4 / rouge-1 / rouge-2 / rouge-l" in table
    assert (out / "eval_results.png").stat().st_size > 1000
    rows = [json.loads(line) for line in (out / "rows" / "cls.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["demo:1", "demo:2", "demo:3"]
    assert set(rows[0]["models"]) == {"a", "b"} and rows[0]["changed"] is False
    assert (out / "a" / "gen" / "generated_predictions.jsonl").is_file()


def test_predictions_are_reused_until_a_setting_changes(tiny_model_dir: Path, datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    config = eval_config(tiny_model_dir, datasets, out)
    evaluate(config)
    predictions = out / "model" / "gen" / "generated_predictions.jsonl"
    first = predictions.read_text(encoding="utf-8")
    predictions.write_text(first.replace('"predict": "', '"predict": "MARK'), encoding="utf-8")
    evaluate(config)  # same settings: the file is reused as it is
    assert "MARK" in predictions.read_text(encoding="utf-8")
    evaluate(eval_config(tiny_model_dir, datasets, out, max_new_tokens=3))
    assert "MARK" not in predictions.read_text(encoding="utf-8")
    assert json.loads((out / "model" / "gen" / FINGERPRINT).read_text())["generation"]["max_new_tokens"] == 3



def test_predictions_from_an_older_decoding_are_made_again(tiny_model_dir: Path, datasets: Path,
                                                           tmp_path: Path) -> None:
    """Predictions written before answers cut inside a character were mended (no `decoding` stamp) are not reused."""
    out = tmp_path / "eval"
    config = eval_config(tiny_model_dir, datasets, out)
    evaluate(config)
    folder = out / "model" / "gen"
    stamp = json.loads((folder / FINGERPRINT).read_text())
    assert stamp["decoding"] == DECODING_VERSION
    del stamp["decoding"]
    (folder / FINGERPRINT).write_text(json.dumps(stamp))
    predictions = folder / "generated_predictions.jsonl"
    predictions.write_text(predictions.read_text(encoding="utf-8").replace('"predict": "', '"predict": "MARK'),
                           encoding="utf-8")
    evaluate(config)
    assert "MARK" not in predictions.read_text(encoding="utf-8")

def test_predictions_file_is_scored_without_the_model(datasets: Path, tmp_path: Path) -> None:
    lines = [{"prompt": "p", "predict": r["output"], "label": r["output"]} for r in ROWS]
    path = tmp_path / "generated_predictions.jsonl"
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines), encoding="utf-8")
    config = build({"model_name_or_path": "not/loaded", "dataset_dir": str(datasets), "output_dir": str(tmp_path / "o"),
                    "eval_tasks": [{"name": "gen", "type": "generation", "dataset": "demo", "predictions": str(path),
                                    "metrics": ["exact-match", "bleu-4"]}]}, purpose="eval")
    results = evaluate(config)
    assert results["model"]["gen"].metrics["exact-match"] == pytest.approx(100.0)
    # character BLEU-4 of a 2-character answer is below 100 even when exact (no 3- and 4-grams): LF's numbers
    assert results["model"]["gen"].rows[0]["bleu-4"] == pytest.approx(59.4604)


def test_rows_without_references_stop_before_the_model_loads(make_dataset: Any, data_dir: Path, tmp_path: Path) -> None:
    make_dataset([{"instruction": "q1", "output": "a"}, {"instruction": "q2", "output": " "}])
    config = build({"model_name_or_path": "not/loaded", "dataset_dir": str(data_dir), "output_dir": str(tmp_path),
                    "eval_tasks": [{"name": "g", "type": "generation", "dataset": "demo"}]}, purpose="eval")
    with pytest.raises(DataError, match="row 2, field output: the response is empty"):
        evaluate(config)
    make_dataset([{"instruction": "q1", "output": "甲"}, {"instruction": "q2", "output": "no letter"}])
    choice = build({"model_name_or_path": "not/loaded", "dataset_dir": str(data_dir), "output_dir": str(tmp_path),
                    "eval_tasks": [{"name": "c", "type": "choice", "dataset": "demo"}]}, purpose="eval")
    with pytest.raises(EvalError, match="row demo:1: the reference answer '甲' cannot be read by the choice extractor"):
        evaluate(choice)


def test_compare_needs_models(datasets: Path, tmp_path: Path) -> None:
    config = build({"model_name_or_path": "m", "dataset_dir": str(datasets), "output_dir": str(tmp_path),
                    "eval_tasks": [{"name": "g", "type": "generation", "dataset": "demo"}]}, purpose="eval")
    with pytest.raises(EvalError, match="--compare needs models") as caught:
        evaluate(config, compare=True)
    assert "model_name_or_path: <its output_dir>" in str(caught.value)  # how to compare a freeze/full run


def test_config_problems_are_reported_together() -> None:
    tasks = [
        {"name": "a", "type": "classification", "dataset": "d", "metrics": ["bleu-4"]},
        {"name": "a", "type": "generation", "extractor": {"name": "regex", "pattern": "(["}},
        {"name": "c", "type": "choice_logits", "labels": ["x"]},
        {"name": "d/e", "type": "ranking", "dataset": "d", "metrics": ["ndcg@0", "hit@3"], "colour": 1},
        {"name": "p", "type": "perplexity", "dataset": "d", "extractor": "text"},
    ]
    with pytest.raises(ConfigError) as excinfo:
        build({"model_name_or_path": "m", "eval_tasks": tasks}, purpose="eval")
    text = str(excinfo.value)
    for expected in ["output_dir: required", "eval_tasks[3].colour: extra inputs are not permitted",
                     "the name 'a' is used twice", "'bleu-4' does not fit a classification task",
                     "eval_tasks[1] (a): dataset is required", "eval_tasks[1] (a).extractor: regex pattern '([' does not compile",
                     "eval_tasks[2] (c): task_dir is required", "labels and aliases apply to classification tasks only",
                     "eval_tasks[4] (p).extractor: a perplexity task generates no text"]:
        assert expected in text, expected
    with pytest.raises(ConfigError, match="eval_tasks: required for `tunelab eval`"):
        build({"model_name_or_path": "m", "output_dir": "o"}, purpose="eval")


def test_too_few_dev_rows_stop_before_the_model_loads(tmp_path: Path) -> None:
    from tunelab.eval.choice import ChoiceError

    folder = Path(__file__).resolve().parents[3] / "examples" / "data" / "mmlu_mini"  # 2 dev rows per subject
    config = build({"model_name_or_path": "not/loaded", "output_dir": str(tmp_path),
                    "eval_tasks": [{"name": "m", "type": "choice_logits", "task_dir": str(folder), "n_shot": 3}]},
                   purpose="eval")
    with pytest.raises(ChoiceError, match="2 dev rows .* but n_shot is 3"):
        evaluate(config)


def test_generation_tasks_on_two_processes_answer_like_one(tiny_model_dir: Path, datasets: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """nproc_per_node: 2 runs the task's rows through predict_parallel; torchrun is stood in for by running both
    workers here, one after the other, with torchrun's RANK and WORLD_SIZE."""
    from types import SimpleNamespace

    from tunelab.infer import shard, shard_worker

    def fake_torchrun(command: list[str], env: dict[str, str]) -> SimpleNamespace:
        processes = int(command[command.index("--nproc_per_node") + 1])
        for rank in range(processes):
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORLD_SIZE", str(processes))
            assert shard_worker.main(command[command.index("tunelab.infer.shard_worker") + 1:]) == 0
        monkeypatch.delenv("RANK")
        monkeypatch.delenv("WORLD_SIZE")
        return SimpleNamespace(returncode=0)

    monkeypatch.setattr(shard.subprocess, "run", fake_torchrun)
    one = evaluate(eval_config(tiny_model_dir, datasets, tmp_path / "one"))
    two = evaluate(eval_config(tiny_model_dir, datasets, tmp_path / "two", nproc_per_node=2))
    assert two["model"]["gen"].metrics == one["model"]["gen"].metrics
    for task in ("gen", "cls"):
        files = [tmp_path / run / "model" / task / "generated_predictions.jsonl" for run in ("one", "two")]
        assert files[0].read_text(encoding="utf-8") == files[1].read_text(encoding="utf-8")
    report = json.loads((tmp_path / "two" / "model" / "gen" / "predict_report.json").read_text())
    assert report["processes"] == 2 and report["written"] == 3
