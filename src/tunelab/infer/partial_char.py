"""The text of a generated answer without the half character it may end with when max_new_tokens cuts it.

Byte-level tokens (GPT-2 style byte-level BPE, `<0xNN>` byte-fallback tokens) can stop inside a multi-byte UTF-8
character; `decode` shows those bytes as U+FFFD. A U+FFFD can also be a character the model really wrote (the
bytes EF BF BD, or bytes that are invalid whatever follows). The text alone cannot tell them apart, so we ask the
tokenizer: append one to three UTF-8 continuation bytes as tokens and decode again. Only an incomplete character
becomes a real one; a whole U+FFFD stays U+FFFD, because continuation bytes after it are invalid. The completed
character is then dropped, which also drops the half character and keeps everything before it as `decode` would
show it once whole (byte-fallback decoding turns a run of byte tokens that ends badly into U+FFFDs throughout).
"""

from __future__ import annotations

from collections.abc import Sequence

from tunelab.infer.protocols import Tokenizer

REPLACEMENT = "\ufffd"

# Two continuation bytes, each the second byte of the character next to it: between them they can follow every
# lead byte (after E0 and F0 only A0-BF / 90-BF are valid, after ED and F4 only 80-9F / 80-8F).
PROBES = ("\u0080", "\u00a0")  # UTF-8 C2 80 and C2 A0


def whole_text(tokenizer: Tokenizer, ids: Sequence[int]) -> str:
    """decode(ids) without special tokens, less a trailing incomplete character (a U+FFFD of its own is kept)."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    if not text.endswith(REPLACEMENT):
        return text
    for continuation in continuation_ids(tokenizer):
        for count in range(1, 4):  # a character has at most three bytes after its lead byte
            probed = tokenizer.decode([*ids, *[continuation] * count], skip_special_tokens=True)
            if not probed.endswith(REPLACEMENT):
                return probed[:-1]  # the character the probe completed: the cut one
    return text


def continuation_ids(tokenizer: Tokenizer) -> list[int]:
    """The tokenizer's single-byte tokens for the continuation bytes 80 and A0 (none when it has no byte tokens)."""
    found = []
    for char in PROBES:
        for lead, continuation in byte_token_pairs(char):
            lead_id, continuation_id = token_id(tokenizer, lead), token_id(tokenizer, continuation)
            if lead_id is None or continuation_id is None:
                continue
            # they are raw bytes only if lead + continuation decode to the character itself
            if tokenizer.decode([lead_id, continuation_id], skip_special_tokens=True) == char:
                found.append(continuation_id)
                break
    return found


def byte_token_pairs(char: str) -> list[tuple[str, str]]:
    """The two bytes of a two-byte character as token names: byte-fallback `<0xNN>` and byte-level BPE letters."""
    from tokenizers.pre_tokenizers import ByteLevel

    fallback = tuple(f"<0x{byte:02X}>" for byte in char.encode("utf-8"))
    # the byte-level pre-tokenizer spells each byte as one letter, as byte-level vocabularies store them
    letters = ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(char)[0][0]
    return [(fallback[0], fallback[1]), (letters[0], letters[1])]


def token_id(tokenizer: Tokenizer, token: str) -> int | None:
    """The id of a named token, or None (a miss may also give the unknown token's id; callers check by decoding)."""
    found = tokenizer.convert_tokens_to_ids(token)
    return found if isinstance(found, int) else None
