"""The internals of transformers' LLaMA-family modelling code that the fused kernels (model/kernels.py) replace.

MLP: the classes listed in MLP_CLASSES, whose forward is `down_proj(act_fn(gate_proj(x)) * up_proj(x))`, with a
SiLU `act_fn`. RMSNorm: the classes listed in RMS_NORM_CLASSES, whose forward is `weight * (x * rsqrt(mean(x^2) +
eps)).to(dtype)` in float32, read through the instance attributes `weight` and `variance_epsilon`. Rotary
embeddings: the module-level function `apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim)` of each module of
ROTARY_MODULES, which the attention layer looks up by its global name at every call (the `kernels` hub package's
own hook needs a kernel repository laid out as a package; with `kernels` installed the function is its wrapper
module). Names are checked here against the installed transformers (tests/unit/model/test_transformers_private.py),
and model/kernels.py also compares each replacement's values with the original on first use, so a release that
changes the arithmetic keeps its own code instead of ours.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import torch

from tunelab.runtime.private_api import Library, check_attributes

TRANSFORMERS = Library("transformers", tested="5.25.0", guard="tunelab/model/transformers_private.py")

RMS_NORM_CLASSES = ("LlamaRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm", "MistralRMSNorm")
RMS_NORM_ATTRIBUTES = ("weight", "variance_epsilon")  # set in each class's __init__
MLP_CLASSES = ("LlamaMLP", "Qwen2MLP", "Qwen3MLP", "MistralMLP")  # forward: down(act_fn(gate(x)) * up(x))
MLP_ATTRIBUTES = ("gate_proj", "up_proj", "down_proj", "act_fn")
SILU_CLASSES = ("SiLUActivation", "SiLU")  # transformers' ACT2FN["silu"], torch's own
ROTARY_MODULES = ("transformers.models.llama.modeling_llama", "transformers.models.qwen2.modeling_qwen2",
                  "transformers.models.qwen3.modeling_qwen3", "transformers.models.mistral.modeling_mistral")
ROTARY_FUNCTION = "apply_rotary_pos_emb"
ROTARY_PARAMETERS = ("q", "k", "cos", "sin", "unsqueeze_dim")
ORIGINAL = "_tunelab_original"  # attribute of our replacement: the function it replaced


def is_rms_norm(module: torch.nn.Module) -> bool:
    """The module is one of RMS_NORM_CLASSES from transformers (checked to have the attributes read)."""
    cls = type(module)
    if cls.__name__ not in RMS_NORM_CLASSES or not cls.__module__.startswith("transformers.models."):
        return False
    check_attributes(TRANSFORMERS, cls.__name__, module, RMS_NORM_ATTRIBUTES)
    return True


def is_silu_mlp(module: torch.nn.Module) -> bool:
    """The module is one of MLP_CLASSES from transformers (checked to have the attributes read) with a SiLU
    activation."""
    cls = type(module)
    if cls.__name__ not in MLP_CLASSES or not cls.__module__.startswith("transformers.models."):
        return False
    check_attributes(TRANSFORMERS, cls.__name__, module, MLP_ATTRIBUTES)
    return type(module.act_fn).__name__ in SILU_CLASSES


def rotary_module(name: str) -> ModuleType:
    """One of ROTARY_MODULES, imported, with its apply_rotary_pos_emb checked to take ROTARY_PARAMETERS."""
    import inspect

    module = importlib.import_module(name)
    function = getattr(module, ROTARY_FUNCTION, None)
    label = f"{name.rsplit('.', 1)[-1]}.{ROTARY_FUNCTION}({', '.join(ROTARY_PARAMETERS)})"
    if not callable(function):
        raise TRANSFORMERS.error(label, "does not exist")
    found = tuple(inspect.signature(plain_function(getattr(function, ORIGINAL, function))).parameters)
    if found != ROTARY_PARAMETERS:
        raise TRANSFORMERS.error(label, f"takes ({', '.join(found)})")
    return module


def plain_function(function: Callable[..., object]) -> Callable[..., object]:
    """The function itself; for the `kernels` package's wrapper module (transformers' `use_kernel_forward_from_hub`
    with `kernels` installed turns the function into an nn.Module whose forward calls it), the wrapped function."""
    import inspect

    if isinstance(function, torch.nn.Module):
        wrapped = inspect.getclosurevars(type(function).forward).nonlocals.get("func")
        if callable(wrapped):
            return wrapped
    return function


def original_rotary(module: ModuleType) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """transformers' own apply_rotary_pos_emb of the module, also once ours replaces it."""
    function = getattr(module, ROTARY_FUNCTION)
    return getattr(function, ORIGINAL, function)


def replace_rotary(module: ModuleType, fused: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> bool:
    """Make the module's apply_rotary_pos_emb call fused(q, k, cos, sin, unsqueeze_dim, original) (idempotent);
    False if it was replaced already."""
    current = getattr(module, ROTARY_FUNCTION)
    if getattr(current, ORIGINAL, None) is not None:
        return False

    def rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
               unsqueeze_dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        return fused(q, k, cos, sin, unsqueeze_dim, current)

    setattr(rotary, ORIGINAL, current)
    setattr(module, ROTARY_FUNCTION, rotary)
    return True


def restore_rotary(module: ModuleType) -> None:
    """Put transformers' own apply_rotary_pos_emb back (tests, and a process that trains then serves)."""
    setattr(module, ROTARY_FUNCTION, original_rotary(module))
