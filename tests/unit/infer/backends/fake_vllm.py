"""A stand-in `vllm` module (vLLM needs a CUDA GPU): EngineArgs, LLMEngine, SamplingParams and LoRARequest with
the signatures tunelab calls. The engine answers each request with a script, one token per step."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest


class SamplingParams:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


class EngineArgs:
    def __init__(self, **values: Any) -> None:
        self.values = values


@dataclass
class Completion:
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass
class Output:
    request_id: str
    outputs: list[Completion]
    finished: bool


@dataclass
class Added:
    prompt: dict[str, list[int]]
    params: SamplingParams
    lora: LoRARequest | None
    completion: Completion = field(default_factory=Completion)


class LLMEngine:
    """Answers every request with `script` (a stop token in it ends the answer there, the token included, as vLLM
    reports it), one token per step."""

    script: list[int] = [7, 8, 9]
    last: "LLMEngine | None" = None

    def __init__(self, args: EngineArgs) -> None:
        self.args = args.values
        self.requests: dict[str, Added] = {}
        self.aborted: list[str] = []
        self.steps = 0
        LLMEngine.last = self

    @classmethod
    def from_engine_args(cls, args: EngineArgs) -> "LLMEngine":
        return cls(args)

    def add_request(self, request_id: str, prompt: dict[str, list[int]], params: SamplingParams, *,
                    lora_request: LoRARequest | None = None) -> None:
        self.requests[request_id] = Added(prompt, params, lora_request)

    def abort_request(self, request_ids: list[str]) -> None:
        for request_id in request_ids:
            self.aborted.append(request_id)
            self.requests.pop(request_id, None)

    def has_unfinished_requests(self) -> bool:
        return any(added.completion.finish_reason is None for added in self.requests.values())

    def step(self) -> list[Output]:
        self.steps += 1
        outputs = []
        for request_id, added in list(self.requests.items()):
            completion = added.completion
            if completion.finish_reason is not None:
                continue
            token = self.script[len(completion.token_ids) % len(self.script)]
            completion.token_ids.append(token)
            if token in added.params.stop_token_ids:
                completion.finish_reason = "stop"
            elif len(completion.token_ids) >= added.params.max_tokens:
                completion.finish_reason = "length"
            finished = completion.finish_reason is not None
            outputs.append(Output(request_id, [Completion(list(completion.token_ids), completion.finish_reason)],
                                  finished))
            if finished:
                del self.requests[request_id]
        return outputs


def install(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Put the stand-in under the names `vllm` and `vllm.lora.request` for the test."""
    vllm = types.ModuleType("vllm")
    vllm.SamplingParams, vllm.EngineArgs, vllm.LLMEngine = SamplingParams, EngineArgs, LLMEngine
    lora, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    vllm.lora, lora.request = lora, request
    for name, module in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    return vllm
