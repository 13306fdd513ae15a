"""LLaMA-Factory prediction YAMLs (do_predict, predict_with_generate) as `tunelab train` validates them."""

from __future__ import annotations

import pytest

from tunelab.config.checks import checks_for, run_checks
from tunelab.config.errors import ConfigError
from tunelab.config.load import build, load_config
from tunelab.config.schema import SECTIONS

# LLaMA-Factory's examples/train_lora/llama3_lora_predict.yaml, on the embedded model: no do_train key, and
# no training dataset
LF_PREDICT_YAML = """\
### model
model_name_or_path: smollm2-135m-instruct
adapter_name_or_path: saves/smollm2/lora/sft

### method
stage: sft
do_predict: true
finetuning_type: lora

### dataset
eval_dataset: identity
template: smollm2
cutoff_len: 2048
max_samples: 50
overwrite_cache: true
preprocessing_num_workers: 16

### output
output_dir: saves/smollm2/lora/predict
overwrite_output_dir: true

### eval
per_device_eval_batch_size: 1
predict_with_generate: true
ddp_timeout: 180000000
"""
PREDICT = {"model_name_or_path": "tiny", "output_dir": "out", "eval_dataset": "test", "do_predict": True,
           "predict_with_generate": True}


def problems(flat: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ConfigError) as excinfo:
        build(flat, "train")
    return {p.key: p.message for p in excinfo.value.problems}


def test_a_llamafactory_prediction_yaml_validates_and_only_predicts(tmp_path) -> None:
    path = tmp_path / "predict.yaml"
    path.write_text(LF_PREDICT_YAML, encoding="utf-8")
    config = load_config(path, purpose="train")
    assert config.method.do_predict and config.eval.predict_with_generate
    assert config.method.do_train is False  # LLaMA-Factory's do_train defaults to false
    assert config.data.dataset is None and config.data.eval_dataset == "identity"


def test_do_train_true_with_do_predict_trains_then_predicts() -> None:
    config = build({**PREDICT, "do_train": True, "dataset": "train"}, "train")
    assert config.method.do_train and config.method.do_predict


def test_training_settings_are_not_checked_when_only_predicting() -> None:
    # training alone would refuse these (eval_strategy without evaluation data, bf16 with fp16, max_steps 0)
    config = build({**PREDICT, "eval_strategy": "steps", "max_steps": 0, "nnodes": 2}, "train")
    assert config.method.do_train is False
    sections = {name: getattr(config, name) for name in SECTIONS}
    run = run_checks(sections, checks_for("train", predict_only=True))
    assert run.problems == [] and run.skipped == []
    assert run.ran[-7:] == ["predict_check", "required_for_training", "lora_only_check", "adapter_check",
                            "predict_names_check", "infer_dtype_check", "backend_check"]


@pytest.mark.parametrize(("flat", "expected"), [
    ({**PREDICT, "predict_with_generate": False},
     {"do_predict": "predictions are generated answers: set predict_with_generate: true (LLaMA-Factory requires "
                    "it too)"}),
    ({**PREDICT, "do_predict": False, "dataset": "train"},
     {"predict_with_generate": "tunelab generates only for do_predict, not at the evaluations during training: "
                               "set do_predict: true, or remove it"}),
    ({**PREDICT, "eval_dataset": None},
     {"eval_dataset": "do_predict answers the rows of eval_dataset: name them, e.g. eval_dataset: identity"}),
    ({**PREDICT, "stage": "pt"},
     {"do_predict": "predictions need stage sft (answers) or rm (pair scores), not pt: set one of them, or remove "
                    "do_predict"}),
    ({**PREDICT, "stage": "rm"},
     {"predict_with_generate": "stage rm scores pairs, it does not generate: remove predict_with_generate "
                               "(LLaMA-Factory refuses it too)"}),
    ({**PREDICT, "output_dir": None},
     {"output_dir": "required for do_predict (its files are written there); e.g. output_dir: saves/my-run"}),
    ({**PREDICT, "do_train": True},
     {"dataset": "required for training; name entries of data/dataset_info.json, e.g. dataset: identity"}),
    ({**PREDICT, "do_predict": False, "predict_with_generate": False, "do_train": False, "dataset": "train"},
     {"do_train": "false, but `tunelab train` trains; set do_train: true (or do_predict: true to only answer "
                  "eval_dataset)"}),
])
def test_prediction_problems_name_the_key_and_the_fix(flat: dict[str, object], expected: dict[str, str]) -> None:
    assert problems(flat) == expected


def test_the_keys_are_no_longer_refused_as_unsupported() -> None:
    found = problems({**PREDICT, "predict_with_generate": "maybe"})
    assert list(found) == ["predict_with_generate"] and "not support" not in found["predict_with_generate"]


def test_a_reward_model_predicts_pair_scores_without_generating() -> None:
    config = build({**PREDICT, "stage": "rm", "predict_with_generate": False}, "train")
    assert config.method.do_predict and config.method.stage == "rm"
