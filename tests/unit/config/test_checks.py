"""Cross checks: problems that need several keys, reported with their fix; training-only ones only for training."""

from __future__ import annotations

import pytest

from tunelab.config.errors import ConfigError, Problem
from tunelab.config.load import build

MINIMAL = {"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out"}


def problems(flat: dict[str, object], purpose: str = "train") -> dict[str, str]:
    with pytest.raises(ConfigError) as excinfo:
        build(flat, purpose)  # type: ignore[arg-type]
    return {p.key: p.message for p in excinfo.value.problems}


def test_bf16_and_fp16_together() -> None:
    assert problems({**MINIMAL, "bf16": True, "fp16": True}) == {"bf16": "bf16 and fp16 are both true; keep one"}


def test_eval_strategy_without_val_size() -> None:
    assert problems({**MINIMAL, "eval_strategy": "steps"}) == {
        "eval_strategy": "'steps' needs evaluation data; set val_size (e.g. 0.1) or eval_dataset, or eval_strategy: "
                         "no"}
    assert build({**MINIMAL, "eval_strategy": "steps", "val_size": 0.1}).eval.eval_strategy == "steps"


@pytest.mark.parametrize("stage", ["dpo", "kto", "rm", "ppo"])
def test_stages_this_version_does_not_train(stage: str) -> None:
    assert problems({**MINIMAL, "stage": stage}) == {
        "stage": f"stage {stage!r} is not available in this version of tunelab; use one of: pt, sft"}


def test_neat_packing_is_for_sft() -> None:
    assert set(problems({**MINIMAL, "stage": "pt", "neat_packing": True})) == {"neat_packing"}
    assert set(problems({**MINIMAL, "neat_packing": True, "packing": False})) == {"neat_packing"}
    assert build({**MINIMAL, "neat_packing": True}, "train").data.neat_packing


def test_unknown_tool_format() -> None:
    assert problems({**MINIMAL, "tool_format": "hermes"})["tool_format"].startswith("unknown tool format 'hermes'")


def test_unsupported_finetuning_type_is_reported_for_inference_too() -> None:
    assert problems({"model_name_or_path": "tiny", "finetuning_type": "full"}, "infer") == {
        "finetuning_type": "'full' is not available in this version of tunelab; use one of: lora"}


def test_training_needs_output_dir_and_dataset() -> None:
    assert problems({"model_name_or_path": "tiny"}) == {
        "output_dir": "required for training; e.g. output_dir: saves/my-run",
        "dataset": "required for training; name entries of data/dataset_info.json, e.g. dataset: identity"}


def test_dataset_hint_names_the_configured_dataset_dir() -> None:
    message = problems({"model_name_or_path": "tiny", "output_dir": "o", "dataset_dir": "examples/data"})["dataset"]
    assert "examples/data/dataset_info.json" in message


def test_inference_needs_neither_output_dir_nor_dataset() -> None:
    config = build({"model_name_or_path": "tiny", "eval_strategy": "steps", "bf16": True, "fp16": True}, "infer")
    assert config.train.output_dir is None and config.data.dataset is None


@pytest.mark.parametrize(("flat", "key", "message"), [
    ({"do_train": False}, "do_train", "false, but `tunelab train` trains; set do_train: true"),
    ({"max_steps": 0}, "max_steps", "must be a positive number of updates, or -1 to use num_train_epochs"),
    ({"max_steps": -5}, "max_steps", "must be a positive number of updates, or -1 to use num_train_epochs"),
    ({"val_size": 2.5}, "val_size", "2.5 is neither a fraction below 1 nor a whole row count"),
    ({"gradient_checkpointing": True, "disable_gradient_checkpointing": True}, "gradient_checkpointing",
     "true, but disable_gradient_checkpointing is true too; keep one"),
])
def test_training_combinations(flat: dict[str, object], key: str, message: str) -> None:
    assert problems({**MINIMAL, **flat}) == {key: message}


@pytest.mark.parametrize("val_size", [0.0, 0.5, 1.0, 3.0])
def test_val_size_fractions_and_whole_counts_are_fine(val_size: float) -> None:
    assert build({**MINIMAL, "val_size": val_size}).data.val_size == val_size


def test_all_cross_check_problems_are_reported_together() -> None:
    found = problems({"model_name_or_path": "tiny", "stage": "dpo", "bf16": True, "fp16": True, "max_steps": 0,
                      "eval_strategy": "epoch"})
    assert list(found) == ["stage", "output_dir", "dataset", "bf16", "max_steps", "eval_strategy"]


def test_config_error_renders_every_problem_under_a_count() -> None:
    error = ConfigError([Problem("a", "first"), Problem("b", "second")], source="run.yaml")
    assert str(error) == "the config run.yaml has 2 problems\n  a: first\n  b: second"
    assert ConfigError([Problem("a", "only")]).render() == "the config has 1 problem\n  a: only"


def test_mixing_keys_are_accepted_when_consistent() -> None:
    config = build({**MINIMAL, "dataset": "a,b", "mix_strategy": "interleave_over", "interleave_probs": "0.7, 0.3",
                    "eval_dataset": "c", "eval_on_each_dataset": True, "eval_strategy": "steps",
                    "tokenized_path": "tok"})
    assert config.data.mix_strategy == "interleave_over" and config.eval.eval_strategy == "steps"


@pytest.mark.parametrize(("extra", "key", "start"), [
    ({"interleave_probs": "0.5,0.5"}, "interleave_probs", "only used when interleaving"),
    ({"mix_strategy": "interleave_under", "interleave_probs": "0.5,0.4"}, "interleave_probs", "0.5, 0.4 must be"),
    ({"mix_strategy": "interleave_under", "interleave_probs": "1"}, "interleave_probs", "1 probabilities for 2"),
    ({"mix_strategy": "interleave_under", "interleave_probs": "a,b"}, "interleave_probs", "'a,b' is not a comma"),
    ({"eval_dataset": "c", "val_size": 0.1}, "val_size", "eval_dataset is set, so no rows"),
    ({"eval_on_each_dataset": True}, "eval_on_each_dataset", "needs eval_dataset"),
    ({"streaming": True, "max_steps": 10, "val_size": 0.1}, "val_size", "0.1 is a fraction, but a stream"),
    ({"streaming": True}, "max_steps", "streaming reads data of unknown length"),
])
def test_mixing_and_streaming_problems(extra: dict[str, object], key: str, start: str) -> None:
    assert problems({**MINIMAL, "dataset": "a,b", **extra})[key].startswith(start)
