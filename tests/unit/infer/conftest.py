"""Fixtures for the inference tests: a byte-fallback tokenizer next to the byte-level ones of tests/conftest.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

BYTES = [f"<0x{i:02X}>" for i in range(256)]


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
