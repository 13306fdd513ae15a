"""Requests-per-minute and tokens-per-minute limits as token buckets shared by every concurrent request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Bucket:
    """A token bucket holding at most `per_minute` units, refilled continuously at per_minute / 60 per second."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.clock = clock
        self.stamp = clock()

    def refill(self) -> None:
        """Add what accrued since the last look."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` units are available (0: now); an amount above capacity waits for a full bucket."""
        self.refill()
        needed = min(amount, self.capacity) - self.level
        return max(0.0, needed / self.rate)

    def take(self, amount: float) -> None:
        """Spend units (the level may go negative: later requests then wait for the debt to refill)."""
        self.refill()
        self.level -= amount

    def give_back(self, amount: float) -> None:
        """Return units taken on an estimate that turned out too high."""
        self.refill()
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """Holds each request until both the request and the token budgets of the minute allow it."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.requests = Bucket(requests_per_minute) if requests_per_minute else None
        self.tokens = Bucket(tokens_per_minute) if tokens_per_minute else None
        self.lock = asyncio.Lock()

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait until one request of about `estimated_tokens` tokens may be sent, then count it."""
        async with self.lock:  # one waiter at a time keeps the order fair and the buckets consistent
            while True:
                wait = max(self.requests.wait_for(1) if self.requests else 0.0,
                           self.tokens.wait_for(estimated_tokens) if self.tokens else 0.0)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(estimated_tokens)

    def settle(self, estimated_tokens: int, used_tokens: int) -> None:
        """Correct the token bucket once the real usage of a request is known."""
        if self.tokens is None:
            return
        if used_tokens > estimated_tokens:
            self.tokens.take(used_tokens - estimated_tokens)
        else:
            self.tokens.give_back(estimated_tokens - used_tokens)
