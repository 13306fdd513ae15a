"""Checks that need several keys at once; each returns the problems it finds, with the fix."""

from __future__ import annotations

from typing import Literal

from tunelab.config.errors import Problem
from tunelab.config.schema import RunConfig

SUPPORTED_STAGES = ("sft",)
SUPPORTED_METHODS = ("lora",)


def cross_checks(config: RunConfig, purpose: Literal["train", "infer"]) -> list[Problem]:
    """All problems of combination, for a config meant for training or for inference."""
    problems = method_checks(config)
    if purpose == "train":
        problems += train_checks(config)
    return problems


def method_checks(config: RunConfig) -> list[Problem]:
    """Stage and fine-tuning method must be ones this version implements."""
    problems = []
    if config.method.stage not in SUPPORTED_STAGES:
        problems.append(Problem("stage", f"stage {config.method.stage!r} is not available in this version of "
                                         f"tunelab; use one of: {', '.join(SUPPORTED_STAGES)}"))
    if config.method.finetuning_type not in SUPPORTED_METHODS:
        problems.append(Problem("finetuning_type", f"{config.method.finetuning_type!r} is not available in this "
                                f"version of tunelab; use one of: {', '.join(SUPPORTED_METHODS)}"))
    return problems


def train_checks(config: RunConfig) -> list[Problem]:
    """Problems that only matter when training."""
    train, data, ev = config.train, config.data, config.eval
    problems = []
    if not config.method.do_train:
        problems.append(Problem("do_train", "false, but `tunelab train` trains; set do_train: true"))
    if not train.output_dir:
        problems.append(Problem("output_dir", "required for training; e.g. output_dir: saves/my-run"))
    if not data.dataset:
        problems.append(Problem("dataset", "required for training; name entries of "
                                           f"{data.dataset_dir}/dataset_info.json, e.g. dataset: identity"))
    if train.bf16 and train.fp16:
        problems.append(Problem("bf16", "bf16 and fp16 are both true; keep one"))
    if train.max_steps == 0 or train.max_steps < -1:
        problems.append(Problem("max_steps", "must be a positive number of updates, or -1 to use num_train_epochs"))
    if data.val_size >= 1 and data.val_size != int(data.val_size):
        problems.append(Problem("val_size", f"{data.val_size} is neither a fraction below 1 nor a whole row count"))
    if ev.eval_strategy != "no" and data.val_size == 0:
        problems.append(Problem("eval_strategy", f"{ev.eval_strategy!r} needs evaluation data; set val_size "
                                                 "(e.g. 0.1) or eval_strategy: no"))
    if train.gradient_checkpointing and train.disable_gradient_checkpointing:
        problems.append(Problem("gradient_checkpointing", "true, but disable_gradient_checkpointing is true too; "
                                                          "keep one"))
    return problems
