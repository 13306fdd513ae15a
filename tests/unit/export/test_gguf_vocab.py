"""The tokenizer in the GGUF: vocabulary, merges, token types, pre-tokenizer name, special ids, BOS rule and chat
template; and transformers' tokenizer rebuilt from the file encodes like the source one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.export.gguf_models import save_tiny_model
from tunelab.export.errors import ExportError
from tunelab.export.gguf import write_gguf

TEXTS = ["Who are you? I am tunelab.", "中文的句子，还有标点。", "line one\n  indented\n\nnext",
         "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "think <think>inside</think> done"]


def fields(path: Path) -> dict[str, Any]:
    """The GGUF's metadata values by key."""
    from gguf import GGUFReader

    return {key: field.contents() for key, field in GGUFReader(path).fields.items()}


@pytest.fixture
def tokenizer(cjk_tokenizer_json: str) -> Any:
    """The tiny CJK tokenizer with two added, non-special tokens."""
    from tests.conftest import chatml_template, make_tokenizer

    tokenizer = make_tokenizer(cjk_tokenizer_json, chatml_template())
    tokenizer.add_tokens(["<think>", "</think>"])
    return tokenizer


def test_tokenizer_round_trip(tmp_path: Path, tokenizer: Any) -> None:
    from transformers import AutoTokenizer

    save_tiny_model(tmp_path, "qwen2", tokenizer)
    write_gguf(tmp_path, tmp_path / "m.gguf", "q8_0")
    loaded = AutoTokenizer.from_pretrained(tmp_path, gguf_file="m.gguf")
    for text in TEXTS:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"], text
        assert loaded.decode(loaded(text)["input_ids"]) == text
    assert loaded.eos_token == "<|im_end|>" and loaded.pad_token == "<|endoftext|>"
    messages = [{"role": "user", "content": "Hi"}]
    assert (loaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) ==
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def test_vocabulary_metadata(tmp_path: Path, tokenizer: Any) -> None:
    from gguf import TokenType

    save_tiny_model(tmp_path, "llama", tokenizer, vocab_size=len(tokenizer) + 6)  # padded embeddings
    meta = fields(write_gguf(tmp_path, tmp_path / "m.gguf", "f16").path)
    vocab = tokenizer.get_vocab()
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    assert len(tokens) == len(types) == meta["llama.vocab_size"] == len(tokenizer) + 6
    assert all(tokens[i] == token for token, i in vocab.items())
    assert tokens[-1] == f"[PAD{len(tokenizer) + 5}]" and types[-1] == TokenType.UNUSED
    assert types[vocab["<|im_end|>"]] == types[vocab["<|endoftext|>"]] == TokenType.CONTROL
    assert types[vocab["<think>"]] == types[vocab["</think>"]] == TokenType.USER_DEFINED
    assert types[vocab["Ġthe"] if "Ġthe" in vocab else vocab["a"]] == TokenType.NORMAL
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    assert meta["tokenizer.ggml.merges"] == [" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]]
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert meta["tokenizer.ggml.eos_token_id"] == meta["tokenizer.ggml.eot_token_id"] == vocab["<|im_end|>"]
    assert meta["tokenizer.ggml.padding_token_id"] == vocab["<|endoftext|>"]
    assert "tokenizer.ggml.bos_token_id" not in meta  # the tokenizer has none
    assert meta["tokenizer.ggml.add_bos_token"] is False and meta["tokenizer.ggml.add_eos_token"] is False
    assert meta["tokenizer.chat_template"] == tokenizer.chat_template
    assert meta["general.architecture"] == "llama" and meta["llama.context_length"] == 256
    assert meta["llama.rope.dimension_count"] == 16 and meta["llama.attention.head_count_kv"] == 2


def test_add_bos_follows_what_a_plain_encode_does(tmp_path: Path, cjk_tokenizer_json: str) -> None:
    from tokenizers import Tokenizer, processors

    from tests.conftest import chatml_template, make_tokenizer

    backend = Tokenizer.from_str(cjk_tokenizer_json)
    bos = backend.token_to_id("<|endoftext|>")
    backend.post_processor = processors.TemplateProcessing(single="<|endoftext|> $A",
                                                           special_tokens=[("<|endoftext|>", bos)])
    tokenizer = make_tokenizer(backend.to_str(), chatml_template())
    tokenizer.bos_token = "<|endoftext|>"
    assert tokenizer("a")["input_ids"][0] == bos
    save_tiny_model(tmp_path, "qwen2", tokenizer)
    meta = fields(write_gguf(tmp_path, tmp_path / "m.gguf", "f16").path)
    assert meta["tokenizer.ggml.add_bos_token"] is True and meta["tokenizer.ggml.bos_token_id"] == bos


def test_pre_tokenizer_names(tmp_path: Path, tokenizer: Any) -> None:
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as qwen2_split

    save_tiny_model(tmp_path, "qwen2", tokenizer)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    byte_level = spec["pre_tokenizer"]
    for pattern, expected in ((qwen2_split, "qwen2"), (r"\s+|\w+", None)):
        spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            {**byte_level, "use_regex": False}]}
        (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
        if expected is None:
            with pytest.raises(ExportError, match=r"tokenizer.json: the pre-tokenizer \(check hash [0-9a-f]{64}\)"):
                write_gguf(tmp_path, tmp_path / "m.gguf", "f16")
        else:
            assert fields(write_gguf(tmp_path, tmp_path / "m.gguf", "f16").path)["tokenizer.ggml.pre"] == expected


def test_non_byte_level_tokenizers_are_refused(tmp_path: Path, tokenizer: Any) -> None:
    save_tiny_model(tmp_path, "llama", tokenizer)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": False}
    spec["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": False}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ExportError, match=r"tokenizer.json: a BPE tokenizer without byte-level pre-tokenization"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "f16")


def test_tokenizer_larger_than_the_embeddings_is_refused(tmp_path: Path, tokenizer: Any) -> None:
    save_tiny_model(tmp_path, "llama", tokenizer, vocab_size=len(tokenizer) - 2)
    with pytest.raises(ExportError, match=r"tokens but config.json vocab_size is .*resize_token_embeddings"):
        write_gguf(tmp_path, tmp_path / "m.gguf", "f16")
