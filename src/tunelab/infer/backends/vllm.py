"""vLLM as the decoding backend (infer_backend: vllm): our requests on vLLM's LLMEngine, its LoRA support for the
adapters. The only module that imports vllm, and only when a backend is built.

Prompts go in as token ids from our own chat-template render, so vLLM sees what the huggingface backend sees; it
returns token ids (no detokenizing there) that our jobs turn into text with the same stop rules. Unverified on
GPU hardware in this version: the tests drive it through a stand-in `vllm` module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from tunelab.config.schema import BackendSection
from tunelab.infer.batch_generate import FinishReason, GenRequest, GenResult, OnToken
from tunelab.model.errors import ModelError


class VllmError(ModelError):
    """vLLM cannot serve these settings; the message names the key or adapter and the fix (printed as a model
    error: no traceback)."""


class Completion(Protocol):
    """vLLM's CompletionOutput: the tokens so far and why it ended (None while running)."""

    token_ids: list[int]
    finish_reason: str | None


class Output(Protocol):
    """vLLM's RequestOutput (one completion per request: n=1)."""

    request_id: str
    outputs: list[Completion]
    finished: bool


class LLMEngine(Protocol):
    """The part of vllm.LLMEngine this module drives."""

    def add_request(self, request_id: str, prompt: object, params: object, *,
                    lora_request: object | None = None) -> None:
        """Queue a request."""
        ...

    def step(self) -> list[Output]:
        """One scheduling and decoding step: the outputs of the requests that moved."""
        ...

    def abort_request(self, request_ids: list[str]) -> None:
        """Drop requests."""
        ...

    def has_unfinished_requests(self) -> bool:
        """Whether any request is still running or waiting."""
        ...


@dataclass(frozen=True)
class ModelSource:
    """What vLLM loads: the model folder, its dtype, the named adapter folders and which answers by default."""

    path: str
    dtype: str
    adapters: Mapping[str, str] = field(default_factory=dict)
    default_adapter: str | None = None  # what GenRequest.adapter None gets: the run's adapter, else the base
    trust_remote_code: bool = False


def engine_args(source: ModelSource, backend: BackendSection, max_lora_rank: int) -> dict[str, object]:
    """vLLM's EngineArgs from our keys (LLaMA-Factory's mapping); vllm_config entries win."""
    args: dict[str, object] = {
        "model": source.path, "dtype": source.dtype, "trust_remote_code": source.trust_remote_code,
        "max_model_len": backend.vllm_maxlen, "gpu_memory_utilization": backend.vllm_gpu_util,
        "enforce_eager": backend.vllm_enforce_eager, "disable_log_stats": True,
        "enable_lora": bool(source.adapters),
    }
    if source.adapters:
        args.update(max_lora_rank=max_lora_rank, max_loras=len(source.adapters))
    args.update(backend.vllm_config or {})
    return args


def check_ranks(ranks: Mapping[str, int], backend: BackendSection) -> int:
    """The largest adapter rank, which must fit vllm_max_lora_rank (vLLM sizes its LoRA slots by it)."""
    for name, rank in ranks.items():
        if rank > backend.vllm_max_lora_rank:
            raise VllmError(f"adapter {name} has rank {rank} but vllm_max_lora_rank is {backend.vllm_max_lora_rank}; "
                            f"set vllm_max_lora_rank: {rank} or more")
    return backend.vllm_max_lora_rank


def sampling_params(vllm: ModuleType, request: GenRequest) -> object:
    """vLLM's SamplingParams for one of our requests: greedy is temperature 0; stop tokens end it; token ids out."""
    sampling = request.do_sample
    return vllm.SamplingParams(
        n=1, max_tokens=request.max_new_tokens, temperature=request.temperature if sampling else 0.0,
        top_p=request.top_p if sampling else 1.0, top_k=request.top_k if sampling and request.top_k > 0 else -1,
        repetition_penalty=request.repetition_penalty, seed=request.seed if sampling else None,
        stop_token_ids=sorted(request.stop_token_ids), detokenize=False)


class Loras:
    """The served adapters as vLLM LoRARequests (ids from 1), and which one a request's adapter field picks."""

    def __init__(self, lora_class: Callable[[str, int, str], object], source: ModelSource) -> None:
        self.requests = {name: lora_class(name, index, path)
                         for index, (name, path) in enumerate(source.adapters.items(), start=1)}
        self.default = source.default_adapter

    def pick(self, adapter: str | None) -> object | None:
        """None: the default; '': the base model (no LoRA); a name: that adapter (unknown: VllmError)."""
        name = self.default if adapter is None else adapter
        if not name:
            return None
        if name not in self.requests:
            raise VllmError(f"no adapter named '{name}' is loaded; loaded: {', '.join(self.requests) or 'none'}")
        return self.requests[name]


def result_of(completion: Completion, stop_ids: frozenset[int]) -> GenResult:
    """Our GenResult from a finished completion: a stop token that ended it is reported, not returned."""
    tokens = list(completion.token_ids)
    stop = tokens.pop() if tokens and tokens[-1] in stop_ids and completion.finish_reason == "stop" else None
    reason: FinishReason = {"stop": "stop", "length": "length"}.get(completion.finish_reason or "", "cancelled")
    return GenResult(tokens, reason, stop)


@dataclass
class Running:
    """A request in vLLM: its index in the caller's list (or the engine's row key), the request, how many of its
    tokens were handed on."""

    index: int
    request: GenRequest
    seen: int = 0


class VllmBackend:
    """One vLLM engine; `generate` answers a list of requests (vLLM batches them continuously itself)."""

    def __init__(self, vllm: ModuleType, engine: LLMEngine, loras: Loras) -> None:
        self.vllm = vllm
        self.engine = engine
        self.loras = loras
        self.ids = itertools.count()

    def add(self, request: GenRequest) -> str:
        """Queue one request; returns its vLLM request id."""
        request_id = f"tunelab-{next(self.ids)}"
        prompt = {"prompt_token_ids": list(request.input_ids)}  # vLLM's TokensPrompt: our render, no re-tokenizing
        self.engine.add_request(request_id, prompt, sampling_params(self.vllm, request),
                                lora_request=self.loras.pick(request.adapter))
        return request_id

    def abort(self, request_ids: list[str]) -> None:
        """Drop requests whose answer nobody waits for."""
        if request_ids:
            self.engine.abort_request(request_ids)

    def generate(self, requests: list[GenRequest], on_token: OnToken | None = None) -> list[GenResult]:
        """Every request's answer, new tokens streamed through on_token (False from it ends that request)."""
        results = dict(self.each(requests, on_token))
        return [results[index] for index in range(len(requests))]

    def each(self, requests: list[GenRequest],
             on_token: OnToken | None = None) -> Iterator[tuple[int, GenResult]]:
        """(index, result) of each request as it ends, in the order they end; all are handed to vLLM at once."""
        running = {self.add(request): Running(index, request) for index, request in enumerate(requests)}
        while running:
            for output in self.engine.step():
                row = running.get(output.request_id)
                if row is None:
                    continue
                completion = output.outputs[0]
                if on_token is not None and not feed(row, completion, on_token):
                    self.abort([output.request_id])
                    yield row.index, GenResult(list(completion.token_ids)[:row.seen], "cancelled")
                elif output.finished:
                    yield row.index, result_of(completion, row.request.stop_token_ids)
                else:
                    continue
                del running[output.request_id]


def feed(row: Running, completion: Completion, on_token: OnToken) -> bool:
    """Hand the completion's new tokens (stop tokens excepted) to on_token; False when it cancels the row."""
    tokens = list(completion.token_ids)
    for token in tokens[row.seen:]:
        if token in row.request.stop_token_ids:
            break
        row.seen += 1
        if not on_token(row.index, token):
            return False
    return True


def import_vllm() -> ModuleType:
    """The vllm package; missing: a VllmError saying how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise VllmError(f"infer_backend: vllm needs the vllm package ({exc}); install it with "
                        "pip install 'tunelab[vllm]' on a machine with a CUDA GPU, or set infer_backend: "
                        "huggingface") from None
    return vllm


def start_backend(source: ModelSource, backend: BackendSection, ranks: Mapping[str, int]) -> VllmBackend:
    """Load the model into a vLLM engine with the adapters as LoRAs."""
    vllm = import_vllm()
    from vllm.lora.request import LoRARequest

    args = engine_args(source, backend, check_ranks(ranks, backend))
    engine = vllm.LLMEngine.from_engine_args(vllm.EngineArgs(**args))
    return VllmBackend(vllm, engine, Loras(LoRARequest, source))
