"""Attention over packed sequences: several examples in one row, each attending only to itself.

The padding-free collator concatenates a batch into one row and passes `cu_seq_lens_q/k` (cumulative
example lengths, flash-attention's varlen convention) with position ids that restart per example.
On the CPU each example's attention is a few batched GEMMs with the causal softmax between them
(`SegmentAttention`, hand-written backward): for examples of up to a couple of thousand tokens one block's
[heads, tokens, tokens] probabilities fit in memory and the GEMMs run near the CPU's matmul rate. The backward
pass computes the probabilities again instead of keeping every layer's (heads x length^2 per example, the largest
part of a LoRA step's saved activations): one more GEMM and softmax per block, and on SmolLM2 LoRA no slower
(bench/README.md, "Training memory"). Measured at 500 tokens per example (SmolLM2's 9 query / 3 key-value heads,
bf16, forward + backward): 2.5x faster than SDPA's CPU flash-attention kernel per example.
Elsewhere, or for longer examples, each example's slice runs through SDPA with `is_causal=True`, so no
padding is computed and no mask is materialised. On a GPU with flash-attention installed, transformers'
own `flash_attention_2` reads the same arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:  # imported where used: the CLI starts without loading transformers
    from peft import PeftModel
    from transformers import PreTrainedModel

NAME = "tunelab_packed_sdpa"
NATIVE_VARLEN = ("flash_attention_2", "flash_attention_3")  # read cu_seq_lens_q/k themselves
GEMM_MAX_TOKENS = 2048  # longest example the GEMM attention takes: a block's probabilities grow with length^2
BLOCK_SPLIT_TOKENS = 256  # examples this long split their query rows in two: the first half skips the later keys
BIAS_CACHE_BYTES = 64 << 20  # causal biases kept for reuse, about a batch's blocks (256 of any size before)
_BIAS: dict[tuple[int, int, int, torch.dtype, torch.device], torch.Tensor] = {}


def row_blocks(edges: list[int]) -> list[tuple[int, int, int]]:
    """(example start, first row, end row) of each block of query rows; a block attends keys start..end row - 1.

    An example of BLOCK_SPLIT_TOKENS or more is split in two halves of rows, so the first half's scores stop at
    its own last key: 3/4 of the square is computed instead of all of it.
    """
    out = []
    for start, end in zip(edges[:-1], edges[1:]):
        if end - start >= BLOCK_SPLIT_TOKENS:
            middle = start + (end - start) // 2
            out += [(start, start, middle), (start, middle, end)]
        elif end > start:
            out.append((start, start, end))
    return out


def block_bias(offset: int, rows: int, group: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[group * rows, offset + rows]: 0 where row offset + i may see key j (j <= offset + i), -inf elsewhere,
    stacked group times (the query heads sharing a key/value head). Cached, because every layer has the same
    blocks; the cache is emptied when it passes BIAS_CACHE_BYTES, so the blocks of earlier batches' lengths do not
    pile up over a run."""
    key = (offset, rows, group, dtype, device)
    bias = _BIAS.get(key)
    if bias is None:
        if sum(cached.nbytes for cached in _BIAS.values()) > BIAS_CACHE_BYTES:
            _BIAS.clear()
        one = torch.full((rows, offset + rows), float("-inf"), device=device).triu_(offset + 1).to(dtype)
        bias = _BIAS[key] = one.repeat(group, 1)
    return bias


class SegmentContext(Protocol):
    """What SegmentAttention keeps on autograd's context between its forward and backward passes."""

    saved_tensors: tuple[torch.Tensor, ...]  # query, key, value
    blocks: list[tuple[int, int, int]]
    scale: float

    def save_for_backward(self, *tensors: torch.Tensor) -> None:
        """Keep tensors for the backward pass (autograd checks they were not modified in place)."""
        ...


class SegmentAttention(torch.autograd.Function):
    """Causal attention per packed example with grouped key/value heads, as batched GEMMs.

    query [1, heads, tokens, dim], key/value [1, kv_heads, tokens, dim]; returns [1, tokens, heads, dim].
    The query heads sharing a key/value head are stacked into one GEMM ([kv_heads, group * rows, dim]), so keys
    and values are never repeated. Scores come out of one baddbmm with the causal bias (fp32 accumulation, one
    rounding to the input dtype, as SDPA's math path), the softmax runs in float32 inside ATen's kernel; the backward
    pass computes the probabilities again by the same operations (block_probabilities) and runs ATen's fused softmax
    backward on them.
    Long examples are computed in two blocks of rows (row_blocks), skipping a quarter of the causal square.
    """

    @staticmethod
    def forward(ctx: SegmentContext, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, edges: list[int],
                scale: float) -> torch.Tensor:
        _, heads, tokens, dim = query.shape
        kv_heads = key.shape[1]
        group = heads // kv_heads
        out = query.new_empty(1, tokens, heads, dim)
        blocks = row_blocks(edges)
        for block in blocks:
            start, first, end = block
            rows = end - first
            o = torch.bmm(block_probabilities(query, key, block, scale)[1], value[0, :, start:end])
            out[0, first:end] = o.view(kv_heads, group, rows, dim).permute(2, 0, 1, 3).reshape(rows, heads, dim)
        ctx.save_for_backward(query, key, value)
        ctx.blocks, ctx.scale = blocks, scale
        return out

    @staticmethod
    def backward(ctx: SegmentContext,
                 grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None, None]:
        query, key, value = ctx.saved_tensors
        _, heads, tokens, dim = query.shape
        kv_heads = key.shape[1]
        group = heads // kv_heads
        grad_q = query.new_empty(1, tokens, heads, dim)
        grad_k = key.new_zeros(1, tokens, kv_heads, dim)  # the blocks of one example add to the same keys
        grad_v = value.new_zeros(1, tokens, kv_heads, dim)
        for block in ctx.blocks:
            start, first, end = block
            rows = end - first
            q, p = block_probabilities(query, key, block, ctx.scale)
            d_out = (grad_out[0, first:end].to(query.dtype).reshape(rows, kv_heads, group, dim)
                     .permute(1, 2, 0, 3).reshape(kv_heads, group * rows, dim))
            k, v = key[0, :, start:end], value[0, :, start:end]
            grad_v[0, start:end].add_(torch.bmm(p.transpose(1, 2), d_out).transpose(0, 1))  # add_: `+=` copies back
            d_scores = torch._softmax_backward_data(torch.bmm(d_out, v.transpose(1, 2)), p, -1, p.dtype)
            del p
            d_q = torch.bmm(d_scores, k).view(kv_heads, group, rows, dim).permute(2, 0, 1, 3)
            torch.mul(d_q, ctx.scale, out=grad_q[0, first:end].view(rows, kv_heads, group, dim))
            grad_k[0, start:end].add_(torch.bmm(d_scores.transpose(1, 2), q).transpose(0, 1))
        return grad_q.transpose(1, 2), grad_k.transpose(1, 2), grad_v.transpose(1, 2), None, None


def block_probabilities(query: torch.Tensor, key: torch.Tensor, block: tuple[int, int, int],
                        scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One block of query rows times scale, [kv_heads, group * rows, dim], and its softmax(q k^T + causal bias),
    [kv_heads, group * rows, keys]: the same operations in forward and backward, so the probabilities computed
    again are bit for bit the ones of forward."""
    start, first, end = block
    kv_heads = key.shape[1]
    q = scaled_query(query, first, end, kv_heads, scale)
    bias = block_bias(first - start, end - first, query.shape[1] // kv_heads, query.dtype, query.device)
    return q, torch.softmax(torch.baddbmm(bias, q, key[0, :, start:end].transpose(1, 2)), dim=-1)


def scaled_query(query: torch.Tensor, start: int, end: int, kv_heads: int, scale: float) -> torch.Tensor:
    """Query rows start..end times scale, as [kv_heads, group * rows, dim] (the heads of a group stacked)."""
    _, heads, _, dim = query.shape
    rows, group = end - start, heads // kv_heads
    q = query.new_empty(kv_heads, group * rows, dim)
    torch.mul(query[0, :, start:end].view(kv_heads, group, rows, dim), scale, out=q.view(kv_heads, group, rows, dim))
    return q


def gemm_attention_fits(query: torch.Tensor, key: torch.Tensor, edges: list[int], dropout: float,
                        kwargs: dict[str, object]) -> bool:
    """The GEMM attention covers this call: CPU, no dropout, plain causal attention, examples not too long."""
    return (query.device.type == "cpu" and dropout == 0.0 and not kwargs.get("softcap")
            and kwargs.get("sliding_window") is None and kwargs.get("s_aux") is None
            and query.shape[1] % key.shape[1] == 0 and query.dtype == key.dtype
            and max((b - a for a, b in zip(edges[:-1], edges[1:])), default=0) <= GEMM_MAX_TOKENS)


def packed_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          **kwargs: Any) -> tuple[torch.Tensor, None]:
    """SDPA per packed example (query/key/value: [1, heads, tokens, dim]); plain SDPA without cu_seq_lens.

    kwargs are whatever the model's attention layer passes (cu_seq_lens_q, sliding_window, softcap, s_aux, ...,
    different per architecture), handed on to transformers' SDPA as they came.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.pop("cu_seq_lens_q", None)
    for name in ("cu_seq_lens_k", "max_length_q", "max_length_k"):
        kwargs.pop(name, None)
    if bounds is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    edges = bounds.tolist()
    if gemm_attention_fits(query, key, edges, dropout, kwargs):
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        with torch.autocast(query.device.type, enabled=False):  # computes in the dtype q/k/v arrive in
            return SegmentAttention.apply(query, key, value.to(query.dtype), edges, scale), None
    outputs = [sdpa_attention_forward(module, query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
                                      None, dropout=dropout, scaling=scaling, is_causal=True)[0]
               for start, end in zip(edges[:-1], edges[1:]) if end > start]
    return torch.cat(outputs, dim=1), None


def register() -> str:
    """Make the packed attention selectable by name (idempotent); returns the name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_sdpa_attention)
    return NAME


def use_packed_attention(model: PreTrainedModel) -> bool:
    """Switch a model whose attention is sdpa or eager to the packed SDPA attention (flash-attention, which
    reads cu_seq_lens itself, stays as it is); False if it cannot take packed rows."""
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", None)
    if implementation in NATIVE_VARLEN:
        return True
    if implementation not in ("sdpa", "eager", NAME):
        return False
    try:
        model.set_attn_implementation(register())
    except (ValueError, AttributeError, NotImplementedError):
        return False
    return True


def uses_packed_attention(model: PreTrainedModel | PeftModel) -> bool:
    """True when the model (or the one under a PEFT wrapper) takes padding-free packed rows: the packed SDPA
    attention, or flash-attention's varlen path."""
    from tunelab.model.adapters import base_model

    implementation = getattr(getattr(base_model(model), "config", None), "_attn_implementation", None)
    return implementation == NAME or implementation in NATIVE_VARLEN
