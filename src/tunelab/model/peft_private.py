"""The internals of PEFT's LoRA Linear layer that the fused LoRA forward (model/fused.py) relies on.

Every name is listed here and checked against the installed PEFT on first use: a release that renames or
re-signs one fails at once, naming it, instead of computing something else (tests/unit/model/test_peft_private.py
checks each against a class that lacks it). PEFT has no public hook for a layer's forward arithmetic (its
LoraVariant classes are internal too, and run after PEFT has already computed base(x)), so the fused forward is
set on each layer instance, and PEFT's own forward is kept as `unfused_forward` for the cases it does not fit.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Protocol

import torch

from tunelab.runtime.private_api import Library, check_attributes, check_method

PEFT = Library("peft", tested="0.21.2", guard="tunelab/model/peft_private.py")

LAYER_CLASS = "peft.tuners.lora.layer.Linear"
# methods (name -> leading parameters): PEFT's forward is called with the layer input and whatever else it got
METHODS: dict[str, tuple[str, ...]] = {"forward": ("self", "x")}
# properties of the class (from BaseTunerLayer): which adapters run, and whether they are off or merged
PROPERTIES: tuple[str, ...] = ("active_adapters", "disable_adapters", "merged")
# attributes LoraLayer.__init__ / Linear.__init__ set on each instance: the pieces of the LoRA update
INSTANCE_ATTRIBUTES: tuple[str, ...] = ("base_layer", "lora_A", "lora_B", "lora_dropout", "lora_variant", "scaling",
                                        "fan_in_fan_out")
UNFUSED = "unfused_forward"  # tunelab's own attribute: PEFT's forward, kept on a layer given another one


class LoraLinear(Protocol):
    """What the fused forward reads from a PEFT LoRA Linear layer."""

    active_adapters: list[str]
    disable_adapters: bool
    merged: bool
    base_layer: torch.nn.Module
    lora_A: torch.nn.ModuleDict
    lora_B: torch.nn.ModuleDict
    lora_dropout: torch.nn.ModuleDict
    lora_variant: dict[str, object]
    scaling: dict[str, float]
    fan_in_fan_out: bool

    def unfused_forward(self, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        """PEFT's own forward of the layer."""


def check_layer_class(layer_class: type) -> None:
    """The LoRA Linear class has every method of METHODS (with those parameters) and every one of PROPERTIES."""
    for name, parameters in METHODS.items():
        check_method(PEFT, layer_class, name, parameters)
    check_attributes(PEFT, layer_class.__name__, layer_class, PROPERTIES)


def check_layer(layer: torch.nn.Module) -> None:
    """A LoRA Linear instance has every one of INSTANCE_ATTRIBUTES."""
    check_attributes(PEFT, type(layer).__name__, layer, INSTANCE_ATTRIBUTES)


def lora_linear_class() -> type | None:
    """PEFT's LoRA Linear class, checked; None when PEFT is not installed."""
    try:
        from peft.tuners.lora.layer import Linear
    except ImportError:
        return None
    check_layer_class(Linear)
    return Linear


def is_replaced(layer: torch.nn.Module) -> bool:
    """True once the layer was given another forward by replace_forward."""
    return UNFUSED in vars(layer)


def replace_forward(layer: torch.nn.Module, forward: Callable[..., torch.Tensor]) -> None:
    """Make forward (a function taking the layer first) the layer's forward; PEFT's stays as unfused_forward."""
    setattr(layer, UNFUSED, layer.forward)
    layer.forward = types.MethodType(forward, layer)
