"""Checks that need several keys at once; each returns the problems it finds, with the fix.

Each check is a function of exactly the sections it reads, typed with their classes
(`def packing_check(data: DataSection, method: MethodSection)`); CHECKS lists them per command, and
config/check_runner.py runs each one only when every section it reads validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

from tunelab.config.backend_checks import backend_check
from tunelab.config.check_runner import Check, declare, run_checks
from tunelab.config.errors import Problem
from tunelab.config.eval_checks import eval_checks
from tunelab.config.export_checks import (export_dir_check, gguf_type_check, legacy_format_check,
                                          quantization_check)
from tunelab.config.infer_checks import infer_dtype_check, predict_launch_check
from tunelab.config.launch_checks import launch_checks
from tunelab.config.name_checks import dataset_names_check, predict_names_check, template_check
from tunelab.config.pref_checks import preference_checks, stage_launch_check
from tunelab.config.reward_checks import grpo_sampling_check, reward_funcs_check
from tunelab.config.schema import (TOOL_FORMAT_NAMES, DataSection, EvalSection, LoraSection, MethodSection,
                                   ModelSection, Section, TrainSection)
from tunelab.runtime.names import parse_probs, split_names

Purpose = Literal["train", "infer", "predict", "eval", "export"]

LORA_ONLY = ("use_dora", "use_rslora", "pissa_init", "loraplus_lr_ratio", "additional_target", "create_new_adapter")


def checks_for(purpose: Purpose, predict_only: bool = False) -> tuple[Check, ...]:
    """The checks a command runs: the common ones, then its own (`tunelab train` that only predicts: those of
    prediction, not of training)."""
    return CHECKS["all"] + CHECKS["predict_only" if purpose == "train" and predict_only else purpose]


def predicts_only(sections: Mapping[str, Section]) -> bool:
    """do_predict without do_train: `tunelab train` answers eval_dataset and trains nothing."""
    method = sections.get("method")
    return isinstance(method, MethodSection) and method.do_predict and not method.do_train


def cross_checks(sections: Mapping[str, Section], purpose: Purpose) -> list[Problem]:
    """All problems of combination among the sections that validated."""
    return run_checks(sections, checks_for(purpose, predicts_only(sections))).problems


def packing_check(data: DataSection, method: MethodSection) -> list[Problem]:
    """neat_packing is for sft and packs; mask_history and train_on_prompt contradict; tool_format is known."""
    problems = []
    if data.neat_packing and method.stage == "pt":
        problems.append(Problem("neat_packing", "stage pt packs text into blocks that are meant to attend across "
                                                "documents; neat_packing is for sft: remove it (packing is on by "
                                                "default for pt)"))
    if data.neat_packing and data.packing is False:
        problems.append(Problem("neat_packing", "true, but packing is false; neat_packing packs: remove one"))
    if data.mask_history and data.train_on_prompt:
        problems.append(Problem("mask_history", "mask_history trains only the last answer, train_on_prompt trains "
                                                "every token: they contradict each other (LLaMA-Factory refuses "
                                                "the pair too); keep one"))
    if data.tool_format is not None and data.tool_format not in TOOL_FORMAT_NAMES:
        problems.append(Problem("tool_format", f"unknown tool format {data.tool_format!r}; use one of: "
                                               f"{', '.join(TOOL_FORMAT_NAMES)}"))
    return problems


def mixing_check(data: DataSection) -> list[Problem]:
    """interleave_probs: only when interleaving, probabilities summing to 1, one per dataset."""
    problems: list[Problem] = []
    if data.interleave_probs is None:
        return problems
    if data.mix_strategy == "concat":
        return problems + [Problem("interleave_probs", "only used when interleaving: set mix_strategy: "
                                                       "interleave_under (or interleave_over/interleave_once)")]
    try:
        probs = parse_probs(data.interleave_probs) or []
    except ValueError:
        return problems + [Problem("interleave_probs", f"{data.interleave_probs!r} is not a comma-separated list of "
                                                       "numbers, e.g. 0.7,0.3")]
    if any(p < 0 or p > 1 for p in probs) or abs(sum(probs) - 1) > 1e-6:
        problems.append(Problem("interleave_probs", f"{', '.join(f'{p:g}' for p in probs)} must be probabilities "
                                                    f"(0 to 1) that sum to 1 (they sum to {sum(probs):g})"))
    for key, names in (("dataset", data.dataset), ("eval_dataset", data.eval_dataset)):
        count = len(split_names(names))
        if count and count != len(probs) and not (key == "eval_dataset" and data.eval_on_each_dataset):
            problems.append(Problem("interleave_probs", f"{len(probs)} probabilities for {count} datasets in {key}: "
                                                        "give one per dataset, in the same order"))
    return problems


def eval_split_check(data: DataSection) -> list[Problem]:
    """Training only: `tunelab predict CONFIG eval_dataset=...` reuses a training config that has val_size."""
    problems = []
    if data.eval_dataset and data.val_size > 0:
        problems.append(Problem("val_size", "eval_dataset is set, so no rows are split off for evaluation: remove "
                                            "val_size or eval_dataset"))
    if data.eval_on_each_dataset and not data.eval_dataset:
        problems.append(Problem("eval_on_each_dataset", "needs eval_dataset (the datasets to evaluate one by one)"))
    return problems


def streaming_check(data: DataSection) -> list[Problem]:
    """A stream has no known length, so val_size must be a row count."""
    if not data.streaming:
        return []
    if 0 < data.val_size < 1:
        return [Problem("val_size", f"{data.val_size:g} is a fraction, but a stream has no known length: give a row "
                                    "count (e.g. val_size: 500), as LLaMA-Factory requires")]
    return []


def do_train_check(method: MethodSection) -> list[Problem]:
    """`tunelab train` trains or predicts, so do_train false needs do_predict."""
    if method.do_train or method.do_predict:
        return []
    return [Problem("do_train", "false, but `tunelab train` trains; set do_train: true (or do_predict: true to "
                                "only answer eval_dataset)")]


def predict_check(data: DataSection, method: MethodSection, evaluation: EvalSection) -> list[Problem]:
    """do_predict over eval_dataset, as LLaMA-Factory requires: sft generates (predict_with_generate), rm scores
    pairs (and never generates)."""
    problems = []
    if method.stage == "rm" and evaluation.predict_with_generate:
        problems.append(Problem("predict_with_generate", "stage rm scores pairs, it does not generate: remove "
                                                         "predict_with_generate (LLaMA-Factory refuses it too)"))
    elif method.do_predict and method.stage == "sft" and not evaluation.predict_with_generate:
        problems.append(Problem("do_predict", "predictions are generated answers: set predict_with_generate: true "
                                              "(LLaMA-Factory requires it too)"))
    elif evaluation.predict_with_generate and not method.do_predict:
        problems.append(Problem("predict_with_generate", "tunelab generates only for do_predict, not at the "
                                                         "evaluations during training: set do_predict: true, or "
                                                         "remove it"))
    if method.do_predict and not data.eval_dataset:
        problems.append(Problem("eval_dataset", "do_predict answers the rows of eval_dataset: name them, e.g. "
                                                "eval_dataset: identity"))
    if method.do_predict and method.stage not in ("sft", "rm"):
        problems.append(Problem("do_predict", f"predictions need stage sft (answers) or rm (pair scores), not "
                                              f"{method.stage}: set one of them, or remove do_predict"))
    return problems


def required_for_training(data: DataSection, train: TrainSection, method: MethodSection) -> list[Problem]:
    """Training needs an output_dir and a dataset (prediction alone: the output_dir)."""
    problems = []
    if not train.output_dir:
        what = "training" if method.do_train else "do_predict (its files are written there)"
        problems.append(Problem("output_dir", f"required for {what}; e.g. output_dir: saves/my-run"))
    if method.do_train and not data.dataset:
        problems.append(Problem("dataset", "required for training; name entries of "
                                           f"{data.dataset_dir}/dataset_info.json, e.g. dataset: identity"))
    return problems


def precision_check(method: MethodSection, train: TrainSection) -> list[Problem]:
    """One of bf16, fp16 and pure_bf16 with fp16."""
    if train.bf16 and train.fp16:
        return [Problem("bf16", "bf16 and fp16 are both true; keep one")]
    if method.pure_bf16 and train.fp16:
        return [Problem("pure_bf16", "trains in bf16, but fp16 is true; keep one")]
    return []


def lora_only_check(method: MethodSection, lora: LoraSection) -> list[Problem]:
    """LoRA settings need finetuning_type: lora."""
    finetuning = method.finetuning_type
    if finetuning == "lora":
        return []
    set_keys = [key for key in LORA_ONLY if getattr(lora, key) not in (None, False)]
    return [Problem(key, f"a LoRA setting, but finetuning_type is {finetuning}; remove it or use finetuning_type: "
                         "lora") for key in set_keys]


ADAPTER_FIX = ("to train on top of the adapter use finetuning_type: lora (add create_new_adapter: true to merge it and "
               "train a new one); to train the merged weights with another method, merge them first (`tunelab "
               "export CONFIG export_dir=DIR` with finetuning_type: lora) and give DIR as model_name_or_path")


def adapter_check(model: ModelSection, method: MethodSection, lora: LoraSection) -> list[Problem]:
    """Adapters are LoRA weights; create_new_adapter needs them; pissa_init starts a new one."""
    problems = []
    if model.adapter_name_or_path and method.finetuning_type != "lora":
        problems.append(Problem("adapter_name_or_path", f"adapters are LoRA weights, but finetuning_type is "
                                                        f"{method.finetuning_type}; {ADAPTER_FIX}"))
    if lora.create_new_adapter and not model.adapter_name_or_path:
        problems.append(Problem("create_new_adapter", "needs adapter_name_or_path (the adapters merged under the "
                                                      "new one); remove it to train a fresh adapter"))
    if lora.pissa_init and model.adapter_name_or_path and not lora.create_new_adapter:
        problems.append(Problem("pissa_init", "initialises a new adapter, but adapter_name_or_path continues an "
                                              "existing one; remove pissa_init or set create_new_adapter: true"))
    return problems


def has_eval_data(data: DataSection) -> bool:
    """Rows to evaluate on: a split (val_size) or eval datasets."""
    return data.val_size > 0 or bool(data.eval_dataset)


def metric_problem(key: str, evaluation: EvalSection, data: DataSection, method: MethodSection) -> Problem | None:
    """metric_for_best_model must be a metric the evaluation reports (`key` is the setting that uses it)."""
    metric = evaluation.metric_for_best_model
    name = metric if metric.startswith("eval_") else f"eval_{metric}"
    each = data.eval_on_each_dataset
    if name == "eval_loss" and not each:
        return None
    if name == "eval_accuracy" and not evaluation.compute_accuracy and method.stage != "rm":  # rm: pair accuracy
        return Problem("metric_for_best_model", f"{metric} needs compute_accuracy: true")
    if name == "eval_perplexity" and method.stage != "pt":
        return Problem("metric_for_best_model", f"{metric} is reported for stage pt; use eval_loss (same order)")
    if each and name in ("eval_loss", "eval_accuracy", "eval_perplexity"):
        first = (data.eval_dataset or "NAME").split(",")[0].strip()
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


def best_model_check(data: DataSection, method: MethodSection, train: TrainSection,
                     evaluation: EvalSection) -> list[Problem]:
    """load_best_model_at_end needs evaluations, a checkpoint at each, and a reported metric."""
    if not evaluation.load_best_model_at_end:
        return []
    problems = []
    if evaluation.eval_strategy == "no" or not has_eval_data(data):
        problems.append(Problem("load_best_model_at_end", "needs evaluation during training: set val_size (or "
                                                          "eval_dataset) and eval_strategy: steps"))
    elif train.save_strategy != evaluation.eval_strategy:
        problems.append(Problem("save_strategy", f"{train.save_strategy!r}, but load_best_model_at_end needs a "
                                                 f"checkpoint at each evaluation: set save_strategy: "
                                                 f"{evaluation.eval_strategy}"))
    elif evaluation.eval_strategy == "steps" and train.save_steps % (evaluation.eval_steps or train.logging_steps):
        problems.append(Problem("save_steps", f"{train.save_steps} is not a multiple of eval_steps "
                                              f"({evaluation.eval_steps or train.logging_steps}); "
                                              "load_best_model_at_end can only go back to evaluated checkpoints"))
    problem = metric_problem("load_best_model_at_end", evaluation, data, method)
    return problems + ([problem] if problem else [])


def early_stopping_check(data: DataSection, method: MethodSection, evaluation: EvalSection) -> list[Problem]:
    """early_stopping_steps counts evaluations of a reported metric."""
    if evaluation.early_stopping_steps is None:
        return []
    if evaluation.eval_strategy == "no" or not has_eval_data(data):
        return [Problem("early_stopping_steps", "counts evaluations, but none happen: set val_size (or "
                                                "eval_dataset) and eval_strategy: steps")]
    problem = metric_problem("early_stopping_steps", evaluation, data, method)
    return [problem] if problem else []


def accuracy_check(data: DataSection, evaluation: EvalSection) -> list[Problem]:
    """compute_accuracy needs evaluation data."""
    if evaluation.compute_accuracy and not has_eval_data(data):
        return [Problem("compute_accuracy", "is measured on evaluation data: set val_size (e.g. 0.1) or "
                                            "eval_dataset")]
    return []


def max_steps_check(train: TrainSection) -> list[Problem]:
    """max_steps is a positive number of updates or -1."""
    if train.max_steps == 0 or train.max_steps < -1:
        return [Problem("max_steps", "must be a positive number of updates, or -1 to use num_train_epochs")]
    return []


def val_size_check(data: DataSection) -> list[Problem]:
    """val_size is a fraction below 1 or a whole row count."""
    val_size = data.val_size
    if val_size >= 1 and val_size != int(val_size):
        return [Problem("val_size", f"{val_size} is neither a fraction below 1 nor a whole row count")]
    return []


def eval_data_check(data: DataSection, evaluation: EvalSection) -> list[Problem]:
    """An eval_strategy other than no needs evaluation data."""
    strategy = evaluation.eval_strategy
    if strategy != "no" and data.val_size == 0 and not data.eval_dataset:
        return [Problem("eval_strategy", f"{strategy!r} needs evaluation data; set val_size (e.g. 0.1) or "
                                         "eval_dataset, or eval_strategy: no")]
    return []


def streaming_steps_check(data: DataSection, train: TrainSection) -> list[Problem]:
    """Streaming needs max_steps: the data has no known length."""
    if data.streaming and train.max_steps <= 0:
        return [Problem("max_steps", "streaming reads data of unknown length, so training needs a number of "
                                     "updates: set max_steps (e.g. max_steps: 1000)")]
    return []


def checkpointing_check(train: TrainSection, method: MethodSection) -> list[Problem]:
    """gradient_checkpointing and disable_gradient_checkpointing contradict; cheap is for stages pt and sft."""
    if train.gradient_checkpointing and train.disable_gradient_checkpointing:
        return [Problem("gradient_checkpointing", f"{str(train.gradient_checkpointing).lower()}, but "
                                                  "disable_gradient_checkpointing is true too; keep one")]
    if train.gradient_checkpointing == "cheap" and method.stage not in ("pt", "sft"):
        return [Problem("gradient_checkpointing", f"cheap is measured for stages pt and sft only, not "
                                                  f"{method.stage}; use true or false")]
    return []


def required_for_predict(data: DataSection, train: TrainSection) -> list[Problem]:
    """`tunelab predict` writes to output_dir and answers eval_dataset (or dataset)."""
    problems = []
    if not train.output_dir:
        problems.append(Problem("output_dir", "required: generated_predictions.jsonl is written there"))
    if not (data.eval_dataset or data.dataset):
        problems.append(Problem("eval_dataset", "required: name the datasets to answer (or set dataset)"))
    return problems


class EvalConfig(NamedTuple):
    """The part of a config that config/eval_checks.py reads (config.train, config.eval)."""

    train: TrainSection
    eval: EvalSection


def eval_tasks_check(train: TrainSection, evaluation: EvalSection) -> list[Problem]:
    """`tunelab eval`: the eval_tasks and eval_models entries, and the output_dir their results go to."""
    return eval_checks(EvalConfig(train, evaluation))


CHECKS: dict[Literal["all", "predict_only"] | Purpose, tuple[Check, ...]] = {
    "all": tuple(map(declare, (packing_check, mixing_check, streaming_check, template_check))),
    "train": tuple(map(declare, (
        do_train_check, predict_check, required_for_training, precision_check, max_steps_check, val_size_check,
        eval_data_check, checkpointing_check, streaming_steps_check, eval_split_check, lora_only_check,
        adapter_check, best_model_check, early_stopping_check, accuracy_check, launch_checks, stage_launch_check,
        preference_checks, reward_funcs_check, grpo_sampling_check, dataset_names_check))),
    # `tunelab train` with do_predict and without do_train: the model is only loaded and asked, so the training
    # settings (schedule, evaluation during training, launch) do not apply
    "predict_only": tuple(map(declare, (predict_check, required_for_training, lora_only_check, adapter_check,
                                        predict_names_check, infer_dtype_check, backend_check))),
    # chat, the API and data tools share "infer"; `tunelab api` runs backend_check itself
    "infer": (declare(infer_dtype_check),),
    "predict": tuple(map(declare, (required_for_predict, predict_names_check, infer_dtype_check,
                                   predict_launch_check, backend_check))),
    "eval": tuple(map(declare, (eval_tasks_check, infer_dtype_check, predict_launch_check, backend_check))),
    "export": tuple(map(declare, (export_dir_check, gguf_type_check, legacy_format_check, quantization_check))),
}
