#!/usr/bin/env python
"""A model folder of a larger shape with random weights and SmolLM2's tokenizer, for the training benchmark.

`bench_train.py --shape-model DIR` trains it with both systems on the benchmark's data, so that tunelab's gains
are measured against LLaMA-Factory at 0.5B-1.5B widths too (issue 22: not an artefact of a 135M model). The shape
comes from profile_shapes.py's table (architecture, widths, layers, heads); the vocabulary is the tokenizer's, so
the data and its tokens are exactly the benchmark's. Weights are float32, as SmolLM2's converted folder; the
random initialisation is transformers' own, seeded, so a folder made twice is the same.

Usage: /path/to/venv/bin/python bench/make_shape_model.py --shape qwen2-0.5b --out /tmp/models/shape-qwen2-0.5b
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from profile_shapes import SHAPES


def make(shape: str, tokenizer_dir: Path, out: Path) -> int:
    """Write the shape's model (random weights, the tokenizer's vocabulary) and the tokenizer to out; returns the
    number of parameters."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    arch, hidden, inter, layers, heads, kv, _, _, _ = SHAPES[shape]
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    source = AutoConfig.from_pretrained(tokenizer_dir)
    config = AutoConfig.for_model(arch, vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=inter,
                                  num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                                  tie_word_embeddings=True, max_position_embeddings=source.max_position_embeddings,
                                  bos_token_id=source.bos_token_id, eos_token_id=source.eos_token_id,
                                  pad_token_id=getattr(source, "pad_token_id", None))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    generation = tokenizer_dir / "generation_config.json"
    if generation.is_file():
        shutil.copy(generation, out / generation.name)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", required=True, choices=[s for s in SHAPES if SHAPES[s][3] > 2],
                    help="a shape of profile_shapes.py")
    ap.add_argument("--tokenizer", type=Path, default=Path("/tmp/models/smollm2-135m-instruct"),
                    help="the benchmark model's folder, whose tokenizer and chat template are copied")
    ap.add_argument("--out", type=Path, required=True, help="the model folder to write (replaced)")
    args = ap.parse_args(argv)
    if not (args.tokenizer / "tokenizer_config.json").is_file():
        sys.exit(f"make_shape_model: {args.tokenizer} holds no tokenizer; run bench_train.py once to convert "
                 "SmolLM2, or pass --tokenizer")
    count = make(args.shape, args.tokenizer, args.out)
    print(f"make_shape_model: {args.shape}, {count / 1e6:,.0f}M parameters -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
