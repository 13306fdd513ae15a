"""PpoTrainer: one Trainer step is one PPO step (LLaMA-Factory 0.9.5's loop over TRL's PPOTrainer.step): generate
answers for a buffer of prompts, score them, read the policy's, the value head's and the reference's values on the
answers, compute KL-penalised rewards and GAE advantages, then ppo_epochs passes of clipped policy + value updates
over shuffled mini-batches, each backward batch an optimizer step of its own.

The Trainer's own loop runs around it (one prompt batch of per_device_train_batch_size x gradient_accumulation_steps
x ppo_buffer_size per step, the learning-rate schedule stepped once per PPO step as TRL does, logging, checkpoints,
resume); its optimizer step after each PPO step finds no gradients and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase, TrainerCallback, TrainingArguments
from transformers.trainer_callback import ExportableState

from tunelab.infer.batch_generate import SamplingFields
from tunelab.model.value_head import ValueHeadModel
from tunelab.train.ppo import core
from tunelab.train.ppo.core import Moments, PpoHyper
from tunelab.train.ppo.reference import Reference
from tunelab.train.ppo.rollout import Rollout, build_rollout, generate_responses, policy_outputs, prompt_rows
from tunelab.train.ppo.saving import load_policy, save_policy
from tunelab.train.ppo.scorers import Scorer
from tunelab.data.bundle import TrainSet
from tunelab.train.trainer import Batch, Collator, TrainerOptions, TunelabTrainer

__all__ = ["PpoSettings", "PpoState", "PpoTrainer"]


@dataclass(frozen=True)
class PpoSettings:
    """The run's PPO settings (LLaMA-Factory's: mini-batch = per_device_train_batch_size, backward batch = that x
    gradient_accumulation_steps, experience buffer = that x ppo_buffer_size)."""

    mini_batch: int
    accumulation: int
    buffer_size: int
    ppo_epochs: int
    target: float
    score_norm: bool
    whiten_rewards: bool
    max_new_tokens: int
    sampling: SamplingFields
    stop_ids: frozenset[int]
    pad_id: int
    max_grad_norm: float
    hyper: PpoHyper = field(default_factory=PpoHyper)

    @property
    def rollout_size(self) -> int:
        """Prompts per PPO step."""
        return self.mini_batch * self.accumulation * self.buffer_size


class PpoState(TrainerCallback, ExportableState):
    """The adaptive KL coefficient and the running score moments: saved in each checkpoint's trainer_state.json
    and restored on resume (the Trainer's stateful callbacks)."""

    def __init__(self, kl_coef: float = PpoHyper.init_kl_coef) -> None:
        self.kl_coef = kl_coef
        self.moments = Moments()

    def state(self) -> dict[str, dict[str, float | dict[str, float]]]:
        m = self.current_moments()
        return {"args": {"kl_coef": self.kl_coef},
                "attributes": {"moments": {"mean": m.mean, "std": m.std, "var": m.var, "count": m.count}}}

    def current_moments(self) -> Moments:
        """The moments (a restored state holds them as a dict)."""
        return Moments(**self.moments) if isinstance(self.moments, dict) else self.moments


@dataclass(frozen=True)
class Experience:
    """One buffer of rollouts with what the optimisation epochs read."""

    rollout: Rollout
    logps: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def select(self, rows: torch.Tensor) -> Experience:
        """The experience of some rows (a mini-batch)."""
        return Experience(self.rollout.select(rows), self.logps[rows], self.values[rows], self.advantages[rows],
                          self.returns[rows])


class PpoTrainer(TunelabTrainer):
    """The Trainer whose step is a PPO step over a ValueHeadModel policy."""

    def __init__(self, *, policy: ValueHeadModel, reference: Reference, scorer: Scorer, settings: PpoSettings,
                 args: TrainingArguments, train_dataset: TrainSet, data_collator: Collator,
                 processing_class: PreTrainedTokenizerBase, callbacks: list[TrainerCallback],
                 options: TrainerOptions | None = None) -> None:
        super().__init__(model=policy, args=args, train_dataset=train_dataset, data_collator=data_collator,
                         processing_class=processing_class, callbacks=callbacks, options=options)
        self.policy, self.reference, self.scorer, self.settings = policy, reference, scorer, settings
        self.add_callback(PpoState())
        self.figures: dict[str, list[float]] = {}
        self.grad_norms: list[float] = []

    def ppo_state(self) -> PpoState:
        """The callback holding the KL coefficient (a resume replaces it with the restored one)."""
        return next(cb for cb in self.callback_handler.callbacks if isinstance(cb, PpoState))

    def training_step(self, model: torch.nn.Module, inputs: Batch,
                      num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
        """One PPO step; returns the mean total loss of its mini-batches (what the Trainer logs as loss)."""
        inputs = self.prepare_inputs(inputs)
        experience, scores, kl = self.collect(inputs["input_ids"], inputs["attention_mask"])
        losses = self.optimise(experience)
        state = self.ppo_state()
        mean_kl = float(kl.mean())
        self.record({"reward": float(scores.mean()), "kl": mean_kl, "kl_coef": state.kl_coef,
                     "response_length": float(experience.rollout.mask.sum(1).mean()),
                     "loss/policy": sum(x.policy for x in losses) / len(losses),
                     "loss/value": sum(x.value for x in losses) / len(losses)})
        n_steps = experience.rollout.mask.shape[0] * self.accelerator.num_processes
        state.kl_coef = core.adaptive_kl(state.kl_coef, mean_kl, self.settings.target, self.settings.hyper.horizon,
                                         n_steps)
        self.pending_tokens += experience.rollout.response_tokens()
        return torch.tensor(sum(float(x.total.detach()) for x in losses) / len(losses), device=self.args.device)

    def collect(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[Experience, torch.Tensor, torch.Tensor]:
        """(experience, raw scores, per-row KL sums) of one buffer of prompts."""
        s, policy, lm = self.settings, self.policy, self.policy.pretrained_model
        queries = prompt_rows(input_ids, attention_mask)
        with self.accelerator.autocast():
            responses = generate_responses(lm, queries, s.max_new_tokens, s.sampling, s.stop_ids, s.pad_id)
        rollout = build_rollout(queries, responses, s.pad_id, input_ids.device)
        was_training = policy.training
        policy.eval()  # the rollout's own values and log-probs, without dropout
        parts: list[tuple[torch.Tensor, ...]] = []
        with torch.no_grad(), self.accelerator.autocast():
            for start in range(0, len(queries), s.mini_batch):
                part = rollout.select(torch.arange(start, min(start + s.mini_batch, len(queries))))
                parts.append((self.scorer.score(part), *policy_outputs(lm, policy.v_head, part, with_grad=False),
                              self.reference.logps(lm, part)))
        policy.train(was_training)
        scores, logps, values, ref_logps = (torch.cat([p[i] for p in parts]) for i in range(4))
        scores = scores.float()
        state = self.ppo_state()
        shaped = scores
        if s.score_norm:
            state.moments = core.update_moments(state.current_moments(), scores)
            shaped = core.normalise_scores(scores, state.moments)
        rewards, kl = core.kl_rewards(shaped, logps, ref_logps, rollout.mask, state.kl_coef)
        advantages, returns = core.gae(values, rewards, rollout.mask, s.hyper, s.whiten_rewards)
        return Experience(rollout, logps, values, advantages, returns), scores, kl.sum(1)

    def optimise(self, experience: Experience) -> list[core.PpoLoss]:
        """ppo_epochs passes over the buffer in shuffled backward batches, one optimizer step each."""
        s = self.settings
        rows = experience.rollout.mask.shape[0]
        backward = s.mini_batch * s.accumulation
        losses: list[core.PpoLoss] = []
        self.grad_norms = []
        for _ in range(s.ppo_epochs):
            order = torch.randperm(rows)
            for start in range(0, rows, backward):
                chunk = order[start:start + backward]
                micro = [chunk[i:i + s.mini_batch] for i in range(0, len(chunk), s.mini_batch)]
                for part in micro:
                    loss = self.mini_batch_loss(experience.select(part.to(experience.logps.device)))
                    self.accelerator.backward(loss.total / len(micro))
                    losses.append(loss)
                self.step_optimizer()
        return losses

    def mini_batch_loss(self, part: Experience) -> core.PpoLoss:
        """The clipped PPO loss of one mini-batch, with gradients."""
        lm = self.policy.pretrained_model
        with self.accelerator.autocast():
            logps, vpreds = policy_outputs(lm, self.policy.v_head, part.rollout, with_grad=True)
        return core.ppo_loss(part.logps, part.values, logps, vpreds, part.rollout.mask, part.advantages,
                             part.returns, self.settings.hyper)

    def step_optimizer(self) -> None:
        """Clip (max_grad_norm), step and clear the gradients."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        limit = self.settings.max_grad_norm if self.settings.max_grad_norm > 0 else float("inf")
        self.grad_norms.append(float(torch.nn.utils.clip_grad_norm_(params, limit)))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def own_grad_norm(self, max_norm: float) -> torch.Tensor | None:
        """The mean gradient norm of this PPO step's optimizer steps (the Trainer's own step has no gradients)."""
        if not self.grad_norms:
            return None
        return torch.tensor(sum(self.grad_norms) / len(self.grad_norms))

    def record(self, figures: dict[str, float]) -> None:
        """Keep a step's figures until the next log, which averages them (as LLaMA-Factory's meters)."""
        for key, value in figures.items():
            self.figures.setdefault(key, []).append(value)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The Trainer's log, with the PPO figures averaged since the last log."""
        if "loss" in logs and self.figures:
            logs.update({key: round(sum(v) / len(v), 6) for key, v in self.figures.items()})
            self.figures = {}
        super().log(logs, start_time)

    # the policy on disk: adapter or model plus value head
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The policy (its own adapter only) and value head, and the tokenizer, into output_dir."""
        if not self.args.should_save:
            return
        folder = Path(output_dir or self.args.output_dir)
        with self.weights_for_io():
            save_policy(self.policy, folder)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(str(folder))

    def load_own_weights(self, folder: str) -> bool:
        """A resume: the policy and value head from the checkpoint."""
        load_policy(self.policy, Path(folder))
        return True

