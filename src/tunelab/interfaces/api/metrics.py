"""GET /metrics: the server's counters in Prometheus' text exposition format (version 0.0.4).

HTTP requests by route and status are counted by a middleware here; tokens, answers, the time-to-first-token and
latency histograms, queue depth and running rows come from the engine (infer/stats.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

from tunelab.infer.engine import Engine
from tunelab.infer.stats import Histogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/v1/score/evaluation")

Handler = Callable[[Request], Awaitable[Response]]


class RequestCounter:
    """HTTP responses by (route, status); other paths count as route 'other' (no unbounded label values)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        """The middleware: count the response's status once it is known."""
        response = await call_next(request)
        path = request.url.path
        route = path if path in ROUTES else ("/v1/models" if path.startswith("/v1/models/") else "other")
        self.counts[(route, response.status_code)] += 1
        return response


def family(name: str, kind: str, help_text: str, samples: list[str]) -> list[str]:
    """One metric family: its HELP and TYPE lines and its samples."""
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def histogram(name: str, data: Histogram) -> list[str]:
    """A histogram's cumulative buckets, sum and count."""
    lines = [f'{name}_bucket{{le="{bound}"}} {count}' for bound, count in data.cumulative()]
    return lines + [f"{name}_sum {data.total:.6f}", f"{name}_count {data.count}"]


def exposition(engine: Engine, requests: RequestCounter) -> str:
    """Every metric as Prometheus text."""
    stats = engine.stats
    with stats.lock:
        lines = family("tunelab_requests_total", "counter", "HTTP requests answered, by route and status.",
                       [f'tunelab_requests_total{{route="{route}",status="{status}"}} {count}'
                        for (route, status), count in sorted(requests.counts.items())])
        lines += family("tunelab_answers_total", "counter", "Answers (choices) ended, by outcome: stop, length, "
                        "cancelled (client left), timeout, error.",
                        [f'tunelab_answers_total{{outcome="{outcome}"}} {count}'
                         for outcome, count in sorted(stats.finished.items())])
        lines += family("tunelab_prompt_tokens_total", "counter", "Prompt tokens prefilled.",
                        [f"tunelab_prompt_tokens_total {stats.prompt_tokens}"])
        lines += family("tunelab_generated_tokens_total", "counter", "Tokens generated (stop tokens left out).",
                        [f"tunelab_generated_tokens_total {stats.generated_tokens}"])
        lines += family("tunelab_time_to_first_token_seconds", "histogram", "From an answer's queueing to its first "
                        "generated token.", histogram("tunelab_time_to_first_token_seconds", stats.ttft))
        lines += family("tunelab_request_latency_seconds", "histogram", "From an answer's queueing to its end.",
                        histogram("tunelab_request_latency_seconds", stats.latency))
        lines += family("tunelab_decode_steps_total", "counter", "Decode steps of the running batch.",
                        [f"tunelab_decode_steps_total {stats.steps}"])
    lines += family("tunelab_queue_depth", "gauge", "Answers waiting for a slot.",
                    [f"tunelab_queue_depth {engine.waiting()}"])
    lines += family("tunelab_active_rows", "gauge", "Answers decoding now.", [f"tunelab_active_rows {engine.active()}"])
    lines += family("tunelab_max_batch", "gauge", "Most answers decoded together.",
                    [f"tunelab_max_batch {engine.max_batch}"])
    lines += family("tunelab_max_queue", "gauge", "Most answers waiting before requests are refused (429).",
                    [f"tunelab_max_queue {engine.max_queue or 0}"])
    return "\n".join(lines) + "\n"
