"""Incremental decoding (whole characters only) and stop strings (never show text a stop string cuts)."""

from __future__ import annotations

from tunelab.interfaces.api.textstream import IncrementalDecoder, StopText


def stream(tokenizer, text: str) -> list[str]:
    decoder = IncrementalDecoder(tokenizer)
    pieces = [decoder.push(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    return pieces + [decoder.flush()]


def test_decoding_token_by_token_gives_the_text(tiny_tokenizer):
    text = "Hello there, how are you?\n  indented"
    assert "".join(stream(tiny_tokenizer, text)) == text


def test_multibyte_characters_come_out_whole(tiny_tokenizer):
    text = "café 日本 🙂 ok"
    pieces = stream(tiny_tokenizer, text)
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)


def test_stop_string_split_across_pieces_is_never_shown():
    stop = StopText(["STOP"])
    shown = [stop.feed(piece) for piece in ["Hello S", "T", "OP and more"]]
    assert "".join(shown) == "Hello " and stop.stopped
    assert stop.feed("later") == "" and stop.finish() == ""


def test_held_back_prefix_is_released_when_it_is_not_a_stop():
    stop = StopText(["\n\n", "END"])
    assert stop.feed("a\n") == "a"
    assert stop.feed("b E") == "\nb "
    assert stop.finish() == "E" and not stop.stopped


def test_earliest_stop_wins_and_no_stops_passes_through():
    stop = StopText(["cd", "b"])
    assert stop.feed("abcd") == "a" and stop.stopped
    assert StopText([]).feed("anything") == "anything"
