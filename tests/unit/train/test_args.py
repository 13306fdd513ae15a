"""Our config -> transformers TrainingArguments: the one explicit mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.model.precision import Precision
from tunelab.train.args import eval_settings, report_targets, training_arguments

FLOAT32 = Precision(bf16=False, fp16=False, use_cpu=True, weights="float32", note="")


def arguments(tmp_path: Path, has_eval: bool = False, checkpointing: bool = False, **flat: Any) -> Any:
    config = build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": str(tmp_path / "out"), **flat})
    return training_arguments(config, FLOAT32, has_eval, checkpointing)


def test_training_values_are_mapped(tmp_path: Path) -> None:
    args = arguments(tmp_path, learning_rate=2e-4, per_device_train_batch_size=2, gradient_accumulation_steps=4,
                     num_train_epochs=2.0, max_steps=7, lr_scheduler_type="linear", weight_decay=0.01,
                     max_grad_norm=0.5, seed=3, logging_steps=2, save_steps=5, save_total_limit=1,
                     per_device_eval_batch_size=3, ddp_timeout=60)
    assert args.output_dir == str(tmp_path / "out")
    assert (args.learning_rate, args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2e-4, 2, 4)
    assert (args.num_train_epochs, args.max_steps, args.lr_scheduler_type.value) == (2.0, 7, "linear")
    assert (args.weight_decay, args.max_grad_norm, args.seed, args.data_seed) == (0.01, 0.5, 3, 3)
    assert (args.logging_steps, args.save_steps, args.save_total_limit) == (2, 5, 1)
    assert (args.per_device_eval_batch_size, args.ddp_timeout) == (3, 60)
    assert args.use_cpu and not args.bf16 and not args.fp16
    assert args.remove_unused_columns is False
    assert args.include_num_input_tokens_seen == "non_padding"


def test_warmup_ratio_becomes_a_fraction_of_the_updates(tmp_path: Path) -> None:
    args = arguments(tmp_path, warmup_ratio=0.1)
    assert args.get_warmup_steps(200) == 20


def test_warmup_steps_win_over_warmup_ratio(tmp_path: Path) -> None:
    args = arguments(tmp_path, warmup_ratio=0.1, warmup_steps=7)
    assert args.get_warmup_steps(200) == 7


def test_warmup_ratio_of_one_is_rejected_by_the_config() -> None:
    from tunelab.config.errors import ConfigError
    from tunelab.config.load import build

    with pytest.raises(ConfigError) as excinfo:
        build({"model_name_or_path": "m", "warmup_ratio": 1.0}, purpose="infer")
    assert "warmup_ratio" in str(excinfo.value) and "less than 1" in str(excinfo.value)


def test_disable_shuffling_samples_in_order(tmp_path: Path) -> None:
    assert arguments(tmp_path, disable_shuffling=True).train_sampling_strategy == "sequential"
    assert arguments(tmp_path).train_sampling_strategy == "random"


@pytest.mark.parametrize(("value", "expected"), [
    ("none", "none"), ("", "none"), ("tensorboard", ["tensorboard"]), ("wandb, tensorboard", ["wandb", "tensorboard"]),
    ("none,tensorboard", ["tensorboard"]),
])
def test_report_targets(value: str, expected: Any) -> None:
    assert report_targets(value) == expected


def test_report_to_reaches_the_arguments(tmp_path: Path) -> None:
    assert arguments(tmp_path, report_to="tensorboard").report_to == ["tensorboard"]
    assert arguments(tmp_path).report_to == []  # transformers reads "none" as no trackers


def test_eval_every_n_steps_defaults_to_logging_steps(tmp_path: Path) -> None:
    args = arguments(tmp_path, has_eval=True, eval_strategy="steps", val_size=0.1, logging_steps=3)
    assert (args.eval_strategy.value, args.eval_steps) == ("steps", 3)
    args = arguments(tmp_path, has_eval=True, eval_strategy="steps", val_size=0.1, eval_steps=9)
    assert args.eval_steps == 9


def test_no_evaluation_schedule_without_eval_data_or_with_strategy_no(tmp_path: Path) -> None:
    assert arguments(tmp_path, has_eval=False, eval_strategy="steps", val_size=0.1).eval_strategy.value == "no"
    assert arguments(tmp_path, has_eval=True, val_size=0.1).eval_strategy.value == "no"


def test_eval_settings_by_epoch() -> None:
    config = build({"model_name_or_path": "tiny", "dataset": "d", "output_dir": "o", "eval_strategy": "epoch",
                    "val_size": 0.2})
    assert eval_settings(config, has_eval=True) == {"eval_strategy": "epoch", "eval_steps": 10}


def test_gradient_checkpointing_is_non_reentrant(tmp_path: Path) -> None:
    args = arguments(tmp_path, checkpointing=True)
    assert args.gradient_checkpointing is True
    assert args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert arguments(tmp_path).gradient_checkpointing is False


def test_token_counting_follows_the_batch_layout(tmp_path: Path) -> None:
    from tunelab.config.load import build
    from tunelab.train.args import training_arguments
    from tunelab.model.precision import Precision

    config = build({"model_name_or_path": "m", "dataset": "d", "output_dir": str(tmp_path)})
    fp32 = Precision(False, False, True, "float32", "")
    assert training_arguments(config, fp32, False, False, padding_free=True).include_num_input_tokens_seen == "all"
    assert training_arguments(config, fp32, False, False).include_num_input_tokens_seen == "non_padding"


def test_new_training_keys_are_mapped(tmp_path: Path) -> None:
    args = arguments(tmp_path, neftune_noise_alpha=5, adam_beta2=0.95, adam_epsilon=1e-6, save_only_model=True)
    assert (args.neftune_noise_alpha, args.adam_beta2, args.adam_epsilon, args.save_only_model) == (5, 0.95, 1e-6,
                                                                                                     True)
    assert args.restore_callback_states_from_checkpoint  # early stopping and token counts survive a resume


def test_best_model_settings(tmp_path: Path) -> None:
    args = arguments(tmp_path, has_eval=True, val_size=0.1, eval_strategy="steps", eval_steps=5, save_steps=10,
                     load_best_model_at_end=True)
    assert (args.load_best_model_at_end, args.metric_for_best_model, args.greater_is_better) == (True, "eval_loss",
                                                                                                 False)
    args = arguments(tmp_path, has_eval=True, val_size=0.1, eval_strategy="steps", early_stopping_steps=2,
                     compute_accuracy=True, metric_for_best_model="accuracy")
    assert (args.load_best_model_at_end, args.metric_for_best_model, args.greater_is_better) == (False,
                                                                                                 "eval_accuracy", True)


def test_adamw_runs_fused_on_the_cpu(tmp_path: Path) -> None:
    assert arguments(tmp_path).optim.value == "adamw_torch_fused"  # FLOAT32 precision trains on the CPU
    assert arguments(tmp_path, optim="sgd").optim.value == "sgd"
    config = build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": str(tmp_path / "out")})
    gpu = Precision(bf16=False, fp16=False, use_cpu=False, weights="float32", note="")
    assert training_arguments(config, gpu, False, False).optim.value == "adamw_torch"
