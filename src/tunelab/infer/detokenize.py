"""Token ids to text while they are generated: whole characters only, at constant cost per token.

Fast tokenizers stream through `tokenizers`' own `DecodeStream`, which waits for the token that completes a
multi-byte character (byte-level BPE and byte-fallback tokens alike) and handles tokenizers that drop or merge
spaces at a token boundary. Two cases keep our window decoder, which reruns `tokenizer.decode` on the last few
tokens: slow (Python-only) tokenizers have no Rust backend for `DecodeStream`, and tokenizers with
`clean_up_tokenization_spaces` post-process `decode`'s text in Python, which `DecodeStream` does not.

At the end (`flush`) an answer cut inside a character loses the half character (`partial_char.whole_text`), so no
piece ever holds U+FFFD for incomplete bytes; a U+FFFD the model wrote as a character of its own is kept.
"""

from __future__ import annotations

from typing import Protocol

from tunelab.infer.partial_char import whole_text
from tunelab.infer.protocols import Tokenizer


class Detokenizer(Protocol):
    """Turns a growing list of token ids into text deltas."""

    def push(self, token_id: int) -> str:
        """Add one token; the new text it completes (possibly empty)."""
        ...

    def flush(self) -> str:
        """Whatever is left undecoded at the end, less an incomplete last character."""
        ...


class StreamDecoder:
    """Incremental decoding by the tokenizer's Rust backend (`tokenizers.decoders.DecodeStream`)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        from tokenizers.decoders import DecodeStream

        self.tokenizer = tokenizer
        self.backend = tokenizer.backend_tokenizer  # type: ignore[attr-defined]  # checked by incremental_decoder
        self.stream = DecodeStream(skip_special_tokens=True)
        self.ids: list[int] = []
        self.shown = 0  # characters handed out so far
        self.pending = False  # tokens since the last text: an unfinished character

    def push(self, token_id: int) -> str:
        """Add one token; the new text it completes (possibly empty)."""
        self.ids.append(token_id)
        text = self.stream.step(self.backend, token_id)
        self.pending = text is None
        if text:
            self.shown += len(text)
        return text or ""

    def flush(self) -> str:
        """The text of tokens held back for an unfinished character: decoded once, less the half character."""
        if not self.pending:
            return ""
        self.pending = False
        text = whole_text(self.tokenizer, self.ids)
        rest = text[self.shown:] if len(text) > self.shown else ""
        self.shown += len(rest)
        return rest


class WindowDecoder:
    """Decodes a short window (the previous token(s) plus the new ones) and keeps what lies beyond its prefix.

    Tokenizers that drop or merge spaces at a token boundary and byte-level tokens that end inside a UTF-8
    character (decoded as U+FFFD) both come out right.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
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
        """Whatever is left undecoded at the end, less an incomplete last character."""
        prefix = self.decode(self.ids[self.prefix_offset:self.read_offset])
        text = whole_text(self.tokenizer, self.ids[self.prefix_offset:])
        self.prefix_offset = self.read_offset = len(self.ids)
        return text[len(prefix):] if len(text) > len(prefix) else ""


def streams_natively(tokenizer: Tokenizer) -> bool:
    """True when DecodeStream gives exactly what tokenizer.decode gives: a Rust backend and no Python clean-up."""
    return hasattr(tokenizer, "backend_tokenizer") and not getattr(tokenizer, "clean_up_tokenization_spaces", False)


def incremental_decoder(tokenizer: Tokenizer) -> Detokenizer:
    """A decoder for one answer: DecodeStream where it matches tokenizer.decode, the window decoder otherwise."""
    return StreamDecoder(tokenizer) if streams_natively(tokenizer) else WindowDecoder(tokenizer)
