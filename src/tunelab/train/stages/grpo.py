"""Stage grpo: online RL with rule-based rewards (Group Relative Policy Optimization, after TRL 0.24's
GRPOTrainer, written on tunelab's trainer).

Each step takes per_device_train_batch_size prompts (the batch counts prompts, not answers), samples
num_generations answers per prompt with the engine's decoding loop (the infer keys: temperature, top_p, top_k,
max_new_tokens), scores them with reward_funcs, normalises the rewards within each prompt's group, and takes one
gradient step on the clipped policy loss plus grpo_beta x KL to the reference model (train/reference.py's, as dpo's:
ref_model when set; else with LoRA the same weights with the adapter disabled, otherwise a frozen copy taken before
training; none when grpo_beta is 0).
Evaluation (eval_dataset / val_size) reports the cross-entropy of the reference answers, as sft does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from tunelab.config.schema import InferSection
from tunelab.data.bundle import DataBundle, EvalSet, TrainSet
from tunelab.data.collate import PromptCollator
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.data.tokenizer import Tokenizer
from tunelab.infer.batch_generate import stop_token_ids
from tunelab.model.load import ModelBundle
from tunelab.runtime.logging import warn
from tunelab.train.grpo_loss import grpo_loss, group_advantages, group_spread
from tunelab.train.grpo_rollout import (Rollout, answer_seed, completion_batch, prompt_ids, reference_texts,
                                        roll_out)
from tunelab.train.hf_private import forward_through_wrapper
from tunelab.train.logps import labelled_logps
from tunelab.train.outdir import RunError
from tunelab.train.reference import Reference
from tunelab.train.rewards import Reward, build_rewards, score_all
from tunelab.train.trainer import Batch, TrainerOptions, TunelabTrainer

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import TrainerCallback, TrainingArguments


@dataclass(frozen=True)
class GrpoSettings:
    """What a GRPO step needs besides the model: the group size, the loss's keys, how to sample."""

    group: int
    beta: float
    epsilon: float
    sampling: InferSection


class GrpoTrainer(TunelabTrainer):
    """TunelabTrainer whose training loss is GRPO's; the per-step figures go to the step log."""

    def __init__(self, *, rewards: list[Reward], settings: GrpoSettings, reference: Reference | None,
                 model: torch.nn.Module, args: TrainingArguments, train_dataset: TrainSet,
                 eval_dataset: EvalSet, tokenizer: Tokenizer, callbacks: list[TrainerCallback],
                 options: TrainerOptions) -> None:
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         data_collator=PromptCollator(tokenizer.pad_token_id), processing_class=tokenizer,
                         callbacks=callbacks, options=options)
        self.rewards = rewards
        self.settings = settings
        self.reference = reference
        if reference is not None and reference.model is not None:  # the Trainer moves only the policy
            reference.model.to(self.args.device)
        self.loss_is_scaled_for_ga = False  # a mean over the micro-batch: the Trainer divides by accumulation
        self.stops = stop_token_ids(self.processing_class, self.model)
        self.figures: dict[str, list[float]] = {}
        self.micro = (-1, 0)  # (global step, micro-batch within it): part of each answer's seed
        self.sampled = 0
        self.sampling_started = time.perf_counter()

    def compute_loss(self, model: torch.nn.Module, inputs: Batch, return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None
                     ) -> torch.Tensor | tuple[torch.Tensor, Batch]:
        """GRPO's loss in training; the reference answers' cross-entropy in evaluation."""
        if not model.training:  # evaluation: prediction_step has turned the prompts into sft rows
            return super().compute_loss(model, inputs, return_outputs, None)
        inner = self.accelerator.unwrap_model(model)
        rollout = self.sample(inner, inputs)
        advantages = self.score(rollout)
        self.pending_tokens += sum(rollout.lengths)
        with self.accelerator.autocast():
            if inner is model:
                loss = self.policy_loss(inner, advantages, rollout.batch)
            else:  # through the wrapper's forward, so DistributedDataParallel reduces the gradients
                loss = forward_through_wrapper(model, inner, lambda **b: self.policy_loss(inner, advantages, b),
                                               rollout.batch)
        return (loss, {"loss": loss}) if return_outputs else loss

    def prediction_step(self, model: torch.nn.Module, inputs: Batch, prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None
                        ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Evaluation scores the reference answers after their prompts (loss, and token accuracy when asked)."""
        return super().prediction_step(model, self.with_reference_answers(inputs), prediction_loss_only, ignore_keys)

    def with_reference_answers(self, inputs: Batch) -> Batch:
        """A prompt batch as an sft batch: each prompt followed by its reference answer, the answer labelled."""
        answers = [row[row != IGNORE_INDEX].tolist() for row in inputs["labels"]]
        return completion_batch(prompt_ids(inputs), answers, 1, self.processing_class.pad_token_id,
                                inputs["input_ids"].device)

    def sample(self, inner: torch.nn.Module, inputs: Batch) -> Rollout:
        """num_generations answers per prompt, seeded by step, micro-batch, prompt and answer."""
        step = self.state.global_step
        micro = self.micro[1] + 1 if self.micro[0] == step else 0
        self.micro = (step, micro)
        count = inputs["input_ids"].shape[0] * self.settings.group
        seed = self.args.seed + 7_919 * self.args.process_index  # each process samples its own answers
        seeds = [answer_seed(seed, step, micro, i) for i in range(count)]
        return roll_out(inner, self.processing_class, inputs, self.settings.group, self.settings.sampling,
                        self.stops, seeds)

    def score(self, rollout: Rollout) -> torch.Tensor:
        """The weighted rewards turned into group advantages; the figures of the step recorded."""
        total, each = score_all(self.rewards, rollout.completions, rollout.prompts, rollout.references)
        rewards = torch.tensor(total, dtype=torch.float32)
        self.record("reward", float(rewards.mean()))
        self.record("reward_std", float(group_spread(rewards, self.settings.group)))
        self.record("completion_length", sum(rollout.lengths) / len(rollout.lengths))
        for key, values in each.items():
            self.record(f"rewards/{key}", sum(values) / len(values))
        self.sampled += len(rollout.completions)
        return group_advantages(rewards, self.settings.group).to(rollout.batch["input_ids"].device)

    def policy_loss(self, inner: torch.nn.Module, advantages: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The clipped policy loss (+ KL) of one rollout batch."""
        logps, rows = labelled_logps(inner, batch)
        ref_logps = None
        if self.reference is not None and self.settings.beta != 0.0:
            ref_logps = self.reference.token_logps(inner, batch)
        parts = grpo_loss(logps, logps.detach(), ref_logps, advantages, rows, self.settings.beta,
                          self.settings.epsilon)
        self.record("kl", float(parts.kl))
        return parts.loss

    def record(self, key: str, value: float) -> None:
        """Keep a figure of this micro-batch until the next log."""
        self.figures.setdefault(key, []).append(value)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs carry the means of the figures since the last log; the final one the sampling speed."""
        if "loss" in logs and self.figures:
            logs.update({key: round(sum(values) / len(values), 6) for key, values in self.figures.items()})
            self.figures = {}
        if "train_runtime" in logs:
            elapsed = time.perf_counter() - self.sampling_started
            logs["completions_per_second"] = round(self.sampled / max(elapsed, 1e-9), 3)
        super().log(logs, start_time)


def missing_references(dataset: Dataset, tokenizer: Tokenizer) -> list[int]:
    """Rows of the train set whose reference answer is empty."""
    labels = [torch.tensor(row) for row in dataset["labels"]]
    return [i for i, row in enumerate(labels) if reference_texts(row[None], tokenizer)[0] is None]


def with_references(data_bundle: DataBundle, rewards: list[Reward], tokenizer: Tokenizer,
                    skip: bool) -> TrainSet:
    """The train set, checked for the reference answers that accuracy (and length without a target) compare
    with: rows without one are an error, or left out and counted with on_bad_row: skip."""
    train = data_bundle.train
    needing = [reward.key for reward in rewards if reward.needs_reference]
    if not needing or not hasattr(train, "__len__"):
        return train
    missing = missing_references(train, tokenizer)
    if not missing:
        return train
    shown = ", ".join(str(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
    if not skip:
        raise RunError(f"reward {needing[0]} compares answers with the row's reference answer, but {len(missing)} "
                       f"train prompts have none (rows {shown} of the train set, in dataset order after mixing); "
                       "give every row an output (alpaca) or a last assistant turn (sharegpt), or set on_bad_row: "
                       "skip to leave them out")
    warn(f"grpo: {len(missing)} train prompts without a reference answer left out (on_bad_row: skip)")
    data_bundle.report.notes.append(f"grpo: {len(missing)} train prompts without a reference answer skipped")
    return train.select([i for i in range(len(train)) if i not in set(missing)])


def build_trainer(model_bundle: ModelBundle, data_bundle: DataBundle, args: TrainingArguments,
                  callbacks: list[TrainerCallback], options: TrainerOptions | None = None) -> GrpoTrainer:
    """A GRPO trainer over already-loaded objects (the reference, built by train/reference.py, comes in options)."""
    if options is None or options.run_config is None:
        raise RunError("stage grpo needs the run's config (TrainerOptions.run_config)")
    config = options.run_config
    pref = config.pref
    tokenizer = model_bundle.tokenizer
    rewards = build_rewards(pref.rewards(), lambda text: tokenizer.encode(text, add_special_tokens=False))
    train = with_references(data_bundle, rewards, tokenizer, config.data.on_bad_row == "skip")
    if pref.grpo_beta != 0.0 and options.reference is None:
        raise RunError("stage grpo with grpo_beta above 0 needs its reference model (TrainerOptions.reference, "
                       "from train/reference.py's build_reference)")
    settings = GrpoSettings(group=pref.num_generations, beta=pref.grpo_beta, epsilon=pref.grpo_epsilon,
                            sampling=config.infer)
    return GrpoTrainer(rewards=rewards, settings=settings, reference=options.reference, model=model_bundle.model,
                       args=args, train_dataset=train, eval_dataset=data_bundle.eval, tokenizer=tokenizer,
                       callbacks=callbacks, options=options)
