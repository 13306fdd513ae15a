"""The HF Trainer with tunelab's loss; one class for every stage that trains a causal LM on labels."""

from __future__ import annotations

from typing import Any

from transformers import Trainer
from transformers.trainer_callback import PrinterCallback

from tunelab.train.loss import selective_loss, supports_selective_loss


class TunelabTrainer(Trainer):
    """Trainer whose loss skips the output head for unlabelled tokens (same value as the standard loss)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.remove_callback(PrinterCallback)  # tunelab's ProgressLine and StepLog report instead
        self.selective = supports_selective_loss(self.model)
        if self.selective:
            # our loss divides by the token count of the whole accumulated batch, which the Trainer
            # computes (over shifted labels) only for models that take loss kwargs
            self.model_accepts_loss_kwargs = True
            self._loss_shifts_labels = True
            self.loss_is_scaled_for_ga = True

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """Selective cross-entropy normalised by the tokens of the whole accumulated batch."""
        if not self.selective:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with self.accelerator.autocast():  # accelerate puts autocast around model.forward, which we bypass
            loss = selective_loss(model, inputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        return (loss, {"loss": loss}) if return_outputs else loss  # evaluation needs the loss only
