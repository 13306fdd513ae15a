"""Tiny models of each architecture the GGUF writer maps, saved as Hugging Face folders, for the GGUF tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# Shapes small enough for milliseconds, with rows that are whole quant blocks (64 and 96 are multiples of 32).
COMMON = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256)

ARCHS = ("llama", "qwen2", "qwen3", "gemma2")


def tiny_config(arch: str, vocab_size: int, **overrides: Any) -> Any:
    """A tiny config of arch; head sizes follow what transformers' GGUF loader can read back (see below)."""
    from transformers import Gemma2Config, LlamaConfig, Qwen2Config, Qwen3Config

    fields = dict(COMMON, vocab_size=vocab_size)
    if arch == "llama":
        return LlamaConfig(**{**fields, "tie_word_embeddings": False, **overrides})
    if arch == "qwen2":
        return Qwen2Config(**{**fields, **overrides})
    # transformers' GGUF loader reads no head_dim for qwen3 and no query_pre_attn_scalar for gemma2, so it uses their
    # config defaults (128; 256 with head_dim 256): the tiny models use those values.
    if arch == "qwen3":
        return Qwen3Config(**{**fields, "head_dim": 128, **overrides})
    return Gemma2Config(**{**fields, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 256, **overrides})


def save_tiny_model(folder: Path, arch: str, tokenizer: Any, seed: int = 0, **overrides: Any) -> Any:
    """A random tiny model of arch (weights N(0, 0.1), so logits are far from zero) saved with the tokenizer."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    vocab_size = overrides.pop("vocab_size", len(tokenizer))
    model = AutoModelForCausalLM.from_config(tiny_config(arch, vocab_size, **overrides)).float().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.1)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model
