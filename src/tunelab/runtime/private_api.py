"""Checks that an installed library still has the private names tunelab relies on for speed or exactness.

Each library's dependencies are listed in one module (train/hf_private.py for transformers' Trainer,
model/peft_private.py for PEFT's LoRA layer), which calls these checks when it is imported or first used, so
that a changed library fails at once with the name that moved instead of training differently.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


class PrivateApiError(RuntimeError):
    """An installed library lacks a private name tunelab relies on; the message says which and what to do."""


@dataclass(frozen=True)
class Library:
    """A distribution whose private names tunelab uses, the versions it was tested with, and our guard module."""

    name: str
    tested: str  # e.g. "5.25.0"
    guard: str  # the tunelab module that lists the private names

    def installed(self) -> str:
        """The installed version, or 'not installed'."""
        try:
            return version(self.name)
        except PackageNotFoundError:
            return "not installed"

    def error(self, private_name: str, problem: str) -> PrivateApiError:
        """The error for one private name: what changed, the installed and the tested version, the fix."""
        return PrivateApiError(
            f"tunelab relies on {self.name}'s private {private_name}, which {problem} in the installed "
            f"{self.name} {self.installed()}; tunelab is tested with {self.name} {self.tested}. Install it "
            f"(pip install '{self.name}=={self.tested}') or adapt {self.guard} to the new version.")


def check_method(library: Library, owner: type, name: str, parameters: tuple[str, ...]) -> None:
    """owner.name exists and takes `parameters` first, in that order (any further ones have defaults)."""
    method: Callable[..., object] | None = getattr(owner, name, None)
    label = f"{owner.__name__}.{name}({', '.join(parameters)})"
    if not callable(method):
        raise library.error(label, "does not exist")
    found = list(inspect.signature(method).parameters.values())
    names = tuple(parameter.name for parameter in found[:len(parameters)])
    extra_required = [p.name for p in found[len(parameters):]
                      if p.default is inspect.Parameter.empty
                      and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    if names != parameters or extra_required:
        bare = (str(p.replace(annotation=inspect.Parameter.empty, default=inspect.Parameter.empty)) for p in found)
        raise library.error(label, f"takes ({', '.join(bare)})")


def check_attributes(library: Library, owner_name: str, target: object, names: Iterable[str]) -> None:
    """target (a class, or an instance for attributes set in __init__) has every one of names."""
    for name in names:
        if not hasattr(target, name):
            raise library.error(f"{owner_name}.{name}", "does not exist")
