"""An answer cut inside a character: the half character is left out, a U+FFFD the model wrote is kept."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import utf8_answer
from tunelab.infer.detokenize import StreamDecoder, WindowDecoder
from tunelab.infer.partial_char import continuation_ids, whole_text

# two-, three- and four-byte characters, with each lead byte that limits its next byte (E0, ED, F0, F4),
# and U+FFFD as a character of its own, before, between and after them
TEXTS = ["ok 日本 \ufffd", "é\ufffd中文", "a🙂b", "\u0800\ud7fb", "\U00010000\U00100000\ufffd", "\ufffd\ufffd"]


@pytest.mark.parametrize("text", TEXTS)
def test_every_cut_reads_as_utf8_decoding_would(tiny_tokenizer: Any, cjk_tokenizer: Any, text: str) -> None:
    for tokenizer in (tiny_tokenizer, cjk_tokenizer):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for cut in range(len(ids) + 1):
            expected = utf8_answer(tokenizer, ids[:cut])
            assert whole_text(tokenizer, ids[:cut]) == expected
            for decoder in (StreamDecoder(tokenizer), WindowDecoder(tokenizer)):
                pieces = [decoder.push(i) for i in ids[:cut]] + [decoder.flush()]
                assert "".join(pieces) == expected
        assert whole_text(tokenizer, ids) == text


def test_byte_fallback_keeps_the_whole_characters_before_the_cut(byte_fallback_tokenizer: Any) -> None:
    ids = byte_fallback_tokenizer("你好", add_special_tokens=False)["input_ids"]
    # the byte tokens of 你 and half of 好 form one run, which decode shows as U+FFFDs throughout
    assert byte_fallback_tokenizer.decode(ids[:-1]).strip("\ufffd ") == ""
    assert whole_text(byte_fallback_tokenizer, ids[:-1]) == "你"
    assert whole_text(byte_fallback_tokenizer, ids[:-3]) == "你"
    assert whole_text(byte_fallback_tokenizer, ids) == "你好"
    for decoder in (StreamDecoder(byte_fallback_tokenizer), WindowDecoder(byte_fallback_tokenizer)):
        assert "".join([decoder.push(i) for i in ids[:-1]] + [decoder.flush()]) == "你"


def test_the_continuation_byte_tokens_are_found(tiny_tokenizer: Any, byte_fallback_tokenizer: Any) -> None:
    assert [tiny_tokenizer.decode([tiny_tokenizer.convert_tokens_to_ids("Â"), i]) for i in
            continuation_ids(tiny_tokenizer)] == ["\u0080", "\u00a0"]
    assert byte_fallback_tokenizer.convert_ids_to_tokens(continuation_ids(byte_fallback_tokenizer)) == [
        "<0x80>", "<0xA0>"]


def test_a_tokenizer_without_byte_tokens_keeps_a_trailing_replacement() -> None:
    class WordTokenizer:  # whole words only: it cannot stop inside a character
        words = ["ok", " ", "\ufffd"]

        def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
            return "".join(self.words[i] for i in ids)

        def convert_tokens_to_ids(self, token: str) -> int | None:
            return self.words.index(token) if token in self.words else None

    tokenizer: Any = WordTokenizer()
    assert continuation_ids(tokenizer) == [] and whole_text(tokenizer, [0, 1, 2]) == "ok \ufffd"
