"""Each PEFT LoRA-layer name the fused forward relies on: the installed PEFT has it, and a layer class or
instance without it (or a forward with other parameters) is refused with its name."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from tunelab.model import peft_private
from tunelab.model.fused import fuse_lora_linears
from tunelab.model.peft_private import INSTANCE_ATTRIBUTES, METHODS, PROPERTIES
from tunelab.runtime.private_api import PrivateApiError


def lora_layers(make_tiny_llama: Any) -> list[torch.nn.Module]:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(make_tiny_llama(), LoraConfig(r=4, target_modules="all-linear"))
    layer_class = peft_private.lora_linear_class()
    return [module for module in model.modules() if type(module) is layer_class]


def layer_class_without(name: str, replacement: object = None) -> type:
    """A class with the real LoRA Linear's methods and properties, except name (missing, or replaced)."""
    from peft.tuners.lora.layer import Linear

    members = {member: getattr(Linear, member) for member in (*METHODS, *PROPERTIES) if member != name}
    if replacement is not None:
        members[name] = replacement
    return type("ChangedLinear", (), members)


def test_the_installed_peft_has_every_name(make_tiny_llama: Any) -> None:
    layers = lora_layers(make_tiny_llama)
    assert layers
    for layer in layers:
        peft_private.check_layer(layer)


@pytest.mark.parametrize("name", [*METHODS, *PROPERTIES])
def test_a_layer_class_without_the_name_is_refused(name: str) -> None:
    with pytest.raises(PrivateApiError, match=rf"peft's private ChangedLinear\.{name}.*, which does not exist in the "
                                              rf"installed peft .*tested with peft 0\.21\.2"):
        peft_private.check_layer_class(layer_class_without(name))


def test_a_forward_with_other_parameters_is_refused() -> None:
    def forward(self: object, hidden: torch.Tensor) -> torch.Tensor:
        """Another first parameter."""
        return hidden

    with pytest.raises(PrivateApiError, match=r"ChangedLinear\.forward\(self, x\), which takes \(self, hidden\) in"):
        peft_private.check_layer_class(layer_class_without("forward", forward))


@pytest.mark.parametrize("name", INSTANCE_ATTRIBUTES)
def test_a_layer_without_the_attribute_is_refused(name: str) -> None:
    layer = SimpleNamespace(**{attribute: None for attribute in INSTANCE_ATTRIBUTES if attribute != name})
    with pytest.raises(PrivateApiError, match=rf"private SimpleNamespace\.{name}, which does not exist"):
        peft_private.check_layer(layer)


def test_fusing_checks_each_layer(make_tiny_llama: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer that lost an attribute stops the fusing with the guard's error, not an AttributeError."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(make_tiny_llama(), LoraConfig(r=4, target_modules="all-linear"))
    monkeypatch.setattr(peft_private, "INSTANCE_ATTRIBUTES", (*INSTANCE_ATTRIBUTES, "lora_gone"))
    with pytest.raises(PrivateApiError, match=r"Linear\.lora_gone, which does not exist"):
        fuse_lora_linears(model)
