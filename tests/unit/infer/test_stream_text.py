"""Incremental decoding (whole characters only, DecodeStream or the window decoder) and stop strings."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.infer.detokenize import StreamDecoder, WindowDecoder, incremental_decoder
from tunelab.infer.stop_text import StopText

from .conftest import BYTES

TEXTS = ["Hello there, how are you?\n  indented", "café 日本 🙂 ok", "你好，世界！这是中文。", " leading space",
         "<|im_end|>x y<|im_start|>"]


def stream(decoder: Any, ids: list[int]) -> list[str]:
    pieces = [decoder.push(t) for t in ids]
    return pieces + [decoder.flush()]


@pytest.mark.parametrize("text", TEXTS)
def test_decode_stream_gives_what_the_window_decoder_gives(tiny_tokenizer: Any, byte_fallback_tokenizer: Any,
                                                           text: str) -> None:
    for tokenizer in (tiny_tokenizer, byte_fallback_tokenizer):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        ours, native = stream(WindowDecoder(tokenizer), ids), stream(StreamDecoder(tokenizer), ids)
        assert "".join(native) == "".join(ours) == tokenizer.decode(ids, skip_special_tokens=True)
        assert all("\ufffd" not in piece for piece in native)
    if "<|" not in text:  # the tiny tokenizer round-trips ordinary text exactly
        ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert "".join(stream(incremental_decoder(tiny_tokenizer), ids)) == text


def test_byte_fallback_tokens_are_held_until_the_character_is_whole(byte_fallback_tokenizer: Any) -> None:
    ids = byte_fallback_tokenizer("你好", add_special_tokens=False)["input_ids"]
    assert sum(byte_fallback_tokenizer.convert_ids_to_tokens(i) in BYTES for i in ids) == 6  # 2 chars x 3 bytes
    pieces = stream(StreamDecoder(byte_fallback_tokenizer), ids)
    assert [p for p in pieces if p] == ["你", "好"]


def test_an_unfinished_character_at_the_end_is_left_out(tiny_tokenizer: Any) -> None:
    ids = tiny_tokenizer("ok 日", add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.decode(ids[:-1]) == "ok \ufffd"  # what an answer cut inside 日 showed before
    for decoder in (StreamDecoder(tiny_tokenizer), WindowDecoder(tiny_tokenizer)):
        pieces = stream(decoder, ids[:-1])
        assert "".join(pieces) == "ok " and all("\ufffd" not in piece for piece in pieces)
        assert "".join(stream(type(decoder)(tiny_tokenizer), ids)) == "ok 日"


@pytest.mark.parametrize("text", ["好\ufffd", "\ufffd中", "a\ufffd\ufffd"])
def test_a_replacement_character_the_model_wrote_is_kept(tiny_tokenizer: Any, cjk_tokenizer: Any, text: str) -> None:
    # U+FFFD as three byte tokens (tiny) and as one token (cjk): both are whole characters
    for tokenizer in (tiny_tokenizer, cjk_tokenizer):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for decoder in (StreamDecoder(tokenizer), WindowDecoder(tokenizer)):
            assert "".join(stream(decoder, ids)) == text


def test_a_cut_between_the_two_tokens_of_a_chinese_character(cjk_tokenizer: Any) -> None:
    ids = cjk_tokenizer("\ufffd中", add_special_tokens=False)["input_ids"]
    assert len(ids) == 3 and cjk_tokenizer.decode(ids[:2]) == "\ufffd\ufffd"
    for decoder in (StreamDecoder(cjk_tokenizer), WindowDecoder(cjk_tokenizer)):
        assert "".join(stream(decoder, ids[:2])) == "\ufffd"  # the model's own U+FFFD, not the half of 中


def test_the_window_decoder_serves_tokenizers_decode_stream_cannot_match(tiny_tokenizer: Any) -> None:
    assert isinstance(incremental_decoder(tiny_tokenizer), StreamDecoder)
    tiny_tokenizer.clean_up_tokenization_spaces = True  # Python post-processing DecodeStream does not do
    assert isinstance(incremental_decoder(tiny_tokenizer), WindowDecoder)

    class SlowTokenizer:  # no Rust backend, as Python-only (slow) tokenizers
        def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
            return "".join(chr(i) for i in ids)

    decoder = incremental_decoder(SlowTokenizer())  # type: ignore[arg-type]
    assert isinstance(decoder, WindowDecoder) and "".join(stream(decoder, [104, 105])) == "hi"


def test_stop_string_split_across_pieces_is_never_shown() -> None:
    stop = StopText(["STOP"])
    shown = [stop.feed(piece) for piece in ["Hello S", "T", "OP and more"]]
    assert "".join(shown) == "Hello " and stop.stopped
    assert stop.feed("later") == "" and stop.finish() == ""


def test_held_back_prefix_is_released_when_it_is_not_a_stop() -> None:
    stop = StopText(["\n\n", "END"])
    assert stop.feed("a\n") == "a"
    assert stop.feed("b E") == "\nb "
    assert stop.finish() == "E" and not stop.stopped


def test_earliest_stop_wins_and_no_stops_passes_through() -> None:
    stop = StopText(["cd", "b"])
    assert stop.feed("abcd") == "a" and stop.stopped
    assert StopText([]).feed("anything") == "anything"
