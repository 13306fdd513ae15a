"""The private parts of transformers' Trainer (and of accelerate's model wrapping) that tunelab relies on.

Every private name the trainer uses is listed here and checked when this module is imported: a transformers
release that renames or re-signs one fails at once, naming it, instead of silently training differently
(tests/unit/train/test_hf_private.py checks each against a class that lacks it). `HookedTrainer` is the only
class that overrides private Trainer methods; each override calls a public-named hook that TunelabTrainer
(train/trainer.py) fills in. Where transformers has a public way (save_model, create_optimizer, evaluation_loop,
the callbacks' events), the trainer uses that instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from transformers import Trainer

from tunelab.runtime.private_api import Library, check_attributes, check_method

TRANSFORMERS = Library("transformers", tested="5.25.0", guard="tunelab/train/hf_private.py")

# private (or privately parametrised) Trainer methods: name -> the leading parameters our overrides and calls use
PRIVATE_METHODS: dict[str, tuple[str, ...]] = {
    "_save_checkpoint": ("self", "model", "trial"),  # the trained-token count is flushed before it is saved
    "_clip_grad_norm": ("self", "model"),  # master weights: clipped over the float32 master gradients
    "_get_grad_norm": ("self", "model", "grad_norm"),  # master weights: the masters' norm when not clipped
    "_load_from_checkpoint": ("self", "resume_from_checkpoint", "model"),  # a resume loads into the masters
    "_load_best_model": ("self",),  # load_best_model_at_end loads into the masters
    "_prepare_inputs": ("self", "inputs"),  # accuracy evaluation prepares a batch as prediction_step does
    "save_model": ("self", "output_dir", "_internal_call"),  # public, but its private flag is passed on
}
# attributes Trainer.__init__ sets, which decide how num_items_in_batch is counted and the loss scaled
PRIVATE_ATTRIBUTES: tuple[str, ...] = ("model_accepts_loss_kwargs", "_loss_shifts_labels")


def check_trainer_class(trainer_class: type) -> None:
    """Every private method of PRIVATE_METHODS exists on trainer_class with the parameters we use."""
    for name, parameters in PRIVATE_METHODS.items():
        check_method(TRANSFORMERS, trainer_class, name, parameters)


def check_trainer_instance(trainer: object) -> None:
    """A constructed trainer has every attribute of PRIVATE_ATTRIBUTES (they are set in Trainer.__init__)."""
    check_attributes(TRANSFORMERS, "Trainer", trainer, PRIVATE_ATTRIBUTES)


check_trainer_class(Trainer)


def forward_through_wrapper(wrapped: torch.nn.Module, inner: torch.nn.Module,
                            compute: Callable[..., torch.Tensor], inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """compute(**inputs) run as inner's forward, called through wrapped (DistributedDataParallel prepares its
    gradient all-reduce in its own forward, so calling compute directly would leave each process stepping on its
    own gradients). accelerate's mixed precision may have set an instance `forward` on inner: it is put back."""
    previous = inner.__dict__.get("forward")
    inner.forward = compute
    try:
        return wrapped(**inputs)
    finally:
        if previous is None:
            del inner.forward
        else:
            inner.forward = previous


class HookedTrainer(Trainer):
    """The Trainer with its private steps routed to public-named hooks that a subclass overrides."""

    def declare_own_loss(self) -> None:
        """Our compute_loss divides by the token count of the whole accumulated batch (over shifted labels): make
        the Trainer count those tokens and not divide the loss by the accumulation steps again."""
        check_trainer_instance(self)
        self.model_accepts_loss_kwargs = True
        self._loss_shifts_labels = True
        self.loss_is_scaled_for_ga = True  # public since transformers 5

    def declare_mean_loss(self) -> None:
        """Our compute_loss returns a mean over its micro-batch (LLaMA-Factory's pairwise losses): make the Trainer
        divide it by the accumulation steps, whatever the model's forward signature suggests."""
        check_trainer_instance(self)
        self.model_accepts_loss_kwargs = False

    def prepare_inputs(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A batch on the device, as the Trainer prepares it for a step."""
        return self._prepare_inputs(inputs)

    # hooks: the subclass overrides these
    def before_checkpoint(self) -> None:
        """Called on every process before a checkpoint (with its trainer_state.json) is written."""

    def own_grad_norm(self, max_norm: float) -> torch.Tensor | None:
        """The gradient norm clipped to max_norm (inf: measured only), or None to let the Trainer compute it."""
        return None

    def weights_for_io(self) -> AbstractContextManager[None]:
        """The context in which the model's weights are saved or a checkpoint is loaded into them."""
        return nullcontext()

    def load_own_weights(self, folder: str) -> bool:
        """Load a checkpoint's (or the best checkpoint's) weights from folder in the subclass's own way and return
        True, or return False to let the Trainer load them (a model that is not a transformers or PEFT model, such
        as a value-head model, needs its own)."""
        return False

    # the private overrides, each calling one hook
    def _save_checkpoint(self, model: torch.nn.Module, trial: object) -> None:
        self.before_checkpoint()
        super()._save_checkpoint(model, trial)

    def _clip_grad_norm(self, model: torch.nn.Module) -> torch.Tensor:
        norm = self.own_grad_norm(self.args.max_grad_norm)
        return super()._clip_grad_norm(model) if norm is None else norm

    def _get_grad_norm(self, model: torch.nn.Module, grad_norm: torch.Tensor | float | None = None
                       ) -> torch.Tensor | float:
        if grad_norm is None:
            norm = self.own_grad_norm(math.inf)
            if norm is not None:
                return norm
        return super()._get_grad_norm(model, grad_norm)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the model (and tokenizer) to output_dir, within weights_for_io."""
        with self.weights_for_io():
            super().save_model(output_dir, _internal_call)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        with self.weights_for_io():
            if not self.load_own_weights(resume_from_checkpoint):
                super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        with self.weights_for_io():
            best = self.state.best_model_checkpoint
            if not (best and self.load_own_weights(best)):
                super()._load_best_model()
