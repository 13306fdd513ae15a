"""`tunelab train predict.yaml` with LLaMA-Factory's do_predict: generated_predictions.jsonl and predict_results.json
(BLEU-4/ROUGE under LLaMA-Factory's key names), scored as `tunelab eval score` scores the same file."""

from __future__ import annotations

import json

from .clirun import tunelab

# LLaMA-Factory's examples/train_lora/llama3_lora_predict.yaml on the embedded model: no do_train key, no adapter
PREDICT_YAML = """\
### model
model_name_or_path: smollm2-135m-instruct

### method
stage: sft
do_predict: true
finetuning_type: lora

### dataset
eval_dataset: identity
dataset_dir: examples/data
template: smollm2
cutoff_len: 2048
max_samples: 3
overwrite_cache: true

### output
output_dir: {out}
overwrite_output_dir: true

### eval
per_device_eval_batch_size: 2
predict_with_generate: true
max_new_tokens: 8
"""
LF_KEYS = ["predict_bleu-4", "predict_model_preparation_time", "predict_rouge-1", "predict_rouge-2",
           "predict_rouge-l", "predict_runtime", "predict_samples_per_second", "predict_steps_per_second"]


def write_yaml(tmp_path, out):
    path = tmp_path / "predict.yaml"
    path.write_text(PREDICT_YAML.format(out=out), encoding="utf-8")
    return path


def same_as_eval_score(tmp_path, out, results):
    scored = tunelab("eval", "score", str(out / "generated_predictions.jsonl"), "--json", str(tmp_path / "s.json"))
    assert scored.returncode == 0, scored.stderr[-2000:]
    metrics = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["metrics"]
    assert {name: round(results[f"predict_{name}"], 4) for name in metrics} == metrics


def test_a_prediction_yaml_answers_and_scores_without_training(tmp_path):
    out = tmp_path / "predict"
    result = tunelab("train", str(write_yaml(tmp_path, out)))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["identity:1", "identity:2", "identity:3"]
    assert all({"prompt", "predict", "label"} <= set(r) for r in rows)
    assert rows[0]["prompt"].endswith("<|im_start|>assistant\n") and all(r["predict"] for r in rows)
    results = json.loads((out / "predict_results.json").read_text(encoding="utf-8"))
    assert list(results) == LF_KEYS
    assert results["predict_runtime"] > 0 and results["predict_samples_per_second"] > 0
    same_as_eval_score(tmp_path, out, results)
    # nothing was trained: no adapter, no training files
    assert not (out / "adapter_config.json").exists() and not (out / "train_results.json").exists()
    assert "do_predict: answering identity with smollm2-135m-instruct\n" in result.stderr
    assert "predict: bleu-4 " in result.stderr
    # run again without overwrite_output_dir: refused, the earlier answers kept
    again = tunelab("train", str(write_yaml(tmp_path, out)), "overwrite_output_dir=false")
    assert again.returncode == 1 and "already holds generated_predictions.jsonl" in again.stderr
    assert "Traceback" not in again.stderr


def test_do_train_then_predict_asks_the_trained_adapter(tmp_path):
    out = tmp_path / "run"
    result = tunelab("train", str(write_yaml(tmp_path, out)), "do_train=true", "dataset=identity", "max_steps=1",
                     "per_device_train_batch_size=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "adapter_config.json").exists() and (out / "train_results.json").exists()
    assert f"do_predict: answering identity with smollm2-135m-instruct + {out}" in result.stderr
    results = json.loads((out / "predict_results.json").read_text(encoding="utf-8"))
    assert list(results) == LF_KEYS
    same_as_eval_score(tmp_path, out, results)
