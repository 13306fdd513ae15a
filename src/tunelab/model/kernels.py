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
Where no checkpointing recomputes the layers, a decoder layer can also keep its SwiGLU product and its norms'
outputs as recipes (`keep_recipes`): the backward pass computes them again from the tensors kept anyway.
Which transformers classes and functions these replace, and how they are checked: model/transformers_private.py.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F

from tunelab.model import transformers_private as private

KEEPS_RECIPES = "tunelab_keeps_recipes"  # a decoder layer's attribute: keep_recipes installed its hooks
RECIPE_CONTEXTS = "tunelab_recipe_contexts"  # a decoder layer's running Recipes.active() contexts


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
    """The forward given to transformers' RMSNorm modules; inside a layer that keeps recipes (keep_recipes), the
    output is computed again from the input, which RMSNormFunction keeps anyway."""
    weight, eps = self.weight, self.variance_epsilon
    out = rms_norm(hidden_states, weight, eps)
    keep_as_recipe(out, lambda: weight * normalised(hidden_states, inverse_rms(hidden_states, eps)))
    return out


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
    """Where a saved tensor sat in a recipe's storage: enough to take the same view of it again."""

    size: torch.Size
    stride: tuple[int, ...]
    offset: int


class Recipe:
    """How to compute a tensor again in the backward pass: `make` runs once, at the first unpack, and the value
    lives as long as the saved tensors that refer to it (until their backward nodes are freed)."""

    def __init__(self, make: Callable[[], torch.Tensor]) -> None:
        self.make: Callable[[], torch.Tensor] | None = make
        self.value: torch.Tensor | None = None

    def get(self) -> torch.Tensor:
        """The tensor, computed now if not yet."""
        if self.make is not None:
            with torch.no_grad():
                self.value = self.make()
            self.make = None  # let go of the inputs
        assert self.value is not None
        return self.value


class Kept(NamedTuple):
    """A saved tensor kept as its place in a recipe's output."""

    view: SavedView
    recipe: Recipe


_ACTIVE: list[Recipes] = []  # the recipes of the decoder layers whose forward is running, innermost last


class Recipes:
    """Tensors of one decoder layer's forward that the backward pass computes again instead of keeping.

    While `active()`, whatever autograd saves of a registered tensor (or of a view of it) is kept as a `Kept`, and
    the tensor is computed from its recipe's inputs, which other saved tensors keep anyway, when the backward pass
    first asks. The recipes repeat the forward's operations, so the values are the same bit for bit. The registry
    holds the registered tensors until the layer's forward ends, so no other tensor can take their storage (and be
    mistaken for them) while it matches; then it lets go, and the tensors are freed with the forward's locals.
    """

    def __init__(self) -> None:
        self.held: dict[tuple[torch.device, int], tuple[torch.Tensor, Recipe]] = {}

    def add(self, tensor: torch.Tensor, make: Callable[[], torch.Tensor]) -> None:
        """Keep what autograd saves of `tensor` as `make`, called again in backward."""
        self.held[(tensor.device, tensor.untyped_storage().data_ptr())] = (tensor, Recipe(make))

    def pack(self, tensor: torch.Tensor) -> torch.Tensor | Kept:
        """autograd's pack hook: a registered tensor (or a view of it) becomes its place in the recipe."""
        entry = self.held.get((tensor.device, tensor.untyped_storage().data_ptr()))
        if entry is None:
            return tensor
        return Kept(SavedView(tensor.shape, tensor.stride(), tensor.storage_offset()), entry[1])

    @contextlib.contextmanager
    def active(self) -> Iterator[Recipes]:
        """Register into this and keep recipes while the block runs (one decoder layer's forward)."""
        _ACTIVE.append(self)
        try:
            with torch.autograd.graph.saved_tensors_hooks(self.pack, unpack):
                yield self
        finally:
            _ACTIVE.pop()
            self.held.clear()


def unpack(saved: torch.Tensor | Kept) -> torch.Tensor:
    """autograd's unpack hook: a kept view is taken again of its recipe's tensor, computed on first use."""
    if not isinstance(saved, Kept):
        return saved
    return saved.recipe.get().as_strided(saved.view.size, saved.view.stride, saved.view.offset)


def keep_as_recipe(tensor: torch.Tensor, make: Callable[[], torch.Tensor]) -> None:
    """Register a tensor with the running layer's recipes where a backward pass may save it (keep_recipes)."""
    if _ACTIVE and torch.is_grad_enabled():
        _ACTIVE[-1].add(tensor, make)


def fused_mlp_forward(self: MLPHolder, x: torch.Tensor) -> torch.Tensor:
    """down(silu(gate(x)) * up(x)) with SwiGLUFunction where a backward pass follows; inside a layer that keeps
    recipes (keep_recipes), the product is computed again from gate and up, which SwiGLUFunction keeps anyway."""
    gate, up = self.gate_proj(x), self.up_proj(x)
    if torch.is_grad_enabled() and (gate.requires_grad or up.requires_grad) and gate.dtype == up.dtype:
        product = SwiGLUFunction.apply(gate, up)
        keep_as_recipe(product, lambda: F.silu(gate) * up)
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


def keep_recipes(model: torch.nn.Module) -> int:
    """Have every decoder layer with a fused MLP keep its SwiGLU product and its fused RMSNorms' outputs as recipes
    (Recipes): two [tokens, hidden] and one [tokens, intermediate] tensor less per layer between forward and
    backward. Only for a model whose layers no checkpointing recomputes (its saved-tensor hooks would be shadowed
    by these); returns the layers changed (idempotent)."""
    changed = 0
    for name, module in model.named_modules():
        if getattr(vars(module).get("forward"), "__func__", None) is not fused_mlp_forward or "." not in name:
            continue
        layer = model.get_submodule(name.rsplit(".", 1)[0])
        if not getattr(layer, KEEPS_RECIPES, False):
            layer.register_forward_pre_hook(enter_recipes)
            layer.register_forward_hook(leave_recipes, always_call=True)
            setattr(layer, KEEPS_RECIPES, True)
        changed += 1
    return changed


def enter_recipes(layer: torch.nn.Module, _: object) -> None:
    """Forward pre-hook of a layer that keeps recipes: a fresh registry for this forward."""
    context = Recipes().active()
    context.__enter__()
    vars(layer).setdefault(RECIPE_CONTEXTS, []).append(context)


def leave_recipes(layer: torch.nn.Module, *_: object) -> None:
    """Forward hook (also on an error) of a layer that keeps recipes: stop registering and let go of the tensors."""
    vars(layer)[RECIPE_CONTEXTS].pop().__exit__(None, None, None)


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
