"""The fused RMSNorm and rotary embedding give transformers' values and gradients (fp32 tight, bf16 within
bf16 rounding), in isolation and inside a model, and are not used where a module computes something else."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from tunelab.model import kernels
from tunelab.model import transformers_private as private


@pytest.fixture(autouse=True)
def transformers_rotary() -> Iterator[None]:
    """Every test ends with transformers' own rotary functions in place (the replacement is process-wide)."""
    yield
    for name in private.ROTARY_MODULES:
        private.restore_rotary(private.rotary_module(name))


def hf_rms_norm(width: int, dtype: torch.dtype) -> torch.nn.Module:
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    norm = LlamaRMSNorm(width, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(width, generator=torch.Generator().manual_seed(3)) + 0.5)
    return norm.to(dtype)


def value_and_grads(fn: Any, x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor) -> list[torch.Tensor]:
    x, weight = x.detach().requires_grad_(), weight.detach().requires_grad_()
    out = fn(x, weight)
    out.backward(grad)
    return [out.detach().float(), x.grad.float(), weight.grad.float()]


def rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm()).item()


def rms_cases(dtype: torch.dtype) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(fused, transformers) values and gradients for x, weight, at dtype."""
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(2, 7, 48, generator=generator) * 3).to(dtype)
    grad = torch.randn(2, 7, 48, generator=generator).to(dtype)
    norm = hf_rms_norm(48, dtype)
    reference = value_and_grads(lambda a, w: torch.func.functional_call(norm, {"weight": w}, (a,)), x,
                                norm.weight, grad)
    fused = value_and_grads(lambda a, w: kernels.rms_norm(a, w, norm.variance_epsilon), x, norm.weight, grad)
    return fused, reference


def test_rms_norm_float32_equals_transformers() -> None:
    fused, reference = rms_cases(torch.float32)
    for got, want in zip(fused, reference):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_rms_norm_bfloat16_is_as_close_to_float32_as_transformers_bf16() -> None:
    fused, hf_bf16 = rms_cases(torch.bfloat16)
    _, exact = rms_cases(torch.float32)
    torch.testing.assert_close(fused[0], hf_bf16[0], rtol=0, atol=0)  # forward: the same roundings
    for ours, theirs, want in zip(fused[1:], hf_bf16[1:], exact[1:]):
        assert rel(ours, want) <= 1.5 * rel(theirs, want) + 1e-3


def rotary_inputs(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    q = torch.randn(2, 4, 6, 16, generator=generator).to(dtype)
    k = torch.randn(2, 2, 6, 16, generator=generator).to(dtype)
    angles = torch.rand(2, 6, 16, generator=generator) * 6
    grads = torch.randn(2, 4, 6, 16, generator=generator).to(dtype), torch.randn(2, 2, 6, 16,
                                                                               generator=generator).to(dtype)
    return q, k, angles.cos().to(dtype), angles.sin().to(dtype), *grads


def rotary_values_and_grads(fn: Any, dtype: torch.dtype) -> list[torch.Tensor]:
    q, k, cos, sin, grad_q, grad_k = rotary_inputs(dtype)
    q, k = q.requires_grad_(), k.requires_grad_()
    out_q, out_k = fn(q, k, cos, sin, 1)
    torch.autograd.backward((out_q, out_k), (grad_q, grad_k))
    return [out_q.detach().float(), out_k.detach().float(), q.grad.float(), k.grad.float()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotary_equals_transformers(dtype: torch.dtype) -> None:
    from transformers.models.llama import modeling_llama

    original = private.original_rotary(modeling_llama)
    reference = rotary_values_and_grads(original, dtype)
    fused = rotary_values_and_grads(lambda *args: kernels.fused_rotary(*args, original), dtype)
    exact = rotary_values_and_grads(original, torch.float32)
    for ours, theirs, want in zip(fused, reference, exact):
        if dtype == torch.float32:
            torch.testing.assert_close(ours, want, rtol=1e-5, atol=1e-5)
        else:  # one rounding fewer than transformers' sum of two rounded products
            assert rel(ours, want) <= 1.5 * rel(theirs, want) + 1e-3


def loss_and_grads(model: Any, ids: torch.Tensor, autocast: bool = False) -> list[torch.Tensor]:
    """The loss and the gradients; with autocast, the forward pass under bf16 autocast and the backward pass outside
    it, as training runs them."""
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return [loss.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_a_model_with_the_kernels_trains_as_before(make_tiny_llama: Any) -> None:
    model = make_tiny_llama()
    ids = torch.randint(3, 90, (2, 9), generator=torch.Generator().manual_seed(0))
    want = loss_and_grads(model, ids)
    norms = sum(type(m).__name__ == "LlamaRMSNorm" for m in model.modules())
    assert kernels.fuse_rms_norms(model) == norms > 0 and kernels.fuse_rms_norms(model) == 0
    assert kernels.fuse_rotary(model) == ["modeling_llama"] and kernels.fuse_rotary(model) == []
    mlps = sum(type(m).__name__ == "LlamaMLP" for m in model.modules())
    assert kernels.fuse_mlps(model) == mlps > 0 and kernels.fuse_mlps(model) == 0
    got = loss_and_grads(model, ids)
    assert len(got) == len(want)
    for ours, theirs in zip(got, want):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_swiglu_equals_autograd_bit_for_bit_and_keeps_only_its_inputs(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(4)
    gate, up, grad = (torch.randn(6, 40, generator=generator).to(dtype) for _ in range(3))
    results = []
    for fused in (False, True):
        g, u = gate.clone().requires_grad_(), up.clone().requires_grad_()
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            out = kernels.SwiGLUFunction.apply(g, u) if fused else torch.nn.functional.silu(g) * u
        out.backward(grad)
        results.append(([out.detach(), g.grad, u.grad], len(saved)))
    (theirs, saved_theirs), (ours, saved_ours) = results
    for got, want in zip(ours, theirs):
        assert torch.equal(got, want)
    assert saved_ours == 2 and saved_theirs == 3  # gate and up; autograd also keeps silu(gate)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_product_kept_as_a_recipe_is_freed_after_forward_and_gives_the_same_gradients(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(5)
    gate, up = (torch.randn(2, 6, 40, generator=generator).to(dtype) for _ in range(2))
    weight, grad = torch.randn(8, 40, generator=generator).to(dtype), torch.randn(2, 6, 8).to(dtype)
    results = []
    for recipe in (False, True):
        g, u, w = (t.clone().requires_grad_() for t in (gate, up, weight))
        with kernels.Recipes().active() if recipe else contextlib.nullcontext():
            product = kernels.SwiGLUFunction.apply(g, u)
            kernels.keep_as_recipe(product, lambda g=g, u=u: torch.nn.functional.silu(g) * u)
            alive = weakref.ref(product)
            out = torch.nn.functional.linear(product, w)  # saves a [12, 40] view of the product for w's gradient
            del product
            assert alive() is not None  # held while the layer runs: no other tensor can take its storage
        assert (alive() is None) == recipe  # kept only as gate and up, which SwiGLU keeps anyway
        out.backward(grad)
        results.append([out.detach(), g.grad, u.grad, w.grad])
    for got, want in zip(*results):
        assert torch.equal(got, want)


def test_a_tensor_is_kept_as_a_recipe_only_while_its_layer_runs() -> None:
    x = torch.randn(4, 6, requires_grad=True)
    kernels.keep_as_recipe(x * 2, lambda: x * 2)  # no layer running: nothing registered, nothing held
    recipes = kernels.Recipes()
    with recipes.active():
        y = x * 3
        kernels.keep_as_recipe(y, lambda: torch.full_like(y, 7.0))  # a wrong recipe shows where it is used
        assert recipes.held
        out = (y * x).sum()  # mul keeps y for x's gradient: as the recipe
    assert not recipes.held
    out.backward()
    assert torch.equal(x.grad, torch.full_like(x, 7.0) + 3 * x.detach())  # d/dx of y * x = y' + x * dy/dx
    z = x * 3  # after the layer: kept as it is
    x.grad = None
    (z * x).sum().backward()
    assert torch.equal(x.grad, 6 * x.detach())


@pytest.mark.parametrize("bf16", [False, True])  # float32, or bf16 weights under autocast as training runs
def test_a_model_whose_layers_keep_recipes_trains_bit_for_bit_as_before(make_tiny_llama: Any,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         bf16: bool) -> None:
    model = make_tiny_llama().to(torch.bfloat16 if bf16 else torch.float32)
    kernels.fuse_mlps(model)
    kernels.fuse_rms_norms(model)
    ids = torch.randint(3, 90, (2, 9), generator=torch.Generator().manual_seed(0))
    want = loss_and_grads(model, ids, autocast=bf16)
    layers = sum(type(m).__name__ == "LlamaDecoderLayer" for m in model.modules())
    assert kernels.keep_recipes(model) == layers > 0
    assert kernels.keep_recipes(model) == layers  # idempotent: hooks installed once
    made = []
    original = kernels.Recipe.get
    monkeypatch.setattr(kernels.Recipe, "get", lambda self: made.append(self.make is not None) or original(self))
    got = loss_and_grads(model, ids, autocast=bf16)
    for ours, theirs in zip(got, want):
        assert torch.equal(ours, theirs)
    assert made.count(True) == 3 * layers  # each layer's product and its two norms' outputs, computed once
    assert kernels.keep_recipes(make_tiny_llama()) == 0  # only layers with fused MLPs


def test_recipes_are_not_kept_for_a_layer_that_raised(make_tiny_llama: Any) -> None:
    model = make_tiny_llama()
    kernels.fuse_mlps(model)
    kernels.keep_recipes(model)
    mlp = next(m for m in model.modules() if type(m).__name__ == "LlamaMLP")
    mlp.register_forward_hook(lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        model(input_ids=torch.tensor([[3, 4, 5]]))
    assert not kernels._ACTIVE  # the layer's registry was taken off though its forward raised


def test_lora_mlps_with_bf16_weights_and_float32_adapters_are_fused(make_tiny_llama: Any) -> None:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=2, target_modules=["gate_proj", "up_proj"])
    model = get_peft_model(make_tiny_llama().to(torch.bfloat16), config)
    assert kernels.fuse_mlps(model) == sum(type(m).__name__ == "LlamaMLP" for m in model.modules()) > 0
    ids = torch.randint(3, 90, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)


def test_a_norm_that_computes_something_else_keeps_its_forward() -> None:
    class GemmaLike(torch.nn.Module):  # same name and attributes, weight used as (1 + weight)
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(8))
            self.variance_epsilon = 1e-6

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon) * (1 + self.weight)

    GemmaLike.__name__, GemmaLike.__module__ = "LlamaRMSNorm", "transformers.models.fake.modeling_fake"
    assert kernels.fuse_rms_norms(torch.nn.Sequential(GemmaLike())) == 0


def test_a_rotary_function_that_computes_something_else_is_not_replaced() -> None:
    def interleaved(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                    unsqueeze_dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        return q * cos.unsqueeze(unsqueeze_dim), k * cos.unsqueeze(unsqueeze_dim)

    assert not kernels.rotary_matches(interleaved, 16)
