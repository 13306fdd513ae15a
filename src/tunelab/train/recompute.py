"""How much of each decoder layer the backward pass recomputes: nothing, only the cheap work, or everything.

Without recomputation a training step keeps, per token and layer, every intermediate its backward needs: the
LoRA layers' inputs, the MLP's products, the norms' inputs, dtype copies (the attention probabilities and the SiLU
output are computed again in backward by model/attention.py and model/kernels.py). On SmolLM2-135M
(bench/README.md, "Training memory") those are most of the step's memory, while the matrix products (the
projections) are most of its time.

"cheap" (gradient_checkpointing: cheap) keeps the outputs of the large matrix products and the fused attention
kernels and recomputes the rest in the backward pass (torch's selective activation checkpointing, one region per
decoder layer): the elementwise work, the rank-r LoRA updates, and the attention scores (one small GEMM per example
and head) with their softmax. Measured on SmolLM2-135M: 0.71x the peak memory of a LoRA run for 1.24x the layers'
CPU time, so it is opt-in.
"full" is the usual gradient checkpointing: only each layer's input is kept and the whole layer runs again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch.utils.checkpoint import CheckpointPolicy, SelectiveCheckpointContext
from torch.utils.checkpoint import create_selective_checkpoint_contexts

from tunelab.model.adapters import base_model

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

Recompute = Literal["none", "cheap", "full"]
LARGE_MODEL_PARAMETERS = 1_000_000_000
# a product whose inner dimension is at most this costs little to recompute per element it writes (LoRA's
# rank-r update, the attention scores' head dimension), while keeping its output costs as much as any other
CHEAP_INNER_DIM = 256
_aten = torch.ops.aten
GEMMS = (_aten.mm.default, _aten.addmm.default, _aten.bmm.default, _aten.baddbmm.default)
ATTENTION_KERNELS = tuple(getattr(_aten, name).default for name in (
    "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention") if hasattr(_aten, name))


def choose(setting: bool | str | None, parameters: int) -> Recompute:
    """gradient_checkpointing true: full; false: none; cheap: cheap (config checks limit it to pt and sft);
    unset: full from 1B parameters, none below (cheap costs about 1.2x the layers' time, bench/README.md)."""
    if setting == "cheap":
        return "cheap"
    if setting is not None:
        return "full" if setting else "none"
    return "full" if parameters >= LARGE_MODEL_PARAMETERS else "none"


def inner_dim(op: torch._ops.OpOverload, args: tuple[object, ...]) -> int:
    """The inner (reduced) dimension of a matrix product's call."""
    first = args[1] if op in (_aten.addmm.default, _aten.baddbmm.default) else args[0]
    return first.shape[-1] if isinstance(first, torch.Tensor) else 0


def keep_output(ctx: SelectiveCheckpointContext, op: torch._ops.OpOverload, *args: object,
                **kwargs: object) -> CheckpointPolicy:
    """Keep the outputs of the large matrix products and the attention kernels; recompute everything else."""
    if op in ATTENTION_KERNELS or (op in GEMMS and inner_dim(op, args) > CHEAP_INNER_DIM):
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def cheap_context() -> tuple[object, object]:
    """The selective checkpoint's forward and recompute contexts for keep_output."""
    return create_selective_checkpoint_contexts(keep_output)


def enable_cheap(model: PreTrainedModel | PeftModel) -> bool:
    """Recompute only the cheap work of each decoder layer in the backward pass; False where the model has no
    checkpointable layers."""
    base = base_model(model)
    if not getattr(base, "supports_gradient_checkpointing", False):
        return False
    kwargs = {"use_reentrant": False, "context_fn": cheap_context}
    enable = getattr(base, "activation_checkpointing_enable", None)
    if enable is not None:  # transformers 5.x; gradient_checkpointing_enable is its deprecated alias
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return True
