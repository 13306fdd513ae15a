"""Our own decoding loop over the running batch (`running.py`): prefill, then one step per token for the rows still
running; with `max_batch`, a finished row's slot is given at once to the next waiting request.

HF `generate` keeps decoding a batch until its longest answer ends; here a row that finishes (stop token, its own
max_new_tokens, or a cancel from `on_token`) leaves the batch at once: its rows of the KV cache, the attention
mask and the position counters are dropped, so the later steps compute only for the rows still running. Rows may
differ in their sampling settings and adapters; greedy rows give the same tokens as
`model.generate(do_sample=False)` on the prompt alone. `predict`, eval and the local judge call `generate` /
`generate_each` directly; chat and the API through `infer/engine.py`, which admits requests as they arrive.
"""

from __future__ import annotations

from collections.abc import Iterator

from tunelab.infer.protocols import CausalLM
from tunelab.infer.rows import (FinishReason, GenRequest, GenResult, OnToken, Row, SamplingFields, check_request,
                                new_row, sampling_fields, stop_token_ids)
from tunelab.infer.running import RunningBatch, adapter_problem

__all__ = ["FinishReason", "GenRequest", "GenResult", "OnToken", "SamplingFields", "generate", "generate_each",
           "sampling_fields", "stop_token_ids"]


def generate(model: CausalLM, requests: list[GenRequest], pad_id: int, on_token: OnToken | None = None,
             max_batch: int | None = None) -> list[GenResult]:
    """Continue every request; on_token(request index, token) sees each new token, False cancels that request.
    At most max_batch rows run at once (all of them when None); a finished row is replaced by the next request."""
    results: dict[int, GenResult] = dict(generate_each(model, requests, pad_id, on_token, max_batch))
    return [results[i] for i in range(len(requests))]


def generate_each(model: CausalLM, requests: list[GenRequest], pad_id: int, on_token: OnToken | None = None,
                  max_batch: int | None = None) -> Iterator[tuple[int, GenResult]]:
    """(request index, result) of every request as each finishes; requests are admitted in the order given."""
    import torch

    for index, request in enumerate(requests):
        check_request(index, request)
        problem = adapter_problem(model, request.adapter)
        if problem:
            raise ValueError(f"generate: request {index}: {problem}")
    limit = max_batch or max(len(requests), 1)
    waiting: list[Row] = []
    for index, request in enumerate(requests):
        if request.max_new_tokens == 0:
            yield index, GenResult([], "length")
        else:
            waiting.append(new_row(index, request))
    waiting.reverse()  # popped from the end: the first request first
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batch = RunningBatch(model, pad_id)
            while waiting or batch.rows:
                joining: list[Row] = []
                while waiting and len(batch) + len(joining) < limit and batch.accepts(waiting[-1].request,
                                                                                         [r.request for r in joining]):
                    joining.append(waiting.pop())
                batch.admit(joining)
                yield from batch.step(on_token)
    finally:
        model.train(was_training)
