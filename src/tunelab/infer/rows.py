"""What one answer asks for and gets (GenRequest, GenResult), a running row's state, and how its next token is
chosen: argmax for greedy rows, a draw from the row's own generator for sampling rows (HF's warpers' order).

Shared by the decoding loop (`batch_generate.generate`), the running batch (`running.py`) and the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

from tunelab.config.schema import InferSection
from tunelab.infer.protocols import CausalLM, Tokenizer

if TYPE_CHECKING:
    import torch

FinishReason = Literal["stop", "length", "cancelled"]
OnToken = Callable[[int, int], bool]  # (row key, new token) -> False to cancel that row


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
    # None: the model as loaded (with its active adapters); "": the base model alone; a name: that loaded adapter
    adapter: str | None = None


@dataclass(frozen=True)
class GenResult:
    """The generated tokens (the stop token left out) and why generation ended."""

    token_ids: list[int]
    finish_reason: FinishReason
    stop_token_id: int | None = None  # the stop token that ended it (finish_reason "stop"); ppo trains on it


@dataclass
class Row:
    """A running request: its key (the caller's index or job number), what it generated, its sampler."""

    index: int
    request: GenRequest
    tokens: list[int]
    generator: torch.Generator | None = None


class SamplingFields(TypedDict):
    """GenRequest's decoding fields as an infer section sets them (temperature, top_p, top_k only to sample)."""

    do_sample: bool
    repetition_penalty: float
    temperature: NotRequired[float]
    top_p: NotRequired[float]
    top_k: NotRequired[int]


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
    problems = request_problems(request)
    if problems:
        raise ValueError(f"generate: request {index}: " + "; ".join(problems))


def request_problems(request: GenRequest) -> list[str]:
    """What makes a request impossible to run, each with its fix (empty: it can run)."""
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
    return problems


def sampler(request: GenRequest) -> torch.Generator | None:
    """A generator of the request's own, for sampling rows; None for greedy rows."""
    import torch

    if not request.do_sample:
        return None
    # without a seed: drawn from the global RNG, so torch.manual_seed still makes a run reproducible
    seed = request.seed if request.seed is not None else int(torch.randint(2**62, (1,)).item())
    return torch.Generator().manual_seed(seed)


def new_row(index: int, request: GenRequest) -> Row:
    """A row for a request, with its sampler."""
    return Row(index, request, [], sampler(request))


def choose(logits: torch.Tensor, rows: list[Row], seen: torch.Tensor | None) -> list[int]:
    """The next token of every running row: argmax for greedy rows, a draw from its own generator otherwise;
    seen (tokens of prompt + output, only with a repetition penalty) is updated with the chosen tokens."""
    import torch

    if seen is not None:
        penalty = logits.new_tensor([r.request.repetition_penalty for r in rows]).unsqueeze(-1)
        # as HF's RepetitionPenaltyLogitsProcessor: seen tokens' positive logits divided, negative multiplied
        penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
        logits = torch.where(seen, penalised, logits)
    tokens = logits.argmax(-1).tolist()
    for i, row in enumerate(rows):
        if row.request.do_sample:
            tokens[i] = sample(logits[i], row.request, row.generator)
    if seen is not None:
        seen[torch.arange(len(tokens), device=seen.device), torch.tensor(tokens, device=seen.device)] = True
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


def finish(row: Row, token: int, on_token: OnToken | None) -> GenResult | None:
    """Take a row's new token; its result when the row is done (stop token, cancel, its max_new_tokens)."""
    reason: FinishReason | None = None
    if token in row.request.stop_token_ids:
        reason = "stop"
    else:
        row.tokens.append(token)
        if on_token is not None and on_token(row.index, token) is False:
            reason = "cancelled"
        elif len(row.tokens) >= row.request.max_new_tokens:
            reason = "length"
    return None if reason is None else GenResult(row.tokens, reason, token if reason == "stop" else None)
