"""Our own decoding loop: one prefill over a left-padded batch, then one step per token for the rows still running.

HF `generate` keeps decoding a batch until its longest answer ends; here a row that finishes (stop token, its own
max_new_tokens, or a cancel from `on_token`) leaves the batch at once: its rows of the KV cache, the attention
mask and the position counters are dropped, so the later steps compute only for the rows still running. Rows may
differ in their sampling settings; greedy rows give the same tokens as `model.generate(do_sample=False)` on the
prompt alone. `predict` calls `generate` directly; chat and the API through `infer/engine.py`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

from tunelab.config.schema import InferSection
from tunelab.infer.protocols import CausalLM, Tokenizer

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache

FinishReason = Literal["stop", "length", "cancelled"]
OnToken = Callable[[int, int], bool]  # (request index, new token) -> False to cancel that request


@dataclass(frozen=True)
class GenRequest:
    """One prompt to continue and how: greedy unless do_sample; stop tokens end it and are not returned."""

    input_ids: list[int]
    max_new_tokens: int
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no limit
    repetition_penalty: float = 1.0
    stop_token_ids: frozenset[int] = frozenset()
    seed: int | None = None  # per-request generator when sampling: reproducible whatever the batch mates


@dataclass(frozen=True)
class GenResult:
    """The generated tokens (the stop token left out) and why generation ended."""

    token_ids: list[int]
    finish_reason: FinishReason


@dataclass
class _Row:
    """A running request: its index in the call, what it generated, its sampler."""

    index: int
    request: GenRequest
    tokens: list[int]
    generator: torch.Generator | None = None


@dataclass
class _Batch:
    """The tensors of the rows still running; row i of each belongs to rows[i]."""

    rows: list[_Row]
    cache: DynamicCache
    mask: torch.Tensor  # [rows, cached positions]: 1 for real tokens, 0 for left padding
    positions: torch.Tensor  # [rows, 1]: the position of each row's last token
    seen: torch.Tensor | None  # [rows, vocab] bool, tokens of prompt + output (only with a repetition penalty)
    extra: dict[str, int]  # forward arguments of this model (logits_to_keep), looked up once


class SamplingFields(TypedDict):
    """GenRequest's decoding fields as an infer section sets them (temperature, top_p, top_k only to sample)."""

    do_sample: bool
    repetition_penalty: float
    temperature: NotRequired[float]
    top_p: NotRequired[float]
    top_k: NotRequired[int]


def generate(model: CausalLM, requests: list[GenRequest], pad_id: int,
             on_token: OnToken | None = None) -> list[GenResult]:
    """Continue every request in one batch; on_token(request index, token) sees each new token, False cancels."""
    import torch

    for index, request in enumerate(requests):
        check_request(index, request)
    results: dict[int, GenResult] = {i: GenResult([], "length") for i, r in enumerate(requests)
                                     if r.max_new_tokens == 0}
    rows = [_Row(i, r, [], sampler(r)) for i, r in enumerate(requests) if r.max_new_tokens > 0]
    if not rows:
        return [results[i] for i in range(len(requests))]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batch, logits = prefill(model, rows, pad_id)
            while batch.rows:
                tokens = choose(logits, batch)
                keep = [i for i, (row, token) in enumerate(zip(batch.rows, tokens))
                        if not finish(row, token, on_token, results)]
                if len(keep) < len(batch.rows):
                    drop_finished(batch, keep)
                if batch.rows:
                    logits = decode_step(model, batch, [tokens[i] for i in keep])
    finally:
        model.train(was_training)
    return [results[i] for i in range(len(requests))]


def stop_token_ids(tokenizer: Tokenizer, model: CausalLM) -> frozenset[int]:
    """The tokens that end an answer: the tokenizer's eos and the model's generation-config eos id(s)
    (SmolLM2 ends a turn with <|im_end|>)."""
    ids = {tokenizer.eos_token_id}
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(eos if isinstance(eos, (list, tuple, set)) else [eos])
    return frozenset(i for i in ids if isinstance(i, int))


def sampling_fields(settings: InferSection) -> SamplingFields:
    """GenRequest's decoding fields from an infer section: temperature, top_p and top_k only when it samples."""
    fields: SamplingFields = {"do_sample": settings.do_sample, "repetition_penalty": settings.repetition_penalty}
    if settings.do_sample:
        fields.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    return fields


def check_request(index: int, request: GenRequest) -> None:
    """Reject requests the loop cannot run, naming the request and the fix."""
    problems = []
    if not request.input_ids:
        problems.append("input_ids is empty; give at least one prompt token")
    if request.max_new_tokens < 0:
        problems.append(f"max_new_tokens is {request.max_new_tokens}; use 0 or more")
    if request.do_sample and request.temperature <= 0:
        problems.append(f"temperature is {request.temperature} with do_sample; use > 0, or do_sample=False for greedy")
    if not 0 < request.top_p <= 1:
        problems.append(f"top_p is {request.top_p}; use a value in (0, 1]")
    if request.top_k < 0:
        problems.append(f"top_k is {request.top_k}; use 0 (no limit) or more")
    if request.repetition_penalty <= 0:
        problems.append(f"repetition_penalty is {request.repetition_penalty}; use > 0 (1.0: none)")
    if problems:
        raise ValueError(f"generate: request {index}: " + "; ".join(problems))


def sampler(request: GenRequest) -> torch.Generator | None:
    """A generator of the request's own, for sampling rows; None for greedy rows."""
    import torch

    if not request.do_sample:
        return None
    # without a seed: drawn from the global RNG, so torch.manual_seed still makes a run reproducible
    seed = request.seed if request.seed is not None else int(torch.randint(2**62, (1,)).item())
    return torch.Generator().manual_seed(seed)


def model_device(model: CausalLM) -> torch.device:
    """Where the model's weights are."""
    return next(model.parameters()).device


def forward_kwargs(model: CausalLM) -> dict[str, int]:
    """logits_to_keep=1 where the (PEFT-wrapped or plain) model's forward takes it: no logits for the prompt."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(base.forward).parameters else {}


def prefill(model: CausalLM, rows: list[_Row], pad_id: int) -> tuple[_Batch, torch.Tensor]:
    """One forward over the left-padded prompts; the batch state and each row's next-token logits."""
    import torch
    from transformers import DynamicCache

    device = model_device(model)
    longest = max(len(row.request.input_ids) for row in rows)
    ids = torch.tensor([[pad_id] * (longest - len(r.request.input_ids)) + r.request.input_ids for r in rows],
                       device=device)
    mask = torch.tensor([[0] * (longest - len(r.request.input_ids)) + [1] * len(r.request.input_ids)
                         for r in rows], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    config = (model.get_base_model() if hasattr(model, "get_base_model") else model).config
    cache = DynamicCache(config=config)
    extra = forward_kwargs(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
                **extra)
    seen = None
    if any(r.request.repetition_penalty != 1.0 for r in rows):
        seen = torch.zeros(len(rows), out.logits.shape[-1], dtype=torch.bool, device=device)
        seen[ids.new_tensor([i for i, r in enumerate(rows) for _ in r.request.input_ids]),
             ids.new_tensor([t for r in rows for t in r.request.input_ids])] = True
    batch = _Batch(rows=rows, cache=out.past_key_values, mask=mask, positions=positions[:, -1:], seen=seen,
                   extra=extra)
    return batch, out.logits[:, -1, :].float()


def decode_step(model: CausalLM, batch: _Batch, tokens: list[int]) -> torch.Tensor:
    """Feed each running row its last token; their next-token logits."""
    import torch

    ids = torch.tensor(tokens, device=batch.mask.device).unsqueeze(-1)
    batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(tokens), 1)], dim=-1)
    batch.positions = batch.positions + 1
    out = model(input_ids=ids, attention_mask=batch.mask, position_ids=batch.positions, past_key_values=batch.cache,
                use_cache=True, **batch.extra)
    batch.cache = out.past_key_values
    return out.logits[:, -1, :].float()


def choose(logits: torch.Tensor, batch: _Batch) -> list[int]:
    """The next token of every running row: argmax for greedy rows, a draw from its own generator otherwise."""
    import torch

    if batch.seen is not None:
        penalty = logits.new_tensor([r.request.repetition_penalty for r in batch.rows]).unsqueeze(-1)
        # as HF's RepetitionPenaltyLogitsProcessor: seen tokens' positive logits divided, negative multiplied
        penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
        logits = torch.where(batch.seen, penalised, logits)
    tokens = logits.argmax(-1).tolist()
    for i, row in enumerate(batch.rows):
        if row.request.do_sample:
            tokens[i] = sample(logits[i], row.request, row.generator)
    if batch.seen is not None:
        device = batch.seen.device
        batch.seen[torch.arange(len(tokens), device=device), torch.tensor(tokens, device=device)] = True
    return tokens


def sample(logits: torch.Tensor, request: GenRequest, generator: torch.Generator | None) -> int:
    """One token drawn from a row's logits after temperature, top-k and top-p, as HF's warpers do them."""
    import torch

    scores = logits / request.temperature
    if request.top_k > 0:
        kth = torch.topk(scores, min(request.top_k, scores.shape[-1])).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if request.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=False)
        drop = ordered.softmax(-1).cumsum(-1) <= (1 - request.top_p)
        drop[-1] = False  # the most likely token always stays
        scores = scores.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    probs = scores.softmax(-1).to(generator.device) if generator is not None else scores.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator).item())


def finish(row: _Row, token: int, on_token: OnToken | None,
           results: dict[int, GenResult]) -> bool:
    """Take a row's new token; True (and its result recorded) when the row is done."""
    reason: FinishReason | None = None
    if token in row.request.stop_token_ids:
        reason = "stop"
    else:
        row.tokens.append(token)
        if on_token is not None and on_token(row.index, token) is False:
            reason = "cancelled"
        elif len(row.tokens) >= row.request.max_new_tokens:
            reason = "length"
    if reason is not None:
        results[row.index] = GenResult(row.tokens, reason)
    return reason is not None


def drop_finished(batch: _Batch, keep: list[int]) -> None:
    """Keep only the running rows of the batch: cache, mask, positions, seen tokens; then trim shared padding."""
    import torch

    batch.rows = [batch.rows[i] for i in keep]
    if not keep:
        return
    index = torch.tensor(keep, device=batch.mask.device)
    batch.cache.batch_select_indices(index)
    batch.mask = batch.mask[index]
    batch.positions = batch.positions[index]
    if batch.seen is not None:
        batch.seen = batch.seen[index]
    trim_padding(batch)


def trim_padding(batch: _Batch) -> None:
    """Drop the leading cache columns that are padding for every remaining row (the longest prompt may have left)."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(batch.cache, "layers", None)
    # only plain full-attention layers: others (sliding windows, linear attention) keep state we must not slice
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return
    width = int(batch.mask.any(dim=0).int().argmax().item())
    if width == 0:
        return
    batch.mask = batch.mask[:, width:]
    for layer in layers:
        if layer.is_initialized and layer.keys.numel():
            layer.keys = layer.keys[:, :, width:, :]
            layer.values = layer.values[:, :, width:, :]
