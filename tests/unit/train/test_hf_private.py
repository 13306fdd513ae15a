"""Each private Trainer name tunelab relies on: the installed transformers has it, and a Trainer without it (or
with another signature) is refused with its name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from transformers import Trainer, TrainingArguments

from tunelab.runtime.private_api import PrivateApiError
from tunelab.train import hf_private
from tunelab.train.hf_private import PRIVATE_ATTRIBUTES, PRIVATE_METHODS


def trainer_class_without(name: str, replacement: object = None) -> type:
    """A class with the real Trainer's methods of PRIVATE_METHODS, except name (missing, or replaced)."""
    methods = {method: getattr(Trainer, method) for method in PRIVATE_METHODS if method != name}
    if replacement is not None:
        methods[name] = replacement
    return type("ChangedTrainer", (), methods)


def test_the_installed_trainer_class_has_every_private_method() -> None:
    hf_private.check_trainer_class(Trainer)
    assert set(PRIVATE_METHODS) >= {"_save_checkpoint", "_clip_grad_norm", "_get_grad_norm", "_load_from_checkpoint",
                                    "_load_best_model", "_prepare_inputs"}


@pytest.mark.parametrize("name", list(PRIVATE_METHODS))
def test_a_trainer_without_the_method_is_refused(name: str) -> None:
    with pytest.raises(PrivateApiError, match=rf"private ChangedTrainer\.{name}\(.*\), which does not exist in the "
                                              rf"installed transformers .*tested with transformers 5\.25\.0"):
        hf_private.check_trainer_class(trainer_class_without(name))


@pytest.mark.parametrize("name", list(PRIVATE_METHODS))
def test_a_trainer_with_another_signature_is_refused(name: str) -> None:
    def changed(self: object, renamed: object, required: object) -> None:
        """The same name, other parameters."""

    expected = rf"ChangedTrainer\.{name}\(.*\), which takes \(self, renamed, required\) in"
    with pytest.raises(PrivateApiError, match=expected):
        hf_private.check_trainer_class(trainer_class_without(name, changed))


def test_a_constructed_trainer_has_every_private_attribute(tmp_path: Path, tiny_llama: Any) -> None:
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    hf_private.check_trainer_instance(Trainer(model=tiny_llama, args=args))


@pytest.mark.parametrize("name", PRIVATE_ATTRIBUTES)
def test_a_trainer_without_the_attribute_is_refused(name: str) -> None:
    trainer = SimpleNamespace(**{attribute: True for attribute in PRIVATE_ATTRIBUTES if attribute != name})
    with pytest.raises(PrivateApiError, match=rf"private Trainer\.{name}, which does not exist"):
        hf_private.check_trainer_instance(trainer)
