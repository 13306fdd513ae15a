"""The transformers names the fused kernels rely on: the installed transformers has them, and a function or
module without them (or with other parameters) is refused with its name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from tunelab.model import kernels
from tunelab.model import transformers_private as private
from tunelab.runtime.private_api import PrivateApiError


@pytest.fixture(autouse=True)
def transformers_rotary() -> Iterator[None]:
    yield
    for name in private.ROTARY_MODULES:
        private.restore_rotary(private.rotary_module(name))


@pytest.mark.parametrize("name", private.ROTARY_MODULES)
def test_the_installed_transformers_has_every_rotary_function(name: str) -> None:
    module = private.rotary_module(name)
    assert kernels.rotary_matches(private.original_rotary(module), 64)


@pytest.mark.parametrize("name", private.RMS_NORM_CLASSES)
def test_the_installed_transformers_has_every_rms_norm_class(name: str) -> None:
    import importlib

    family = name.removesuffix("RMSNorm").lower()
    norm = getattr(importlib.import_module(f"transformers.models.{family}.modeling_{family}"), name)(16)
    assert private.is_rms_norm(norm) and kernels.rms_norm_matches(norm)


@pytest.mark.parametrize("name", private.MLP_CLASSES)
def test_the_installed_transformers_has_every_mlp_class(name: str) -> None:
    import importlib

    from transformers import LlamaConfig

    family = name.removesuffix("MLP").lower()
    config = LlamaConfig(hidden_size=16, intermediate_size=24, num_attention_heads=2, hidden_act="silu")
    mlp_class = getattr(importlib.import_module(f"transformers.models.{family}.modeling_{family}"), name)
    mlp = mlp_class(config)
    state = torch.random.get_rng_state()
    assert private.is_silu_mlp(mlp) and kernels.mlp_matches(mlp)
    assert torch.equal(torch.random.get_rng_state(), state)  # the check leaves the run's random state alone
    config.hidden_act = "gelu"  # another activation: the MLP keeps its own forward
    assert not private.is_silu_mlp(mlp_class(config))


def test_a_norm_without_the_epsilon_is_refused() -> None:
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    norm = LlamaRMSNorm(8)
    del norm.variance_epsilon
    with pytest.raises(PrivateApiError, match=r"private LlamaRMSNorm\.variance_epsilon, which does not exist"):
        private.is_rms_norm(norm)


def test_a_rotary_function_with_other_parameters_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers.models.llama import modeling_llama

    monkeypatch.setattr(modeling_llama, private.ROTARY_FUNCTION, lambda q, k, cos, sin, position_ids=None: (q, k))
    with pytest.raises(PrivateApiError, match=r"modeling_llama\.apply_rotary_pos_emb\(q, k, cos, sin, "
                                              r"unsqueeze_dim\), which takes \(q, k, cos, sin, position_ids\)"):
        private.rotary_module("transformers.models.llama.modeling_llama")


def test_replace_and_restore_the_rotary_function() -> None:
    from transformers.models.llama import modeling_llama

    original = modeling_llama.apply_rotary_pos_emb
    calls = []

    def fused(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(args))
        return args[0], args[1]

    assert private.replace_rotary(modeling_llama, fused) and not private.replace_rotary(modeling_llama, fused)
    q = torch.ones(1, 1, 2, 4)
    modeling_llama.apply_rotary_pos_emb(q, q, q[0], q[0])
    assert calls == [6] and private.original_rotary(modeling_llama) is original
    private.restore_rotary(modeling_llama)
    assert modeling_llama.apply_rotary_pos_emb is original
