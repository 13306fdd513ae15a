"""The private-name checks fail with the name, the installed and the tested version, and pass what matches."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tunelab.runtime.private_api import Library, PrivateApiError, check_attributes, check_method

TORCH = Library("torch", tested="9.9.9", guard="tunelab/example.py")


class Owner:
    def step(self, model: object, trial: object = None) -> None:
        """A method with two parameters."""


def test_a_matching_method_passes() -> None:
    check_method(TORCH, Owner, "step", ("self", "model"))
    check_method(TORCH, Owner, "step", ("self", "model", "trial"))


def test_a_missing_method_names_itself_and_the_versions() -> None:
    with pytest.raises(PrivateApiError) as error:
        check_method(TORCH, Owner, "_gone", ("self",))
    message = str(error.value)
    assert "torch's private Owner._gone(self), which does not exist" in message
    assert f"installed torch {TORCH.installed()}" in message and "tested with torch 9.9.9" in message
    assert "tunelab/example.py" in message and "pip install 'torch==9.9.9'" in message


@pytest.mark.parametrize("parameters", [("self", "trial"), ("self", "model", "trial", "more"), ("model",)])
def test_a_changed_signature_is_refused(parameters: tuple[str, ...]) -> None:
    with pytest.raises(PrivateApiError, match=r"Owner.step\(.*\), which takes \(self, model, trial\) in"):
        check_method(TORCH, Owner, "step", parameters)


def test_a_new_required_parameter_is_refused() -> None:
    class Changed:
        def step(self, model: object, extra: int) -> None:
            """Takes one more required argument than before."""

    with pytest.raises(PrivateApiError, match="Changed.step"):
        check_method(TORCH, Changed, "step", ("self", "model"))


def test_attributes() -> None:
    check_attributes(TORCH, "Thing", SimpleNamespace(a=1, _b=2), ("a", "_b"))
    with pytest.raises(PrivateApiError, match=r"private Thing\._c, which does not exist"):
        check_attributes(TORCH, "Thing", SimpleNamespace(a=1), ("a", "_c"))


def test_a_missing_library_says_so() -> None:
    assert Library("no-such-distribution-tunelab", "1.0", "x.py").installed() == "not installed"
