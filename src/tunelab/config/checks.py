"""Checks that need several keys at once; each returns the problems it finds, with the fix.

Each check reads the sections it needs; a check whose sections failed validation is skipped, so
field problems and combination problems are reported together.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Literal

from tunelab.config.errors import Problem
from tunelab.config.eval_checks import eval_checks
from tunelab.config.launch_checks import launch_checks
from tunelab.runtime.names import split_names

SUPPORTED_STAGES = ("pt", "sft")
LORA_ONLY = ("use_dora", "use_rslora", "pissa_init", "loraplus_lr_ratio", "additional_target", "create_new_adapter")

Check = Callable[[Any], list[Problem]]


def cross_checks(sections: dict[str, Any], purpose: Literal["train", "infer", "predict", "eval"]) -> list[Problem]:
    """All problems of combination among the sections that validated."""
    config = SimpleNamespace(**sections)
    checks: list[Check] = [stage_check, packing_check, mixing_check, streaming_check]
    if purpose == "train":
        checks += [do_train_check, required_for_training, precision_check, max_steps_check, val_size_check,
                   eval_data_check, checkpointing_check, streaming_steps_check, eval_split_check, lora_only_check,
                   adapter_check, best_model_check, early_stopping_check, accuracy_check, launch_checks]
    if purpose == "predict":
        checks += [required_for_predict]
    if purpose == "eval":
        checks += [eval_checks]
    problems: list[Problem] = []
    for check in checks:
        try:
            problems += check(config)
        except AttributeError:  # a section it reads did not validate; its own problems are reported
            continue
    return problems


def stage_check(config: Any) -> list[Problem]:
    if config.method.stage in SUPPORTED_STAGES:
        return []
    return [Problem("stage", f"stage {config.method.stage!r} is not available in this version of tunelab; use one "
                             f"of: {', '.join(SUPPORTED_STAGES)}")]


def packing_check(config: Any) -> list[Problem]:
    problems = []
    if config.data.neat_packing and config.method.stage == "pt":
        problems.append(Problem("neat_packing", "stage pt packs text into blocks that are meant to attend across "
                                                "documents; neat_packing is for sft: remove it (packing is on by "
                                                "default for pt)"))
    if config.data.neat_packing and config.data.packing is False:
        problems.append(Problem("neat_packing", "true, but packing is false; neat_packing packs: remove one"))
    if config.data.mask_history and config.data.train_on_prompt:
        problems.append(Problem("mask_history", "mask_history trains only the last answer, train_on_prompt trains "
                                                "every token: they contradict each other (LLaMA-Factory refuses "
                                                "the pair too); keep one"))
    if config.data.tool_format is not None:
        from tunelab.text.tool_calls import TOOL_FORMATS

        if config.data.tool_format not in TOOL_FORMATS:
            problems.append(Problem("tool_format", f"unknown tool format {config.data.tool_format!r}; use one of: "
                                                   f"{', '.join(TOOL_FORMATS)}"))
    return problems


def mixing_check(config: Any) -> list[Problem]:
    data = config.data
    problems: list[Problem] = []
    if data.interleave_probs is None:
        return problems
    if data.mix_strategy == "concat":
        return problems + [Problem("interleave_probs", "only used when interleaving: set mix_strategy: "
                                                       "interleave_under (or interleave_over/interleave_once)")]
    from tunelab.data.mix import parse_probs

    try:
        probs = parse_probs(data.interleave_probs) or []
    except ValueError:
        return problems + [Problem("interleave_probs", f"{data.interleave_probs!r} is not a comma-separated list of "
                                                       "numbers, e.g. 0.7,0.3")]
    if any(p < 0 or p > 1 for p in probs) or abs(sum(probs) - 1) > 1e-6:
        problems.append(Problem("interleave_probs", f"{', '.join(f'{p:g}' for p in probs)} must be probabilities "
                                                    f"(0 to 1) that sum to 1 (they sum to {sum(probs):g})"))
    for key in ("dataset", "eval_dataset"):
        count = len(split_names(getattr(data, key)))
        if count and count != len(probs) and not (key == "eval_dataset" and data.eval_on_each_dataset):
            problems.append(Problem("interleave_probs", f"{len(probs)} probabilities for {count} datasets in {key}: "
                                                        "give one per dataset, in the same order"))
    return problems


def eval_split_check(config: Any) -> list[Problem]:
    """Training only: `tunelab predict CONFIG eval_dataset=...` reuses a training config that has val_size."""
    data = config.data
    problems = []
    if data.eval_dataset and data.val_size > 0:
        problems.append(Problem("val_size", "eval_dataset is set, so no rows are split off for evaluation: remove "
                                            "val_size or eval_dataset"))
    if data.eval_on_each_dataset and not data.eval_dataset:
        problems.append(Problem("eval_on_each_dataset", "needs eval_dataset (the datasets to evaluate one by one)"))
    return problems


def streaming_check(config: Any) -> list[Problem]:
    data = config.data
    if not data.streaming:
        return []
    if 0 < data.val_size < 1:
        return [Problem("val_size", f"{data.val_size:g} is a fraction, but a stream has no known length: give a row "
                                    "count (e.g. val_size: 500), as LLaMA-Factory requires")]
    return []


def do_train_check(config: Any) -> list[Problem]:
    if config.method.do_train:
        return []
    return [Problem("do_train", "false, but `tunelab train` trains; set do_train: true")]


def required_for_training(config: Any) -> list[Problem]:
    problems = []
    if not config.train.output_dir:
        problems.append(Problem("output_dir", "required for training; e.g. output_dir: saves/my-run"))
    if not config.data.dataset:
        problems.append(Problem("dataset", "required for training; name entries of "
                                           f"{config.data.dataset_dir}/dataset_info.json, e.g. dataset: identity"))
    return problems


def precision_check(config: Any) -> list[Problem]:
    if config.train.bf16 and config.train.fp16:
        return [Problem("bf16", "bf16 and fp16 are both true; keep one")]
    if config.method.pure_bf16 and config.train.fp16:
        return [Problem("pure_bf16", "trains in bf16, but fp16 is true; keep one")]
    return []


def lora_only_check(config: Any) -> list[Problem]:
    method = config.method.finetuning_type
    if method == "lora":
        return []
    set_keys = [key for key in LORA_ONLY if getattr(config.lora, key) not in (None, False)]
    return [Problem(key, f"a LoRA setting, but finetuning_type is {method}; remove it or use finetuning_type: lora")
            for key in set_keys]


def adapter_check(config: Any) -> list[Problem]:
    problems = []
    if config.model.adapter_name_or_path and config.method.finetuning_type != "lora":
        problems.append(Problem("adapter_name_or_path", f"adapters are LoRA weights, but finetuning_type is "
                                                        f"{config.method.finetuning_type}; merge them first (tunelab "
                                                        "export) and give the merged folder as model_name_or_path"))
    if config.lora.create_new_adapter and not config.model.adapter_name_or_path:
        problems.append(Problem("create_new_adapter", "needs adapter_name_or_path (the adapters merged under the "
                                                      "new one); remove it to train a fresh adapter"))
    if config.lora.pissa_init and config.model.adapter_name_or_path and not config.lora.create_new_adapter:
        problems.append(Problem("pissa_init", "initialises a new adapter, but adapter_name_or_path continues an "
                                              "existing one; remove pissa_init or set create_new_adapter: true"))
    return problems


def has_eval_data(config: Any) -> bool:
    return config.data.val_size > 0 or bool(config.data.eval_dataset)


def metric_problem(config: Any, key: str) -> Problem | None:
    """metric_for_best_model must be a metric the evaluation reports."""
    metric = config.eval.metric_for_best_model
    name = metric if metric.startswith("eval_") else f"eval_{metric}"
    each = config.data.eval_on_each_dataset
    if name == "eval_loss" and not each:
        return None
    if name == "eval_accuracy" and not config.eval.compute_accuracy:
        return Problem("metric_for_best_model", f"{metric} needs compute_accuracy: true")
    if name == "eval_perplexity" and config.method.stage != "pt":
        return Problem("metric_for_best_model", f"{metric} is reported for stage pt; use eval_loss (same order)")
    if each and name in ("eval_loss", "eval_accuracy", "eval_perplexity"):
        first = (config.data.eval_dataset or "NAME").split(",")[0].strip()
        example = name.replace("eval_", f"eval_{first}_")
        return Problem("metric_for_best_model", f"eval_on_each_dataset reports one {name} per dataset; used by "
                                                f"{key}, it must name one, e.g. {example}")
    if name in ("eval_loss", "eval_accuracy", "eval_perplexity"):
        return None
    if each and name.startswith("eval_") and name.endswith(("_loss", "_accuracy", "_perplexity")):
        return None
    return Problem("metric_for_best_model", f"{metric!r} is not reported; use eval_loss, eval_accuracy "
                                            "(compute_accuracy), eval_perplexity (pt) or eval_NAME_loss "
                                            "(eval_on_each_dataset)")


def best_model_check(config: Any) -> list[Problem]:
    ev, train = config.eval, config.train
    if not ev.load_best_model_at_end:
        return []
    problems = []
    if ev.eval_strategy == "no" or not has_eval_data(config):
        problems.append(Problem("load_best_model_at_end", "needs evaluation during training: set val_size (or "
                                                          "eval_dataset) and eval_strategy: steps"))
    elif train.save_strategy != ev.eval_strategy:
        problems.append(Problem("save_strategy", f"{train.save_strategy!r}, but load_best_model_at_end needs a "
                                                 f"checkpoint at each evaluation: set save_strategy: "
                                                 f"{ev.eval_strategy}"))
    elif ev.eval_strategy == "steps" and train.save_steps % (ev.eval_steps or train.logging_steps):
        problems.append(Problem("save_steps", f"{train.save_steps} is not a multiple of eval_steps "
                                              f"({ev.eval_steps or train.logging_steps}); load_best_model_at_end "
                                              "can only go back to evaluated checkpoints"))
    problem = metric_problem(config, "load_best_model_at_end")
    return problems + ([problem] if problem else [])


def early_stopping_check(config: Any) -> list[Problem]:
    if config.eval.early_stopping_steps is None:
        return []
    if config.eval.eval_strategy == "no" or not has_eval_data(config):
        return [Problem("early_stopping_steps", "counts evaluations, but none happen: set val_size (or "
                                                "eval_dataset) and eval_strategy: steps")]
    problem = metric_problem(config, "early_stopping_steps")
    return [problem] if problem else []


def accuracy_check(config: Any) -> list[Problem]:
    if config.eval.compute_accuracy and not has_eval_data(config):
        return [Problem("compute_accuracy", "is measured on evaluation data: set val_size (e.g. 0.1) or "
                                            "eval_dataset")]
    return []


def max_steps_check(config: Any) -> list[Problem]:
    if config.train.max_steps == 0 or config.train.max_steps < -1:
        return [Problem("max_steps", "must be a positive number of updates, or -1 to use num_train_epochs")]
    return []


def val_size_check(config: Any) -> list[Problem]:
    val_size = config.data.val_size
    if val_size >= 1 and val_size != int(val_size):
        return [Problem("val_size", f"{val_size} is neither a fraction below 1 nor a whole row count")]
    return []


def eval_data_check(config: Any) -> list[Problem]:
    strategy = config.eval.eval_strategy
    if strategy != "no" and config.data.val_size == 0 and not config.data.eval_dataset:
        return [Problem("eval_strategy", f"{strategy!r} needs evaluation data; set val_size (e.g. 0.1) or "
                                         "eval_dataset, or eval_strategy: no")]
    return []


def streaming_steps_check(config: Any) -> list[Problem]:
    if config.data.streaming and config.train.max_steps <= 0:
        return [Problem("max_steps", "streaming reads data of unknown length, so training needs a number of "
                                     "updates: set max_steps (e.g. max_steps: 1000)")]
    return []


def checkpointing_check(config: Any) -> list[Problem]:
    if config.train.gradient_checkpointing and config.train.disable_gradient_checkpointing:
        return [Problem("gradient_checkpointing", "true, but disable_gradient_checkpointing is true too; keep one")]
    return []


def required_for_predict(config: Any) -> list[Problem]:
    problems = []
    if not config.train.output_dir:
        problems.append(Problem("output_dir", "required: generated_predictions.jsonl is written there"))
    if not (config.data.eval_dataset or config.data.dataset):
        problems.append(Problem("eval_dataset", "required: name the datasets to answer (or set dataset)"))
    return problems
