"""What the engine counts for /health and /metrics: tokens, finished answers, queue and batch sizes, and the
time-to-first-token and latency histograms (cumulative buckets, as Prometheus reads them)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# seconds; the tiny CPU models answer in tens of milliseconds, a loaded server in tens of seconds
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass
class Histogram:
    """Observations counted into upper-bounded buckets, with their sum and count."""

    bounds: tuple[float, ...] = BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))  # the last one: +Inf
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        """Count one value."""
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(le label, observations at or below it) for every bucket, +Inf last."""
        out, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts):
            running += count
            out.append((bound, running))
        return out


@dataclass
class EngineStats:
    """Counters of one engine, updated by its worker and read by the HTTP routes (under one lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    prompt_tokens: int = 0
    generated_tokens: int = 0
    finished: dict[str, int] = field(default_factory=dict)  # by outcome: stop, length, cancelled, timeout, error
    admissions: int = 0  # prefill calls: groups of rows that joined the running batch
    steps: int = 0
    largest_batch: int = 0
    ttft: Histogram = field(default_factory=Histogram)
    latency: Histogram = field(default_factory=Histogram)
    recent_latency: float = 0.0  # moving average of the last answers' latency, for Retry-After

    def answered(self, outcome: str, tokens: int, ttft: float | None, latency: float) -> None:
        """Record one finished answer."""
        with self.lock:
            self.finished[outcome] = self.finished.get(outcome, 0) + 1
            self.generated_tokens += tokens
            if ttft is not None:
                self.ttft.observe(ttft)
            self.latency.observe(latency)
            self.recent_latency = latency if not self.recent_latency else 0.8 * self.recent_latency + 0.2 * latency

    def admitted(self, rows: int, prompt_tokens: int, running: int) -> None:
        """Record rows that joined the running batch, now running rows in all."""
        with self.lock:
            self.admissions += 1
            self.prompt_tokens += prompt_tokens
            self.largest_batch = max(self.largest_batch, running)
