"""Speed-ups applied to a loaded model before training (each one keeps the loss the same); returns notes.

The padding-free CPU attention (model/attention.py) is chosen with the attention implementation, not here.
"""

from __future__ import annotations

import sys
from typing import Any

from tunelab.config.schema import RunConfig
from tunelab.model import fused, kernels
from tunelab.model.precision import Precision
from tunelab.runtime import allocator, env, malloc_preload, onednn


# The fused RMSNorm and rotary kernels round differently from transformers' own functions (and the rotary one runs
# only where a backward pass follows): stages that compare the policy's gradient-tracking forward with a no-grad
# forward of the same weights (a reference, old log-probs, values) would see that difference as a policy change
# (dpo's first loss no longer ln 2, ppo's resumed step off), so only the stages with one forward get them.
KERNEL_STAGES = ("pt", "sft")


def apply(model: Any, precision: Precision, stage: str = "sft") -> list[str]:
    """Apply the measured speed-ups that fit this model, precision and stage; one note per change made."""
    notes = []
    if precision.use_cpu:  # measured on the CPU, where each extra pass over the activations costs
        layers = fused.fuse_lora_linears(model)
        if layers:
            notes.append(f"LoRA updates added inside one GEMM (addmm) in {layers} layers")
        mlps = kernels.fuse_mlps(model)
        if mlps:
            notes.append(f"SwiGLU products keep only their inputs (silu computed again in backward) in {mlps} MLPs")
        if stage not in KERNEL_STAGES:
            kernels.unfuse_rotary(model)
            return notes
        norms = kernels.fuse_rms_norms(model)
        if norms:
            notes.append(f"fused RMSNorm (fp32 statistics, no fp32 activation copies) in {norms} modules")
        rotary = kernels.fuse_rotary(model)
        if rotary:
            notes.append(f"fused rotary embeddings ({', '.join(rotary)})")
    return notes


def keep_less(model: Any, recompute: str) -> list[str]:
    """Memory savings that only fit where no checkpointing recomputes the layers (recompute "none"): the decoder
    layers with fused MLPs keep their SwiGLU products and RMSNorm outputs as recipes (model/kernels.py); one note
    per change made."""
    if recompute != "none":
        return []
    layers = kernels.keep_recipes(model)
    if not layers:
        return []
    return [f"SwiGLU products and RMSNorm outputs computed again in backward instead of kept (bit-identical) in "
            f"{layers} layers"]


def tune_process(precision: Precision) -> list[str]:
    """Process-wide settings for training on the CPU (runtime/allocator.py, runtime/onednn.py), made before the
    model loads; one note per change made."""
    notes = []
    if precision.use_cpu and malloc_preload.active():
        notes.append("malloc: tcmalloc (less memory than glibc's over a run; TUNELAB_MALLOC=system keeps glibc's)")
    elif precision.use_cpu:
        hint = malloc_preload.missing_hint(env.variables(), sys.platform, malloc_preload.find_tcmalloc)
        if hint:
            notes.append(hint)
        if allocator.keep_freed_memory():
            notes.append("malloc keeps freed memory for reuse (no page faults on each step's large tensors)")
    chosen = onednn.bound_caches() if precision.use_cpu else []
    if chosen:
        notes.append(f"oneDNN's caches keep {onednn.CAPACITY} matmul shapes, not 1,024 ({', '.join(chosen)}): "
                     "the memory would grow over the run")
    return notes


def master_weights(config: RunConfig, precision: Precision) -> bool:
    """bf16 working weights with float32 masters (train/master.py) instead of float32 weights under autocast:
    for full and freeze fine-tuning in bf16 on the CPU, in one process without DeepSpeed or FSDP. Measured on
    SmolLM2-135M full fine-tuning (bench/README.md): 1.43x faster per step, no more memory; autocast re-cast
    every weight and, through the float32 residual stream, every activation in each step."""
    return (precision.use_cpu and precision.bf16 and precision.trainable == "float32"
            and config.method.finetuning_type in ("full", "freeze") and env.world_size() == 1
            and not (config.launch.deepspeed or config.launch.fsdp))
