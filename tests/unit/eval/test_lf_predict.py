"""do_predict's pieces: which model is asked, the predict_results.json keys, scores equal `tunelab eval score`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config.load import build
from tunelab.eval.errors import EvalError
from tunelab.eval.lf_predict import clear_outputs, prediction_config, predict_results, score_predictions
from tunelab.interfaces.cli import main

BASE = {"model_name_or_path": "base", "output_dir": "out", "eval_dataset": "test", "do_predict": True,
        "predict_with_generate": True}
ROWS = [{"prompt": "p1", "predict": "今天天气很好，我们去公园。",
         "label": "今天天气不错，我们去公园玩吧。"},
        {"prompt": "p2", "predict": "", "label": "参考答案"},
        {"prompt": "p3", "predict": "The cat sat on the mat.", "label": "The cat is on the mat."}]
# the figures of LLaMA-Factory's predict_results.json (transformers' save_metrics, sorted keys)
LF_KEYS = ["predict_bleu-4", "predict_model_preparation_time", "predict_rouge-1", "predict_rouge-2",
           "predict_rouge-l", "predict_runtime", "predict_samples_per_second", "predict_steps_per_second"]


def models(flat: dict[str, object], trained: bool) -> tuple[str, str | None]:
    config = prediction_config(build({**BASE, **flat}, "train"), trained)
    return config.model.model_name_or_path, config.model.adapter_name_or_path


def test_without_training_the_named_model_and_adapter_are_asked() -> None:
    assert models({}, trained=False) == ("base", None)
    assert models({"adapter_name_or_path": "a"}, trained=False) == ("base", "a")


def test_after_training_the_saved_result_is_asked() -> None:
    train = {"do_train": True, "dataset": "d"}
    assert models(train, trained=True) == ("base", "out")
    assert models({**train, "adapter_name_or_path": "a"}, trained=True) == ("base", "out")  # continued: out holds it
    assert models({**train, "adapter_name_or_path": "a,b", "create_new_adapter": True}, trained=True) == (
        "base", "a,b,out")
    assert models({**train, "finetuning_type": "full"}, trained=True) == ("out", None)
    assert models({**train, "finetuning_type": "freeze"}, trained=True) == ("out", None)


def test_results_carry_llamafactory_key_names_and_rounding() -> None:
    results = predict_results({"bleu-4": 12.345678, "rouge-1": 1.0, "rouge-2": 2.0, "rouge-l": 3.0}, rows=3,
                              batch_size=2, runtime=1.234567891, load_seconds=0.123456)
    assert list(results) == LF_KEYS
    assert results["predict_bleu-4"] == 12.345678  # a mean, unrounded, as LLaMA-Factory writes it
    assert results["predict_runtime"] == 1.2346 and results["predict_model_preparation_time"] == 0.1235
    assert results["predict_samples_per_second"] == round(3 / 1.234567891, 3)
    assert results["predict_steps_per_second"] == round(2 / 1.234567891, 3)  # 2 batches of at most 2 rows


def test_scores_equal_tunelab_eval_score(tmp_path: Path) -> None:
    path = tmp_path / "generated_predictions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    scores = score_predictions(path)
    assert main(["eval", "score", str(path), "--json", str(tmp_path / "s.json")]) == 0
    printed = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["metrics"]
    assert list(scores) == ["bleu-4", "rouge-1", "rouge-2", "rouge-l"]
    assert {name: round(value, 4) for name, value in scores.items()} == printed


def test_an_earlier_prediction_is_refused_or_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "generated_predictions.jsonl").write_text("{}\n")
    (out / "predict_results.json").write_text("{}")
    config = build({**BASE, "output_dir": str(out)}, "train")
    with pytest.raises(EvalError, match="already holds generated_predictions.jsonl, predict_results.json of an "
                                        "earlier prediction; set overwrite_output_dir: true"):
        clear_outputs(config)
    assert (out / "generated_predictions.jsonl").exists()
    clear_outputs(build({**BASE, "output_dir": str(out), "overwrite_output_dir": True}, "train"))
    assert not any(out.iterdir())
    clear_outputs(config)  # nothing there: nothing to do
