"""Incremental decoding (whole characters only, DecodeStream or the window decoder) and stop strings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tunelab.infer.detokenize import StreamDecoder, WindowDecoder, incremental_decoder
from tunelab.infer.stop_text import StopText

TEXTS = ["Hello there, how are you?\n  indented", "café 日本 🙂 ok", "你好，世界！这是中文。", " leading space",
         "<|im_end|>x y<|im_start|>"]
BYTES = [f"<0x{i:02X}>" for i in range(256)]


def stream(decoder: Any, ids: list[int]) -> list[str]:
    pieces = [decoder.push(t) for t in ids]
    return pieces + [decoder.flush()]


@pytest.fixture(scope="module")
def byte_fallback_tokenizer() -> Any:
    """A Llama/SentencePiece-style BPE: '▁' for spaces and <0xNN> byte tokens for characters it has no token for."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tests.conftest import CORPUS

    tokenizer = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                           decoders.Strip(" ", 1, 0)])
    tokenizer.train_from_iterator(CORPUS, trainer=trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                                       special_tokens=["<unk>", "<s>", "</s>"]))
    spec = json.loads(tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    for token in BYTES:  # the byte tokens are ordinary vocabulary, as in Llama's tokenizer
        vocab.setdefault(token, len(vocab))
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token="</s>",
                                   unk_token="<unk>")


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


def test_an_unfinished_character_at_the_end_comes_out_as_replacement(tiny_tokenizer: Any) -> None:
    ids = tiny_tokenizer("ok 日", add_special_tokens=False)["input_ids"]
    for decoder in (StreamDecoder(tiny_tokenizer), WindowDecoder(tiny_tokenizer)):
        pieces = stream(decoder, ids[:-1])
        assert "".join(pieces) == tiny_tokenizer.decode(ids[:-1]) and pieces[-1].endswith("\ufffd")


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
