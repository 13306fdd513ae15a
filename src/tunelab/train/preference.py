"""PreferenceTrainer: what the dpo and kto trainers share on top of TunelabTrainer.

The reference (train/reference.py), dropout off (LLaMA-Factory's DPO and KTO trainers disable it, LoRA dropout
included), the loss averaged over each micro-batch and divided by the accumulation steps by the Trainer (as
LLaMA-Factory's), and the per-step figures stored per micro-batch, averaged over the logging window and across
processes, logged under their STAGE_PLOTS names (eval_ prefixed at evaluation).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from tunelab.config.schema import PrefSection
from tunelab.model.attention import uses_packed_attention
from tunelab.train.hf_private import forward_through_wrapper
from tunelab.train.logps import labelled_logps
from tunelab.train.pref_loss import RunningMean
from tunelab.train.reference import Reference
from tunelab.train.trainer import Batch, TrainerOptions, TunelabTrainer

if TYPE_CHECKING:
    from transformers import TrainingArguments

    from tunelab.data.bundle import DataBundle
    from tunelab.model.load import ModelBundle

Figures = dict[str, float]
Stage = TypeVar("Stage", bound="PreferenceTrainer")


class BcoBaseline(TrainerCallback, ExportableState, RunningMean):
    """BCO's running mean reward, saved in checkpoints so a resumed run continues from the same baseline (the
    Trainer restores it as a new instance with these attributes: look it up, never keep a reference)."""

    def __init__(self, mean: float = 0.0, count: float = 1e-24) -> None:
        RunningMean.__init__(self, mean, count)

    def state(self) -> dict[str, dict[str, float]]:
        return {"args": {}, "attributes": {"mean": self.mean, "count": self.count}}


def disable_dropout(model: torch.nn.Module) -> int:
    """Every dropout off: LoRA's dropout modules become Identity (PEFT's own form for lora_dropout 0, which keeps
    the fused LoRA forward), other Dropout modules get p = 0. Returns the modules changed."""
    changed = 0
    for module in model.modules():
        lora_dropout = getattr(module, "lora_dropout", None)
        if isinstance(lora_dropout, torch.nn.ModuleDict):
            for name, layer in list(lora_dropout.items()):
                if isinstance(layer, torch.nn.Dropout):
                    lora_dropout[name] = torch.nn.Identity()
                    changed += 1
        elif isinstance(module, torch.nn.Dropout) and module.p > 0:
            module.p = 0.0
            changed += 1
    return changed


class PreferenceTrainer(TunelabTrainer):
    """TunelabTrainer for losses over per-sequence log-probabilities against a reference."""

    def __init__(self, *, reference: Reference | None, pref: PrefSection, **kwargs: object) -> None:
        super().__init__(**kwargs)
        disable_dropout(self.model)
        self.pref = pref
        self.reference = reference
        if reference is not None and reference.model is not None:
            reference.model.to(self.args.device)
        # the loss is a mean per micro-batch: let the Trainer divide by the accumulation steps (LLaMA-Factory's)
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False
        self.window: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self.add_callback(BcoBaseline())

    @classmethod
    def over(cls: type[Stage], model_bundle: ModelBundle, data_bundle: DataBundle, args: TrainingArguments,
             callbacks: list[TrainerCallback], options: TrainerOptions | None,
             collators: tuple[Callable[[], Any], Callable[[int], Any]]) -> Stage:
        """A trainer of this stage over already-loaded objects (the reference comes in options, loaded by
        train/reference.py), with the first collator (packed rows) where the attention takes them (padding_free
        and a selective-loss model), the second (padded, given the pad token id) elsewhere."""
        options = options or TrainerOptions()
        packed, padded = collators
        collator = (packed() if uses_packed_attention(model_bundle.model)
                    else padded(model_bundle.tokenizer.pad_token_id))
        return cls(model=model_bundle.model, args=args, train_dataset=data_bundle.train,
                   eval_dataset=data_bundle.eval, data_collator=collator, processing_class=model_bundle.tokenizer,
                   callbacks=callbacks, options=options, reference=options.reference,
                   pref=options.pref or PrefSection())

    # the stage's loss: subclasses fill in batch_loss
    def batch_loss(self, model: torch.nn.Module, inputs: Batch) -> tuple[torch.Tensor, Figures, int]:
        """(the micro-batch's loss, its figures, its trained tokens)."""
        raise NotImplementedError

    def compute_loss(self, model: torch.nn.Module, inputs: Batch, return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None
                     ) -> torch.Tensor | tuple[torch.Tensor, Batch]:
        """The stage's loss; its figures kept for the logging window."""
        with self.accelerator.autocast():
            loss, figures, tokens = self.batch_loss(model, inputs)
        split = "train" if model.training else "eval"
        if split == "train":
            self.pending_tokens += tokens
        for key, value in figures.items():
            self.window[split][key].append(value)
        return (loss, {"loss": loss}) if return_outputs else loss

    def prediction_step(self, model: torch.nn.Module, inputs: Batch, prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None
                        ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """The evaluation loss (its figures are kept for the eval_ log)."""
        inputs = self.prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # log-probabilities
    def unwrapped(self, model: torch.nn.Module) -> torch.nn.Module:
        """The training model without its DistributedDataParallel wrapper."""
        return self.accelerator.unwrap_model(model)

    def policy_logps(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        """Per-token log p of the labelled tokens (token_rows order) with gradient, run through the wrapper so
        DistributedDataParallel reduces the gradients."""
        inner = self.unwrapped(model)
        if inner is model or not torch.is_grad_enabled():
            return labelled_logps(inner, batch)[0]
        compute: Callable[..., torch.Tensor] = lambda **b: labelled_logps(inner, b)[0]  # noqa: E731
        return forward_through_wrapper(model, inner, compute, batch)

    def reference_logps(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-row sums, counts) of the reference's labelled log p, without gradient."""
        assert self.reference is not None, "this loss has no reference model"
        return self.reference.logps(self.unwrapped(model), batch)

    def bco_delta(self, batch_mean: float) -> float:
        """BCO's running mean, updated with this batch's mean reward averaged across processes."""
        value = torch.tensor(batch_mean, dtype=torch.float32, device=self.args.device)
        if self.accelerator.num_processes > 1:
            value = self.accelerator.reduce(value, reduction="mean")
        baseline = next(cb for cb in self.callback_handler.callbacks if isinstance(cb, BcoBaseline))
        return baseline.update(float(value), self.accelerator.num_processes)

    def across_processes(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over every process."""
        if self.accelerator.num_processes > 1:
            return self.accelerator.reduce(value.detach().float(), reduction="mean")
        return value

    # logging
    def window_figures(self, split: str) -> Figures:
        """The figures of the logging window: each averaged over its micro-batches, then across processes."""
        stored = self.window[split]
        keys = sorted(stored)
        self.window[split] = defaultdict(list)
        values = torch.tensor([sum(stored[k]) / len(stored[k]) for k in keys], dtype=torch.float32,
                              device=self.args.device)
        if self.accelerator.num_processes > 1 and keys:
            values = self.accelerator.reduce(values, reduction="mean")
        return dict(zip(keys, values.tolist()))

    def finish_figures(self, figures: Figures) -> Figures:
        """Figures derived from the window's averages (a subclass may add some); by default none."""
        return figures

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The Trainer's log with the window's figures added (eval_ prefixed in evaluation logs)."""
        if "loss" in logs:
            logs.update(self.finish_figures(self.window_figures("train")))
        elif "eval_loss" in logs:
            logs.update({f"eval_{k}": v for k, v in self.finish_figures(self.window_figures("eval")).items()})
        super().log(logs, start_time)
