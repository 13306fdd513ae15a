"""The HF Trainer with tunelab's loss; one class for every stage that trains a causal LM on labels."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from torch.utils.data import IterableDataset as TorchIterableDataset
from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback, TrainerControl, TrainerState
from transformers import TrainingArguments
from transformers.trainer_callback import ExportableState, PrinterCallback
from transformers.trainer_utils import EvalLoopOutput

from tunelab.config.schema import RunConfig
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.train.accuracy import eval_counts
from tunelab.train.hf_private import HookedTrainer, forward_through_wrapper
from tunelab.train.loss import selective_loss, supports_selective_loss
from tunelab.train.master import MasterWeights

if TYPE_CHECKING:
    from tunelab.config.schema import PrefSection
    from tunelab.train.reference import Reference

Batch = dict[str, torch.Tensor]
Collator = Callable[[list[dict[str, list[int]]]], Batch]


@dataclass(frozen=True)
class TrainerOptions:
    """What a stage adds to the HF Trainer: evaluation metrics, the LoRA+ optimizer, the preference keys and
    reference."""

    compute_accuracy: bool = False
    perplexity: bool = False  # stage pt: eval perplexity = exp(eval loss)
    loraplus_lr_ratio: float | None = None
    loraplus_lr_embedding: float = 1e-6
    master_weights: bool = False  # bf16 working weights, float32 masters in the optimizer (train/master.py)
    run_config: RunConfig | None = None  # the validated config, for stages that read their own keys (ppo: pref, infer)
    pref: PrefSection | None = None  # the preference stages' keys
    reference: Reference | None = None  # dpo, kto: the reference model, loaded by train/reference.py


class TrainedTokens(TrainerCallback, ExportableState):
    """The count of tokens the loss was computed on, over every process; saved in checkpoints (restored on
    resume through the Trainer's stateful callbacks)."""

    def __init__(self, count: int = 0) -> None:
        self.count = count
        self.at_start = count

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: object) -> None:
        self.at_start = self.count  # after a resume restored the count

    def state(self) -> dict[str, dict[str, int]]:
        return {"args": {}, "attributes": {"count": self.count}}


class TunelabTrainer(HookedTrainer):
    """Trainer whose loss skips the output head for unlabelled tokens (same value as the standard loss)."""

    def __init__(self, *, model: torch.nn.Module, args: TrainingArguments,
                 train_dataset: Dataset | TorchIterableDataset, eval_dataset: Dataset | None = None,
                 data_collator: Collator | None = None, processing_class: PreTrainedTokenizerBase | None = None,
                 callbacks: list[TrainerCallback] | None = None, options: TrainerOptions | None = None) -> None:
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         data_collator=data_collator, processing_class=processing_class,
                         callbacks=list(callbacks or []) + [TrainedTokens()])
        self.options = options or TrainerOptions()
        self.remove_callback(PrinterCallback)  # tunelab's ProgressLine and StepLog report instead
        self.pending_tokens = 0
        self.eval_totals: list[torch.Tensor] = []
        self.master = MasterWeights(self.model) if self.options.master_weights else None
        # ZeRO-3 and FSDP shard the output head's weight, which the selective loss reads directly
        self.selective = supports_selective_loss(self.model) and not (self.is_deepspeed_enabled
                                                                      or self.is_fsdp_enabled)
        if self.selective:
            self.declare_own_loss()

    def compute_loss(self, model: torch.nn.Module, inputs: Batch, return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None
                     ) -> torch.Tensor | tuple[torch.Tensor, Batch]:
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

    def selective_forward(self, model: torch.nn.Module, inputs: Batch,
                          num_items: torch.Tensor | int | None) -> torch.Tensor:
        """The selective loss, run inside the forward of a wrapped model (so DistributedDataParallel reduces the
        gradients)."""
        inner = self.accelerator.unwrap_model(model)
        if inner is model:
            return selective_loss(model, inputs, num_items)
        return forward_through_wrapper(model, inner, lambda **batch: selective_loss(inner, batch, num_items), inputs)

    # trained tokens: counted per process, summed over processes when logged or saved
    def trained_tokens(self) -> TrainedTokens:
        """The callback that holds the count."""
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

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The Trainer's log, with the trained-token count in training logs."""
        if "loss" in logs or "train_runtime" in logs:
            logs["trained_tokens"] = self.flush_trained_tokens()
        super().log(logs, start_time)

    def before_checkpoint(self) -> None:
        """The checkpoint's trainer_state.json holds the count over every process."""
        self.flush_trained_tokens()

    # evaluation: loss, token accuracy and perplexity
    def prediction_step(self, model: torch.nn.Module, inputs: Batch, prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None
                        ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """The Trainer's step, or the selective loss and the token-accuracy counts with compute_accuracy."""
        if not self.options.compute_accuracy:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self.prepare_inputs(inputs)
        with torch.no_grad(), self.accelerator.autocast():
            loss_sum, correct, count = eval_counts(self.accelerator.unwrap_model(model), inputs)
        self.eval_totals.append(torch.stack([correct, count]).to(torch.long))
        return (loss_sum / count.clamp(min=1)).detach(), None, None

    def evaluation_loop(self, dataloader: DataLoader, description: str, prediction_loss_only: bool | None = None,
                        ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval") -> EvalLoopOutput:
        """The Trainer's loop, with token accuracy and perplexity added to its metrics."""
        self.eval_totals = []
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys,
                                         metric_key_prefix)
        prefix = metric_key_prefix
        metrics = output.metrics
        if self.options.compute_accuracy and self.eval_totals:
            totals = torch.stack(self.eval_totals).sum(0)
            if self.accelerator.num_processes > 1:
                totals = self.accelerator.reduce(totals, reduction="sum")
            metrics[f"{prefix}_accuracy"] = round(float(totals[0]) / max(float(totals[1]), 1.0), 6)
        if self.options.perplexity and f"{prefix}_loss" in metrics:
            metrics[f"{prefix}_perplexity"] = round(math.exp(min(metrics[f"{prefix}_loss"], 700.0)), 4)
        return output

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """The Trainer's optimizer (over the float32 masters with master weights), or LoRA+."""
        if self.optimizer is not None:
            return self.optimizer
        if self.options.loraplus_lr_ratio is None:
            optimizer = super().create_optimizer(model)
            if self.master is not None:
                self.master.attach(optimizer)
            return optimizer
        return self.create_loraplus_optimizer()

    def create_loraplus_optimizer(self) -> torch.optim.Optimizer:
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
    def own_grad_norm(self, max_norm: float) -> torch.Tensor | None:
        """With master weights, the norm of the float32 master gradients (clipped to max_norm)."""
        return self.master.clip_grad_norm(max_norm) if self.master is not None else None

    def weights_for_io(self) -> AbstractContextManager[None]:
        """With master weights, the float32 masters are in the model while it is saved or loaded."""
        return self.master.masters_in_place() if self.master is not None else contextlib.nullcontext()
