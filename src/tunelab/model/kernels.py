"""RMSNorm, rotary embeddings and the SwiGLU product as autograd Functions with fewer passes or fewer saved tensors.

transformers' RMSNorm casts the input to float32, squares it, takes the mean, multiplies, casts back and
multiplies by the weight: six passes forward, about ten backward, and float32 copies of the activations kept for
the backward pass. `RMSNormFunction` reads the bf16 input once for the norm (fp32 accumulation), writes the
normalised values in one multiply with fp32 math and one rounding (the same rounding as transformers'), then the
weight product; it keeps only the input and one float32 number per token. Its backward is five passes.
The rotary embedding `q * cos + rotate_half(q) * sin` (a negation, a concatenation, two products, a sum) becomes
one product and two half-width fused multiply-adds, and keeps only cos and sin for the backward pass.
The MLP's `silu(gate) * up` keeps gate and up only and computes silu(gate) again in its backward pass (the same
operations, so bit for bit autograd's values), instead of also keeping the activation's output.
Which transformers classes and functions these replace, and how they are checked: model/transformers_private.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F

from tunelab.model import transformers_private as private

RECOMPUTE_PRODUCT = "tunelab_recompute_product"  # an MLP's attribute: keep its SwiGLU product as a recipe


class SavedContext(Protocol):
    """What the Functions below keep on autograd's context between forward and backward."""

    saved_tensors: tuple[torch.Tensor, ...]
    eps: float

    def save_for_backward(self, *tensors: torch.Tensor) -> None:
        """Keep tensors for the backward pass."""
        ...


def inverse_rms(x: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / sqrt(mean(x^2) + eps) over the last dimension, float32, shape [..., 1]: one read of x."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32)
    return torch.rsqrt(norm.square_().div_(x.shape[-1]).add_(eps))


def normalised(x: torch.Tensor, rstd: torch.Tensor) -> torch.Tensor:
    """x * rstd computed in float32, rounded once to x's dtype."""
    return torch.mul(x, rstd, out=torch.empty_like(x)) if x.dtype != rstd.dtype else x * rstd


class RMSNormFunction(torch.autograd.Function):
    """weight * (x * rsqrt(mean(x^2) + eps)).to(x.dtype), the statistics in float32 (transformers' LlamaRMSNorm)."""

    @staticmethod
    def forward(ctx: SavedContext, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        rstd = inverse_rms(x, eps)
        ctx.save_for_backward(x, weight, rstd)
        return weight * normalised(x, rstd)

    @staticmethod
    def backward(ctx: SavedContext, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x, weight, rstd = ctx.saved_tensors
        grad_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = (grad * normalised(x, rstd)).sum_to_size(weight.shape).to(weight.dtype)
        if not ctx.needs_input_grad[0]:
            return None, grad_weight, None
        # d/dx of x * rstd: rstd * (g - x * rstd^2 * mean(g * x)), g the gradient of the normalised values
        g = torch.mul(grad, weight, out=torch.empty(grad.shape, dtype=torch.float32, device=grad.device))
        coefficient = (g * x).sum(-1, keepdim=True).mul_(rstd.pow(3)).div_(x.shape[-1])
        g.mul_(rstd).addcmul_(x, coefficient, value=-1)
        return g.to(x.dtype), grad_weight, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm as transformers' LLaMA family computes it, through RMSNormFunction."""
    return RMSNormFunction.apply(x, weight, eps)


class RMSNormHolder(Protocol):
    """What the fused forward reads from a transformers RMSNorm module."""

    weight: torch.nn.Parameter
    variance_epsilon: float


def fused_rms_norm_forward(self: RMSNormHolder, hidden_states: torch.Tensor) -> torch.Tensor:
    """The forward given to transformers' RMSNorm modules."""
    return rms_norm(hidden_states, self.weight, self.variance_epsilon)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sign: float) -> torch.Tensor:
    """x * cos + sign * rotate_half(x) * sin, rotate_half(x) = [-x2, x1], without materialising rotate_half."""
    half = x.shape[-1] // 2
    out = x * cos
    out[..., :half].addcmul_(x[..., half:], sin[..., :half], value=-sign)
    out[..., half:].addcmul_(x[..., :half], sin[..., half:], value=sign)
    return out


class RotaryFunction(torch.autograd.Function):
    """x * cos + rotate_half(x) * sin; the backward is the rotation by -angle: g * cos - rotate_half(g * sin)."""

    @staticmethod
    def forward(ctx: SavedContext, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        return rotate(x, cos, sin, 1.0)

    @staticmethod
    def backward(ctx: SavedContext, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        cos, sin = ctx.saved_tensors
        half = grad.shape[-1] // 2
        out = grad * cos
        out[..., :half].addcmul_(grad[..., half:], sin[..., half:])
        out[..., half:].addcmul_(grad[..., :half], sin[..., :half], value=-1)
        return out, None, None


def fused_rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, unsqueeze_dim: int,
                 original: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """apply_rotary_pos_emb through RotaryFunction where a backward pass follows; transformers' own elsewhere
    (inference keeps its exact numerics), and where cos/sin need gradients or the head dimension is odd."""
    training = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
    if (not training or cos.requires_grad or sin.requires_grad or q.shape[-1] % 2
            or q.shape[-1] != cos.shape[-1]):
        return original(q, k, cos, sin, unsqueeze_dim)
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return RotaryFunction.apply(q, cos, sin), RotaryFunction.apply(k, cos, sin)


class SwiGLUFunction(torch.autograd.Function):
    """silu(gate) * up, keeping only gate and up: the backward computes silu(gate) again (one pass) instead of
    autograd keeping the activation's output, a [tokens, intermediate] tensor per layer. The same operations as
    silu then mul, so values and gradients are bit for bit autograd's."""

    @staticmethod
    def forward(ctx: SavedContext, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx: SavedContext, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gate, up = ctx.saved_tensors
        grad_up = grad * F.silu(gate)
        return torch.ops.aten.silu_backward(grad * up, gate), grad_up


class MLPHolder(Protocol):
    """What the fused forward reads from a transformers LLaMA-family MLP module."""

    gate_proj: torch.nn.Module
    up_proj: torch.nn.Module
    down_proj: torch.nn.Module


class SavedView(NamedTuple):
    """Where a saved tensor sat in the SwiGLU product's storage: enough to take the same view of it again."""

    size: torch.Size
    stride: tuple[int, ...]
    offset: int


def product_saved_as_recipe(product: torch.Tensor, gate: torch.Tensor,
                            up: torch.Tensor) -> torch.autograd.graph.saved_tensors_hooks:
    """Saved-tensor hooks under which whatever autograd keeps of `product` (the down projection's input, or views
    of it) is kept as its place in the product instead, and the product is computed again from gate and up (which
    SwiGLUFunction keeps anyway) when the backward pass first asks: one [tokens, intermediate] tensor less per
    layer between forward and backward. The same operations as the forward, so the same values bit for bit. The
    hooks hold the product's address, not the product, so it is freed when the forward pass drops it."""
    device, storage = product.device, product.untyped_storage().data_ptr()
    computed: list[torch.Tensor] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor | SavedView:
        if tensor.device != device or tensor.untyped_storage().data_ptr() != storage:
            return tensor
        return SavedView(tensor.shape, tensor.stride(), tensor.storage_offset())

    def unpack(saved: torch.Tensor | SavedView) -> torch.Tensor:
        if not isinstance(saved, SavedView):
            return saved
        if not computed:
            computed.append(F.silu(gate) * up)
        return computed[0].as_strided(saved.size, saved.stride, saved.offset)

    return torch.autograd.graph.saved_tensors_hooks(pack, unpack)


def fused_mlp_forward(self: MLPHolder, x: torch.Tensor) -> torch.Tensor:
    """down(silu(gate(x)) * up(x)) with SwiGLUFunction where a backward pass follows, and where the module is told
    to (recompute_products: only where nothing else recomputes the layer), the product kept as a recipe."""
    gate, up = self.gate_proj(x), self.up_proj(x)
    if torch.is_grad_enabled() and (gate.requires_grad or up.requires_grad) and gate.dtype == up.dtype:
        product = SwiGLUFunction.apply(gate, up)
        if not getattr(self, RECOMPUTE_PRODUCT, False):
            return self.down_proj(product)
        with product_saved_as_recipe(product, gate, up):
            return self.down_proj(product)
    return self.down_proj(F.silu(gate) * up)


def same_values(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Equal within the rounding of the dtype (a replacement that computes something else fails this)."""
    tolerance = 1e-5 if want.dtype == torch.float32 else 2e-2
    return torch.allclose(got.float(), want.float(), rtol=tolerance, atol=tolerance)


def rms_norm_matches(module: torch.nn.Module) -> bool:
    """The fused RMSNorm gives the module's own forward's values on a random input of its width."""
    weight = module.weight
    x = torch.randn(3, weight.shape[-1], generator=torch.Generator().manual_seed(0)).to(weight.device, weight.dtype)
    with torch.no_grad():
        return same_values(rms_norm(x, weight, module.variance_epsilon), module.forward(x))


def rotary_matches(original: Callable[..., tuple[torch.Tensor, torch.Tensor]], head_dim: int) -> bool:
    """The fused rotary embedding gives transformers' values on random input in its layout."""
    generator = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 3, 5, head_dim, generator=generator), torch.randn(1, 2, 5, head_dim, generator=generator)
    angles = torch.rand(1, 5, head_dim, generator=generator) * 6
    args = (q.requires_grad_(), k.requires_grad_(), angles.cos(), angles.sin(), 1)
    with torch.enable_grad():
        pairs = list(zip(fused_rotary(*args, original), original(*args)))
    return all(same_values(got.detach(), want.detach()) for got, want in pairs)


def mlp_matches(module: torch.nn.Module) -> bool:
    """The fused MLP forward gives the class's own forward's values (with gradients on) on a random input: checked
    on a small float32 instance of the module's class built from a copy of its config (the module itself may be
    large, and may mix bf16 weights with float32 adapters that only autocast reconciles)."""
    config = getattr(module, "config", None)
    if config is None:
        return False
    config = copy.copy(config)
    config.hidden_size, config.intermediate_size = 8, 16
    with torch.random.fork_rng(devices=[]):  # the probe's initialisation leaves the run's random state alone
        probe = type(module)(config).float()
    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    with torch.enable_grad():
        x.requires_grad_()
        return same_values(fused_mlp_forward(probe, x).detach(), probe.forward(x).detach())


def replace_forwards(model: torch.nn.Module, wanted: Callable[[torch.nn.Module], bool],
                     matches: Callable[[torch.nn.Module], bool], forward: Callable[..., torch.Tensor]) -> int:
    """Give every module that is `wanted` the forward, where `matches` (checked once per class) finds it computes
    the class's own values; returns the modules changed (idempotent)."""
    checked: dict[type, bool] = {}
    changed = 0
    for module in model.modules():
        if not wanted(module) or "forward" in vars(module):
            continue
        if type(module) not in checked:
            checked[type(module)] = matches(module)
        if checked[type(module)]:
            module.forward = forward.__get__(module)
            changed += 1
    return changed


def fuse_rms_norms(model: torch.nn.Module) -> int:
    """Give every transformers LLaMA-family RMSNorm of the model the fused forward; returns the modules changed."""
    return replace_forwards(model, private.is_rms_norm, rms_norm_matches, fused_rms_norm_forward)


def fuse_mlps(model: torch.nn.Module) -> int:
    """Give every transformers LLaMA-family SiLU MLP of the model the SwiGLU forward; returns the modules changed."""
    return replace_forwards(model, private.is_silu_mlp, mlp_matches, fused_mlp_forward)


def recompute_products(model: torch.nn.Module) -> int:
    """Have every fused MLP of the model keep its SwiGLU product as a recipe (product_saved_as_recipe); only for a
    model whose layers no checkpointing recomputes (its saved-tensor hooks would be shadowed by these); returns the
    MLPs changed."""
    changed = 0
    for module in model.modules():
        if vars(module).get("forward") is not None and getattr(module.forward, "__func__", None) is fused_mlp_forward:
            setattr(module, RECOMPUTE_PRODUCT, True)
            changed += 1
    return changed


def fuse_rotary(model: torch.nn.Module) -> list[str]:
    """Give the modelling modules of the model's LLaMA-family attention layers the fused rotary embedding;
    returns the modules changed (process-wide: their attention layers look the function up by name)."""
    names = {type(module).__module__ for module in model.modules()} & set(private.ROTARY_MODULES)
    changed = []
    for name in sorted(names):
        module = private.rotary_module(name)
        head_dim = next((m.head_dim for m in model.modules()
                         if type(m).__module__ == name and isinstance(getattr(m, "head_dim", None), int)), 64)
        if rotary_matches(private.original_rotary(module), head_dim) and private.replace_rotary(module, fused_rotary):
            changed.append(name.rsplit(".", 1)[-1])
    return changed


def unfuse_rotary(model: torch.nn.Module) -> None:
    """Put transformers' own rotary embedding back for the model's attention layers (fuse_rotary is process-wide,
    so a stage that must not use it undoes what an earlier run in the same process did)."""
    for name in {type(module).__module__ for module in model.modules()} & set(private.ROTARY_MODULES):
        private.restore_rotary(private.rotary_module(name))
