"""The HF Trainer with tunelab's loss; one class for every stage that trains a causal LM on labels."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState, PrinterCallback

from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.train.accuracy import eval_counts
from tunelab.train.loss import selective_loss, supports_selective_loss
from tunelab.train.master import MasterWeights


@dataclass(frozen=True)
class TrainerOptions:
    """What a stage adds to the HF Trainer: evaluation metrics and the LoRA+ optimizer."""

    compute_accuracy: bool = False
    perplexity: bool = False  # stage pt: eval perplexity = exp(eval loss)
    loraplus_lr_ratio: float | None = None
    loraplus_lr_embedding: float = 1e-6
    master_weights: bool = False  # bf16 working weights, float32 masters in the optimizer (train/master.py)


class TrainedTokens(TrainerCallback, ExportableState):
    """The count of tokens the loss was computed on, over every process; saved in checkpoints (restored on
    resume through the Trainer's stateful callbacks)."""

    def __init__(self, count: int = 0) -> None:
        self.count = count
        self.at_start = count

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.at_start = self.count  # after a resume restored the count

    def state(self) -> dict[str, Any]:
        return {"args": {}, "attributes": {"count": self.count}}


class TunelabTrainer(Trainer):
    """Trainer whose loss skips the output head for unlabelled tokens (same value as the standard loss)."""

    def __init__(self, *args: Any, options: TrainerOptions | None = None, **kwargs: Any) -> None:
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [TrainedTokens()]
        super().__init__(*args, **kwargs)
        self.options = options or TrainerOptions()
        self.remove_callback(PrinterCallback)  # tunelab's ProgressLine and StepLog report instead
        self.pending_tokens = 0
        self.eval_totals: list[torch.Tensor] = []
        self.master = MasterWeights(self.model) if self.options.master_weights else None
        # ZeRO-3 and FSDP shard the output head's weight, which the selective loss reads directly
        self.selective = supports_selective_loss(self.model) and not (self.is_deepspeed_enabled
                                                                      or self.is_fsdp_enabled)
        if self.selective:
            # our loss divides by the token count of the whole accumulated batch, which the Trainer
            # computes (over shifted labels) only for models that take loss kwargs
            self.model_accepts_loss_kwargs = True
            self._loss_shifts_labels = True
            self.loss_is_scaled_for_ga = True

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """Selective cross-entropy normalised by the tokens of the whole accumulated batch."""
        if model.training and "labels" in inputs:
            self.pending_tokens += int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
        if not self.selective:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with self.accelerator.autocast():  # accelerate puts autocast around model.forward, which we bypass
            loss = self.selective_forward(model, inputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        return (loss, {"loss": loss}) if return_outputs else loss  # evaluation needs the loss only

    def selective_forward(self, model: Any, inputs: dict[str, Any], num_items: Any) -> Any:
        """The selective loss, run inside the forward of a wrapped model: DistributedDataParallel prepares its
        gradient all-reduce in its forward, so calling the inner model directly would leave each process
        stepping on its own gradients."""
        inner = self.accelerator.unwrap_model(model)
        if inner is model:
            return selective_loss(model, inputs, num_items)
        previous = inner.__dict__.get("forward")  # accelerate may have set its own (mixed precision)
        inner.forward = lambda **batch: selective_loss(inner, batch, num_items)
        try:
            return model(**inputs)
        finally:
            if previous is None:
                del inner.forward
            else:
                inner.forward = previous

    # trained tokens: counted per process, summed over processes when logged or saved
    def trained_tokens(self) -> TrainedTokens:
        return next(cb for cb in self.callback_handler.callbacks if isinstance(cb, TrainedTokens))

    def flush_trained_tokens(self) -> int:
        """Add every process's pending count to the shared total (a collective: all processes call it)."""
        pending = torch.tensor(self.pending_tokens, dtype=torch.long, device=self.args.device)
        if self.accelerator.num_processes > 1:
            pending = self.accelerator.reduce(pending, reduction="sum")
        self.pending_tokens = 0
        counter = self.trained_tokens()
        counter.count += int(pending)
        return counter.count

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs or "train_runtime" in logs:
            logs["trained_tokens"] = self.flush_trained_tokens()
        super().log(logs, *args, **kwargs)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        self.flush_trained_tokens()
        super()._save_checkpoint(model, trial)

    # evaluation: loss, token accuracy and perplexity
    def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> tuple[Any, Any, Any]:
        if not self.options.compute_accuracy:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.accelerator.autocast():
            loss_sum, correct, count = eval_counts(self.accelerator.unwrap_model(model), inputs)
        self.eval_totals.append(torch.stack([correct, count]).to(torch.long))
        return (loss_sum / count.clamp(min=1)).detach(), None, None

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
        self.eval_totals = []
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        metrics = output.metrics
        if self.options.compute_accuracy and self.eval_totals:
            totals = torch.stack(self.eval_totals).sum(0)
            if self.accelerator.num_processes > 1:
                totals = self.accelerator.reduce(totals, reduction="sum")
            metrics[f"{prefix}_accuracy"] = round(float(totals[0]) / max(float(totals[1]), 1.0), 6)
        if self.options.perplexity and f"{prefix}_loss" in metrics:
            metrics[f"{prefix}_perplexity"] = round(math.exp(min(metrics[f"{prefix}_loss"], 700.0)), 4)
        return output

    def create_optimizer(self, *args: Any, **kwargs: Any) -> Any:
        """The Trainer's optimizer (over the float32 masters with master weights), or LoRA+."""
        if self.optimizer is not None:
            return self.optimizer
        if self.options.loraplus_lr_ratio is None:
            optimizer = super().create_optimizer(*args, **kwargs)
            if self.master is not None:
                self.master.attach(optimizer)
            return optimizer
        return self.create_loraplus_optimizer()

    def create_loraplus_optimizer(self) -> Any:
        """LoRA+: the B matrices at loraplus_lr_ratio x the learning rate, through PEFT."""
        from peft.optimizers import create_loraplus_optimizer

        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = create_loraplus_optimizer(
            self.model, optimizer_cls, lr=self.args.learning_rate, loraplus_lr_ratio=self.options.loraplus_lr_ratio,
            loraplus_lr_embedding=self.options.loraplus_lr_embedding, weight_decay=self.args.weight_decay,
            **optimizer_kwargs)
        return self.optimizer

    # master weights: gradient norm over the float32 master gradients, saving and loading through the masters
    def _clip_grad_norm(self, model: Any) -> Any:
        if self.master is None:
            return super()._clip_grad_norm(model)
        return self.master.clip_grad_norm(self.args.max_grad_norm)

    def _get_grad_norm(self, model: Any, grad_norm: Any = None) -> Any:
        if self.master is None or grad_norm is not None:
            return super()._get_grad_norm(model, grad_norm)
        return self.master.clip_grad_norm(float("inf"))

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        with self.masters_in_place():
            super()._save(output_dir, state_dict)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        with self.masters_in_place():
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        with self.masters_in_place():
            super()._load_best_model()

    def masters_in_place(self) -> Any:
        return self.master.masters_in_place() if self.master is not None else contextlib.nullcontext()
