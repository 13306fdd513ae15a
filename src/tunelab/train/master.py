"""bf16 working weights with float32 master copies: the forward and backward run on bf16 weights (no autocast
casts of the weights, the activations and the residual stream), the optimizer updates float32 masters.

Each trainable float32 weight becomes bf16 in the model; its float32 copy is what the optimizer holds. After every
optimizer step the masters are copied back, rounded, into the bf16 weights. Saving and loading swap the masters
into the model, so checkpoints and the final model hold the exact float32 weights and a resumed run continues from
them. One process only: DistributedDataParallel reduces the gradients itself. Measured on the CPU: 1.43x faster
per full fine-tuning step than autocast (bench/README.md).

Gradients are kept at the memory they need. A weight's first gradient of a step stays bf16 (its float32 value is
exact from it); only a weight that gets a second one (gradient accumulation) sums in float32 from then on. Clipping
is measured in float32 and its factor applied when the float32 gradient is made, and the optimizer steps the masters
a chunk at a time, each chunk's float32 gradients made just before its step and freed after it. So with one
backward pass per step the gradients take 2 bytes per weight instead of 4, and the step itself never holds more
than a chunk of float32 gradients: LLaMA-Factory's float32 weights and gradients take 8 bytes per weight, these
bf16 weights, bf16 gradients and float32 masters 8 too. The values are those of float32 gradients clipped in
place, bit for bit (tests/unit/train/test_master.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

CHUNK_ELEMENTS = 8 << 20  # weights stepped together: 32 MiB of float32 gradients at most (or one larger weight)


class MasterWeights:
    """The float32 masters of a model's trainable float32 weights, whose working copies are bf16."""

    def __init__(self, model: Any, working_dtype: torch.dtype = torch.bfloat16) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad and p.dtype == torch.float32]
        self.masters = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for param in self.params:
                param.data = param.data.to(working_dtype)
                param.register_post_accumulate_grad_hook(self._keep_grad)
        self.master_of = {id(p): m for p, m in zip(self.params, self.masters)}
        self.param_of = {id(m): p for p, m in zip(self.params, self.masters)}
        self.first: dict[int, torch.Tensor] = {}  # by master id: a step's only gradient so far, bf16
        self.clip_factors: list[torch.Tensor] = []  # applied, in order, when the float32 gradients are made

    def _keep_grad(self, param: torch.Tensor) -> None:
        """Take the weight's gradient off it (autograd would add the next one in bf16): the first of a step is kept
        as it is, a second one starts the master's float32 sum."""
        master = self.master_of[id(param)]
        grad, param.grad = param.grad, None
        if master.grad is not None:
            master.grad.add_(grad)
        elif id(master) in self.first:
            master.grad = self.first.pop(id(master)).float().add_(grad)
        else:
            self.first[id(master)] = grad

    def gradients(self) -> Iterator[torch.Tensor]:
        """The masters' gradients as kept (bf16 or float32, not yet clipped), in the masters' order."""
        for master in self.masters:
            grad = master.grad if master.grad is not None else self.first.get(id(master))
            if grad is not None:
                yield grad

    def float_grad(self, master: torch.Tensor) -> torch.Tensor | None:
        """The master's float32 gradient with the clipping applied, as clipping it in place would have left it
        (the kept gradient is taken: a float32 one is scaled in place)."""
        grad = master.grad if master.grad is not None else self.first.pop(id(master), None)
        return None if grad is None else self.clipped(grad, copy=False)

    def clipped(self, grad: torch.Tensor, copy: bool) -> torch.Tensor:
        """grad in float32 with the clip factors so far applied; a float32 grad is scaled in place unless copy."""
        out = grad.float() if grad.dtype != torch.float32 else grad.clone() if copy else grad
        for factor in self.clip_factors:
            out.mul_(factor)
        return out

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        """The norm of the float32 gradients (as clipped so far), and a factor that clips them to max_norm (inf:
        measured only), computed as torch.nn.utils.clip_grad_norm_ does."""
        norms = []
        for grad in self.gradients():
            if self.clip_factors:  # a second clip in one step measures the first one's result
                grad = self.clipped(grad, copy=True)
            norms.append(torch.linalg.vector_norm(grad, 2.0, dtype=torch.float32))
        if not norms:
            return torch.tensor(0.0)
        total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
        self.clip_factors.append(torch.clamp(max_norm / (total + 1e-6), max=1.0))
        return total

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Make the optimizer (before its first step) update the masters, a chunk at a time
        (ChunkedStep); after each chunk its weights are refreshed and its float32 gradients freed."""
        for group in optimizer.param_groups:
            group["params"] = [self.master_of.get(id(p), p) for p in group["params"]]
        optimizer.__class__ = chunked_class(type(optimizer))
        optimizer.tunelab_master = self

    def before_chunk(self, chunk: list[torch.Tensor]) -> None:
        """Give the chunk's masters their float32 gradients."""
        for master in chunk:
            if id(master) in self.param_of:
                grad = self.float_grad(master)
                if grad is not None:
                    master.grad = grad

    def after_chunk(self, chunk: list[torch.Tensor]) -> None:
        """Copy the chunk's stepped masters, rounded, into their working weights and free their gradients."""
        with torch.no_grad():
            for master in chunk:
                param = self.param_of.get(id(master))
                if param is not None:
                    param.data.copy_(master)
                    master.grad = None

    def after_step(self) -> None:
        """The step is over: gradients not stepped (a weight without one in the optimizer) are dropped."""
        self.first.clear()
        self.clip_factors.clear()
        for master in self.masters:
            master.grad = None

    def refresh(self) -> None:
        """Copy the masters, rounded, into the working weights."""
        with torch.no_grad():
            for param, master in zip(self.params, self.masters):
                param.data.copy_(master)

    @contextmanager
    def masters_in_place(self) -> Iterator[None]:
        """The model holds the float32 masters inside (to save them, or to load a checkpoint into them); the
        working weights are refreshed from them afterwards."""
        working = [p.data for p in self.params]
        for param, master in zip(self.params, self.masters):
            param.data = master
        try:
            yield
        finally:
            for param, data in zip(self.params, working):
                param.data = data
            self.refresh()


def chunks(params: list[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    """The parameters in order, in runs of at most CHUNK_ELEMENTS elements (a larger parameter alone)."""
    limit = CHUNK_ELEMENTS
    run: list[torch.Tensor] = []
    size = 0
    for param in params:
        if run and size + param.numel() > limit:
            yield run
            run, size = [], 0
        run.append(param)
        size += param.numel()
    if run:
        yield run


class ChunkedStep:
    """An optimizer whose step updates its parameters a chunk at a time, with MasterWeights making each chunk's
    float32 gradients just before and refreshing its working weights just after (mixed in before the optimizer's
    own class by MasterWeights.attach; the optimizer's own step does the arithmetic, one group of a chunk each
    call)."""

    tunelab_master: MasterWeights

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        master = self.tunelab_master
        groups = self.param_groups
        try:
            for group in groups:
                for chunk in chunks(group["params"]):
                    master.before_chunk(chunk)
                    self.param_groups = [{**group, "params": chunk}]
                    super().step()  # type: ignore[misc]
                    master.after_chunk(chunk)
        finally:
            self.param_groups = groups
            master.after_step()
        return loss


_CHUNKED: dict[type, type] = {}


def chunked_class(optimizer_class: type) -> type:
    """optimizer_class with ChunkedStep's step (one class per optimizer class; an optimizer already chunked keeps
    its class)."""
    if issubclass(optimizer_class, ChunkedStep):
        return optimizer_class
    if optimizer_class not in _CHUNKED:
        _CHUNKED[optimizer_class] = type(f"Chunked{optimizer_class.__name__}", (ChunkedStep, optimizer_class), {})
    return _CHUNKED[optimizer_class]
