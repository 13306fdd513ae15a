"""Fused forms of model pieces that compute the same values with fewer passes over the activations.

`fuse_lora_linears`: PEFT's LoRA linear computes `base(x) + lora_B(lora_A(x)) * scaling`, which writes the
[tokens, out_features] update twice more (the scaling, then the sum) and reads it again in the backward pass.
Here the update is added inside one GEMM (`addmm(base(x), lora_A(x), lora_B.T, alpha=scaling)`): the same sum,
and autograd's addmm backward passes the output gradient through without a copy. The PEFT internals this reads
are listed, and checked against the installed PEFT, in model/peft_private.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tunelab.model import peft_private
from tunelab.model.peft_private import LoraLinear


def fused_lora_forward(self: LoraLinear, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
    """PEFT LoRA Linear forward with the update added by addmm; PEFT's own forward wherever that does not fit."""
    adapters = self.active_adapters
    if (args or kwargs or self.disable_adapters or self.merged or len(adapters) != 1
            or adapters[0] not in self.lora_A or adapters[0] in self.lora_variant):
        return self.unfused_forward(x, *args, **kwargs)
    name = adapters[0]
    lora_a, lora_b = self.lora_A[name], self.lora_B[name]
    if (not isinstance(self.lora_dropout[name], torch.nn.Identity) or lora_a.bias is not None
            or lora_b.bias is not None or (x.dtype != lora_a.weight.dtype
                                           and not torch.is_autocast_enabled(x.device.type))):
        return self.unfused_forward(x, *args, **kwargs)
    result = self.base_layer(x)
    down = F.linear(x, lora_a.weight)
    shape = result.shape
    fused = torch.addmm(result.reshape(-1, shape[-1]), down.reshape(-1, down.shape[-1]), lora_b.weight.t(),
                        alpha=self.scaling[name])
    return fused.view(shape).to(result.dtype)


def fuse_lora_linears(model: torch.nn.Module) -> int:
    """Give every PEFT LoRA Linear of the model the fused forward (idempotent); returns the layers changed."""
    lora_linear = peft_private.lora_linear_class()
    if lora_linear is None:
        return 0
    changed = 0
    for module in model.modules():
        if type(module) is not lora_linear or peft_private.is_replaced(module):
            continue
        peft_private.check_layer(module)
        if isinstance(module.base_layer, torch.nn.Linear) and not module.fan_in_fan_out:
            peft_private.replace_forward(module, fused_lora_forward)
            changed += 1
    return changed
