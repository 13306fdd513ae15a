"""Speed-ups applied to a loaded model before training (each one keeps the loss the same); returns notes.

The padding-free CPU attention (model/attention.py) is chosen with the attention implementation, not here.
"""

from __future__ import annotations

from typing import Any

from tunelab.model import fused
from tunelab.train.precision import Precision


def apply(model: Any, precision: Precision) -> list[str]:
    """Apply the measured speed-ups that fit this model and precision; one note per change made."""
    notes = []
    if precision.use_cpu:  # measured on the CPU, where each extra pass over the activations costs
        layers = fused.fuse_lora_linears(model)
        if layers:
            notes.append(f"LoRA updates added inside one GEMM (addmm) in {layers} layers")
    return notes
