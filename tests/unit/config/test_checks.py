"""Cross checks: problems that need several keys, reported with their fix; training-only ones only for training."""

from __future__ import annotations

import inspect

import pytest

import tunelab.eval  # noqa: F401 - registers the eval task kinds that purpose "eval" validates
from tunelab.config import checks
from tunelab.config.checks import CHECKS, Purpose, checks_for, run_checks
from tunelab.config.errors import ConfigError, Problem
from tunelab.config.launch_checks import launch_checks
from tunelab.config.load import build
from tunelab.config.schema import SECTIONS, DataSection, RunConfig, Section, TrainSection

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


def test_an_unknown_stage_lists_the_stages() -> None:
    message = problems({**MINIMAL, "stage": "orpo"})["stage"]
    assert all(repr(stage) in message for stage in ("pt", "sft", "rm", "dpo", "kto", "ppo", "grpo"))


def test_neat_packing_is_for_sft() -> None:
    assert set(problems({**MINIMAL, "stage": "pt", "neat_packing": True})) == {"neat_packing"}
    assert set(problems({**MINIMAL, "neat_packing": True, "packing": False})) == {"neat_packing"}
    assert build({**MINIMAL, "neat_packing": True}, "train").data.neat_packing


def test_unknown_tool_format() -> None:
    assert problems({**MINIMAL, "tool_format": "hermes"})["tool_format"].startswith("unknown tool format 'hermes'")


@pytest.mark.parametrize("method", ["lora", "freeze", "full"])
def test_every_finetuning_type_trains(method: str) -> None:
    assert build({**MINIMAL, "finetuning_type": method}).method.finetuning_type == method


@pytest.mark.parametrize("key,value", [("use_dora", True), ("use_rslora", True), ("pissa_init", True),
                                       ("loraplus_lr_ratio", 16), ("additional_target", "embed_tokens")])
def test_lora_settings_with_another_method(key: str, value: object) -> None:
    assert problems({**MINIMAL, "finetuning_type": "full", key: value}) == {
        key: "a LoRA setting, but finetuning_type is full; remove it or use finetuning_type: lora"}


def test_adapters_need_lora_and_create_new_adapter_needs_adapters() -> None:
    found = problems({**MINIMAL, "finetuning_type": "freeze", "adapter_name_or_path": "saves/a"})
    assert found["adapter_name_or_path"].startswith("adapters are LoRA weights, but finetuning_type is freeze")
    # the fix names the merge that exists: `tunelab export` (issue 16)
    assert "use finetuning_type: lora" in found["adapter_name_or_path"]
    assert "`tunelab export CONFIG export_dir=DIR`" in found["adapter_name_or_path"]
    assert set(problems({**MINIMAL, "create_new_adapter": True})) == {"create_new_adapter"}
    assert set(problems({**MINIMAL, "adapter_name_or_path": "a", "pissa_init": True})) == {"pissa_init"}
    assert build({**MINIMAL, "adapter_name_or_path": "a", "pissa_init": True, "create_new_adapter": True})


def test_pure_bf16_with_fp16() -> None:
    assert set(problems({**MINIMAL, "pure_bf16": True, "fp16": True})) == {"pure_bf16"}


EVALUATED = {**MINIMAL, "val_size": 0.1, "eval_strategy": "steps", "eval_steps": 5, "save_steps": 10}


def test_load_best_model_at_end_needs_matching_checkpoints() -> None:
    assert build({**EVALUATED, "load_best_model_at_end": True}).eval.load_best_model_at_end
    assert set(problems({**MINIMAL, "load_best_model_at_end": True})) == {"load_best_model_at_end"}
    assert problems({**EVALUATED, "load_best_model_at_end": True, "save_steps": 12}) == {
        "save_steps": "12 is not a multiple of eval_steps (5); load_best_model_at_end can only go back to evaluated "
                      "checkpoints"}
    assert set(problems({**EVALUATED, "load_best_model_at_end": True, "save_strategy": "epoch"})) == {"save_strategy"}


def test_early_stopping_and_accuracy_need_evaluations() -> None:
    assert set(problems({**MINIMAL, "early_stopping_steps": 3})) == {"early_stopping_steps"}
    assert set(problems({**MINIMAL, "compute_accuracy": True})) == {"compute_accuracy"}
    assert build({**EVALUATED, "early_stopping_steps": 3}).eval.early_stopping_steps == 3


def test_metric_for_best_model_must_be_reported() -> None:
    stopping = {**EVALUATED, "early_stopping_steps": 2}
    assert problems({**stopping, "metric_for_best_model": "eval_accuracy"}) == {
        "metric_for_best_model": "eval_accuracy needs compute_accuracy: true"}
    assert build({**stopping, "metric_for_best_model": "accuracy", "compute_accuracy": True})
    assert set(problems({**stopping, "metric_for_best_model": "perplexity"})) == {"metric_for_best_model"}
    assert build({**stopping, "stage": "pt", "metric_for_best_model": "eval_perplexity"})
    assert set(problems({**stopping, "metric_for_best_model": "bleu"})) == {"metric_for_best_model"}
    each = {**stopping, "val_size": 0, "eval_dataset": "a,b", "eval_on_each_dataset": True}
    assert "e.g. eval_a_loss" in problems(each)["metric_for_best_model"]
    assert build({**each, "metric_for_best_model": "eval_b_loss"})


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
    ({"do_train": False}, "do_train", "false, but `tunelab train` trains; set do_train: true (or do_predict: true to "
                                      "only answer eval_dataset)"),
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
    found = problems({"model_name_or_path": "tiny", "bf16": True, "fp16": True, "max_steps": 0,
                      "eval_strategy": "epoch"})
    assert list(found) == ["output_dir", "dataset", "bf16", "max_steps", "eval_strategy"]


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


FULL = {**EVALUATED, "compute_accuracy": True, "load_best_model_at_end": True, "early_stopping_steps": 2}
VALID_FOR = {
    "train": FULL,
    "infer": FULL,
    "predict": {**FULL, "eval_dataset": "demo", "val_size": 0},
    "eval": {**MINIMAL, "eval_tasks": [{"name": "answers", "type": "generation", "dataset": "demo"}]},
}


def sections_of(config: RunConfig) -> dict[str, Section]:
    return {name: getattr(config, name) for name in SECTIONS}


@pytest.mark.parametrize("purpose", ["train", "infer", "predict", "eval"])
def test_every_registered_check_runs_on_a_full_valid_config(purpose: Purpose) -> None:
    registered = checks_for(purpose)
    run = run_checks(sections_of(build(VALID_FOR[purpose], purpose)), registered)
    assert run.problems == [] and run.skipped == []
    assert run.ran == [check.name for check in registered]


def test_every_check_function_is_registered() -> None:
    """A function of checks.py that takes only sections and returns problems is a check: it must be in CHECKS."""
    registered = {check.function for group in CHECKS.values() for check in group}
    found = set()
    for function in vars(checks).values():
        if not inspect.isfunction(function) or function.__module__ != checks.__name__:
            continue
        try:
            checks.declare(function)
        except TypeError:
            continue
        if inspect.signature(function).return_annotation == "list[Problem]":
            found.add(function)
    assert found and found <= registered, sorted(f.__name__ for f in found - registered)
    assert launch_checks in registered


def test_a_misspelled_attribute_in_a_check_is_a_bug_that_surfaces() -> None:
    def max_steps_typo_check(train: TrainSection) -> list[Problem]:
        return [Problem("max_steps", "zero")] if train.max_step == 0 else []  # type: ignore[attr-defined]

    sections = {**sections_of(build(MINIMAL)), "train": TrainSection(output_dir="out", max_steps=0)}
    assert run_checks(sections, [checks.declare(checks.max_steps_check)]).problems  # spelled right, it reports
    with pytest.raises(AttributeError, match="max_step"):
        run_checks(sections, [checks.declare(max_steps_typo_check)])


def test_a_check_takes_only_sections() -> None:
    def needs_a_number(data: DataSection, limit: int) -> list[Problem]:
        return []

    with pytest.raises(TypeError, match="needs_a_number: parameter limit must be typed with a config section"):
        checks.declare(needs_a_number)


def test_checks_of_a_section_that_failed_are_skipped_and_the_others_run() -> None:
    sections = sections_of(build(FULL))
    del sections["lora"]
    run = run_checks(sections, checks_for("train"))
    assert run.skipped == ["lora_only_check", "adapter_check"]
    assert len(run.ran) == len(checks_for("train")) - 2


def test_max_steps_zero_is_reported_with_the_field_problems() -> None:
    """The issue's example: max_steps=0 validated once a typo silently disabled its check."""
    assert problems({**MINIMAL, "max_steps": 0}) == {
        "max_steps": "must be a positive number of updates, or -1 to use num_train_epochs"}
    found = problems({**MINIMAL, "max_steps": 0, "learning_rat": 1e-4, "lora_rank": 0, "bf16": True, "fp16": True,
                      "finetuning_type": "full", "use_dora": True})
    assert list(found) == ["learning_rat", "lora_rank", "bf16", "max_steps"]  # lora failed: its checks wait


def test_launch_checks_run_when_the_train_section_failed() -> None:
    found = problems({**MINIMAL, "learning_rate": -1, "nnodes": 2})
    assert list(found) == ["learning_rate", "master_addr"]
