"""vLLM as a running batch: rows join whenever there is room, each step hands every row its new tokens, finished
rows leave. The shape of the continuous engine's batch (admit, step, clear), so that one engine, with its queue,
timeouts and metrics, can drive either tunelab's own decoding or vLLM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tunelab.infer.backends.vllm import Running, VllmBackend, feed, result_of
from tunelab.infer.batch_generate import GenRequest, GenResult, OnToken


class RowLike(Protocol):
    """A row the engine admits: its key and its request."""

    index: int
    request: GenRequest


class VllmStepper:
    """The rows running in vLLM, keyed by the engine's row keys; vLLM schedules them itself."""

    def __init__(self, backend: VllmBackend) -> None:
        self.backend = backend
        self.rows: list[RowLike] = []
        self.running: dict[str, Running] = {}  # vLLM request id -> the row's streaming state (index: the row key)

    def __len__(self) -> int:
        return len(self.running)

    def accepts(self, request: GenRequest, joining: Sequence[GenRequest] = ()) -> bool:
        """Always: vLLM queues what its cache cannot hold yet (the engine's max_batch bounds the rows)."""
        return True

    def admit(self, rows: list[RowLike]) -> None:
        """Hand the rows to vLLM (the prompt as token ids, the adapter as its LoRA)."""
        for row in rows:
            self.running[self.backend.add(row.request)] = Running(row.index, row.request)
        self.rows += rows

    def step(self, on_token: OnToken | None) -> list[tuple[int, GenResult]]:
        """One vLLM step: new tokens to on_token (False ends that row); (key, result) of the rows that ended."""
        done: list[tuple[int, GenResult]] = []
        for output in self.backend.engine.step():
            row = self.running.get(output.request_id)
            if row is None:
                continue
            completion = output.outputs[0]
            if on_token is not None and not feed(row, completion, on_token):
                self.backend.abort([output.request_id])
                done.append((row.index, GenResult(list(completion.token_ids)[:row.seen], "cancelled")))
            elif output.finished:
                done.append((row.index, result_of(completion, row.request.stop_token_ids)))
            else:
                continue
            del self.running[output.request_id]
        ended = {key for key, _ in done}
        self.rows = [row for row in self.rows if row.index not in ended]
        return done

    def clear(self) -> None:
        """Abort every row (after a failed step)."""
        self.backend.abort(list(self.running))
        self.running.clear()
        self.rows = []
