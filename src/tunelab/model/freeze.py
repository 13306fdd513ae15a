"""Freeze tuning: train some decoder layers (the last n, or the first n), optionally only some of their modules,
plus chosen modules outside the layers; every other weight is frozen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunelab.config.schema import MethodSection
from tunelab.runtime.names import split_names

if TYPE_CHECKING:  # imported where used: the CLI starts without loading torch
    import torch


class FreezeError(Exception):
    """A freeze setting that does not fit the model; the message names the key."""


@dataclass(frozen=True)
class Layers:
    """Where a model's decoder layers are and what each one holds."""

    path: str  # e.g. model.layers
    count: int
    modules: tuple[str, ...]  # children of a layer: self_attn, mlp, input_layernorm, ...
    outside: tuple[str, ...]  # modules with weights outside the layers: embed_tokens, norm, lm_head


def find_layers(model: torch.nn.Module) -> Layers:
    """The model's stack of decoder layers: the longest ModuleList of identical blocks."""
    import torch

    lists = [(name, module) for name, module in model.named_modules()
             if isinstance(module, torch.nn.ModuleList) and len(module) > 0]
    if not lists:
        raise FreezeError("finetuning_type: freeze needs a model made of numbered decoder layers; this model has "
                          "none (use lora or full)")
    path, stack = max(lists, key=lambda item: len(item[1]))
    children = tuple(sorted(name for name, _ in stack[0].named_children()))
    outside = set()
    for name, _ in model.named_parameters():
        if not name.startswith(path + "."):
            parts = name.split(".")
            outside.add(parts[-2] if len(parts) > 1 else parts[0])
    return Layers(path, len(stack), children, tuple(sorted(outside)))


def trainable_layer_ids(count: int, trainable_layers: int) -> range:
    """The last n layers for n > 0, the first -n for n < 0 (LLaMA-Factory's freeze_trainable_layers)."""
    if trainable_layers > 0:
        return range(max(0, count - trainable_layers), count)
    return range(min(-trainable_layers, count))


def problems(layers: Layers, method: MethodSection) -> list[tuple[str, str]]:
    """(key, message) for each freeze setting that does not fit these layers."""
    found = []
    n = method.freeze_trainable_layers
    if n == 0 or abs(n) > layers.count:
        found.append(("freeze_trainable_layers", f"{n}, but the model has {layers.count} decoder layers; give 1 to "
                      f"{layers.count} (the last n) or -1 to -{layers.count} (the first n)"))
    modules = split_names(method.freeze_trainable_modules)
    if modules != ["all"]:
        missing = [m for m in modules if m not in layers.modules]
        if missing:
            found.append(("freeze_trainable_modules", f"{', '.join(missing)} not in the model's layers; a layer "
                          f"holds: {', '.join(layers.modules)} (or use all)"))
    extra = split_names(method.freeze_extra_modules)
    missing = [m for m in extra if m not in layers.outside]
    if missing:
        found.append(("freeze_extra_modules", f"{', '.join(missing)} not found outside the layers; there are: "
                      f"{', '.join(layers.outside)}"))
    return found


def trainable_prefixes(layers: Layers, method: MethodSection) -> list[str]:
    """Parameter-name prefixes (and module names outside the layers) that stay trainable."""
    modules = split_names(method.freeze_trainable_modules)
    prefixes = []
    for index in trainable_layer_ids(layers.count, method.freeze_trainable_layers):
        if modules == ["all"]:
            prefixes.append(f"{layers.path}.{index}.")
        else:
            prefixes += [f"{layers.path}.{index}.{module}." for module in modules]
    return prefixes


def apply_freeze(model: torch.nn.Module, method: MethodSection) -> str:
    """Freeze every weight but the chosen layers/modules; returns a description of what trains."""
    layers = find_layers(model)
    found = problems(layers, method)
    if found:
        raise FreezeError("; ".join(f"{key}: {message}" for key, message in found))
    prefixes = trainable_prefixes(layers, method)
    extra = set(split_names(method.freeze_extra_modules))
    for name, param in model.named_parameters():
        parts = name.split(".")
        outside_name = parts[-2] if len(parts) > 1 else parts[0]
        param.requires_grad_(name.startswith(tuple(prefixes))
                             or (not name.startswith(layers.path + ".") and outside_name in extra))
    ids = trainable_layer_ids(layers.count, method.freeze_trainable_layers)
    what = method.freeze_trainable_modules if split_names(method.freeze_trainable_modules) != ["all"] else "all modules"
    return (f"layers {ids.start}-{ids.stop - 1} of {layers.count} ({what})"
            + (f" + {', '.join(sorted(extra))}" if extra else ""))
