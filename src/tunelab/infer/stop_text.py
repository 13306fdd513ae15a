"""Stop strings: release generated text only when no stop string can still cut it."""

from __future__ import annotations


class StopText:
    """Accumulates text and releases only what no stop string can still cut."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.longest = max((len(s) for s in self.stops), default=0)
        self.text = ""
        self.released = 0
        self.stopped = False

    def feed(self, delta: str) -> str:
        """Add text; the part now safe to show. After a stop string is found, stopped is True and nothing more."""
        if self.stopped or not delta:
            return ""
        start = max(0, len(self.text) - self.longest + 1)
        self.text += delta
        cut = self.first_stop(start)
        if cut is not None:
            self.text = self.text[:cut]
            self.stopped = True
            return self.release(len(self.text))
        return self.release(len(self.text) - self.partial_stop())

    def first_stop(self, start: int) -> int | None:
        """Index of the earliest stop string found at or after start, or None."""
        hits = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
        return min(hits) if hits else None

    def partial_stop(self) -> int:
        """Length of the longest end of text that begins some stop string (it may still become one)."""
        for size in range(min(self.longest - 1, len(self.text)), 0, -1):
            tail = self.text[-size:]
            if any(s.startswith(tail) for s in self.stops):
                return size
        return 0

    def release(self, upto: int) -> str:
        """Text from the last release up to index upto."""
        upto = max(upto, self.released)
        out = self.text[self.released:upto]
        self.released = upto
        return out

    def finish(self) -> str:
        """The held-back rest, at the end of generation (no stop string can follow any more)."""
        return self.release(len(self.text))
