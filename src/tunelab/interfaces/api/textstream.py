"""Token ids to text while they are generated: whole characters only, and never text a stop string cuts later."""

from __future__ import annotations

from typing import Any


class IncrementalDecoder:
    """Decodes a growing list of token ids into text deltas.

    Each step decodes a short window (the previous token(s) plus the new ones) and keeps the part beyond what
    the window's prefix decoded to: tokenizers that drop or merge spaces at a token boundary and byte-level
    tokens that end inside a UTF-8 character (decoded as U+FFFD) both come out right, at constant cost per token.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def decode(self, ids: list[int]) -> str:
        """Text of ids without special tokens."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def push(self, token_id: int) -> str:
        """Add one token; the new text it completes (possibly empty)."""
        self.ids.append(token_id)
        prefix = self.decode(self.ids[self.prefix_offset:self.read_offset])
        text = self.decode(self.ids[self.prefix_offset:])
        # an unfinished multi-byte character decodes to U+FFFD: wait for the token that completes it
        if len(text) > len(prefix) and not text.endswith("\ufffd"):
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
            return text[len(prefix):]
        return ""

    def flush(self) -> str:
        """Whatever is left undecoded at the end (an incomplete character comes out as U+FFFD)."""
        prefix = self.decode(self.ids[self.prefix_offset:self.read_offset])
        text = self.decode(self.ids[self.prefix_offset:])
        self.prefix_offset = self.read_offset = len(self.ids)
        return text[len(prefix):] if len(text) > len(prefix) else ""


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
