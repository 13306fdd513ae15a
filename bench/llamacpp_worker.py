#!/usr/bin/env python
"""llama.cpp's side of the GGUF checks: runs in a throwaway venv that has only `llama-cpp-python` (and numpy).

Reads a JSON job, loads one GGUF file with `llama_cpp.Llama` and writes a JSON answer:

    {"gguf": PATH, "texts": [...]}             -> "tokens": llama.tokenize(text, add_bos=False, special=True) each
    {"gguf": PATH, "prompts": [[ids]], "max_new_tokens": 48}
                                               -> "greedy": greedy continuations (token ids, the end token excluded)
    {"gguf": PATH, "texts": [...], "generate": true}
                                               -> both: "tokens", and "greedy" from those tokens
    {"gguf": PATH, "ppl_ids": [ids], "chunk": 512}
                                               -> "nll_sum", "nll_count": next-token negative log-likelihood over
                                                  non-overlapping chunks (the first token of each chunk unscored)

plus "metadata" (the GGUF's key/values as llama.cpp reads them) and "eog_ids". With --no-extra-bufts the model
is loaded with llama.cpp's extra CPU buffer types off (`use_extra_bufts = false` in the model params: no weight
repacking), the switch for the crashes seen on quantized files on some CPUs; the binding has no argument for it,
so the default-params function it calls is wrapped.

Usage: /tmp/llama-venv/bin/python bench/llamacpp_worker.py JOB.json ANSWER.json [--no-extra-bufts] [--threads N]
Called by verify_gguf_llamacpp.py and gguf_quality.py; never run as a test.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np


def no_extra_bufts() -> None:
    """Make every model load with llama.cpp's extra CPU buffer types (weight repacking) turned off."""
    import llama_cpp.llama_cpp as capi

    default = capi.llama_model_default_params

    def params() -> object:
        p = default()
        p.use_extra_bufts = False
        return p

    capi.llama_model_default_params = params


def load(path: str, n_ctx: int, logits_all: bool, threads: int | None) -> object:
    """One llama_cpp.Llama on the CPU."""
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, logits_all=logits_all,
                 n_threads=threads, n_threads_batch=threads, n_gpu_layers=0, verbose=False)


def eog_ids(llm: object) -> list[int]:
    """Ids that end generation for llama.cpp (end-of-generation tokens of the vocabulary)."""
    import llama_cpp.llama_cpp as capi

    vocab = capi.llama_model_get_vocab(llm.model)
    return [i for i in range(llm.n_vocab()) if capi.llama_vocab_is_eog(vocab, i)]


def greedy(llm: object, prompt: list[int], max_new: int, stop: set[int]) -> list[int]:
    """Greedy continuation (temperature 0, no penalties) until an end token or max_new tokens."""
    out: list[int] = []
    for tok in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if tok in stop or len(out) >= max_new:
            break
        out.append(int(tok))
    return out


def nll(llm: object, ids: list[int], chunk: int) -> tuple[float, int]:
    """Sum and count of next-token negative log-likelihoods over non-overlapping chunks of ids."""
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, chunk):
        part = ids[start:start + chunk]
        if len(part) < 2:
            break
        llm.reset()
        llm.eval(part)
        logits = np.asarray(llm.scores[: len(part)], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        logz = (top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))[:-1]
        total += float((logz - logits[np.arange(len(part) - 1), part[1:]]).sum())
        count += len(part) - 1
    return total, count


def main(argv: list[str] | None = None) -> int:
    """Run one job file, write its answer file."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job", type=Path)
    ap.add_argument("answer", type=Path)
    ap.add_argument("--no-extra-bufts", action="store_true", help="turn off llama.cpp's CPU weight repacking")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own choice)")
    args = ap.parse_args(argv)
    job = json.loads(args.job.read_text())
    if args.no_extra_bufts:
        no_extra_bufts()
    import llama_cpp

    chunk = int(job.get("chunk", 512))
    started = time.time()
    llm = load(job["gguf"], n_ctx=max(chunk, 1024), logits_all="ppl_ids" in job, threads=args.threads)
    answer: dict[str, object] = {"gguf": job["gguf"], "llama_cpp_python": llama_cpp.__version__,
                                 "extra_bufts": not args.no_extra_bufts, "load_s": time.time() - started,
                                 "metadata": dict(llm.metadata), "eog_ids": eog_ids(llm)}
    if "texts" in job:
        answer["tokens"] = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in job["texts"]]
    prompts = job.get("prompts") or (answer.get("tokens") if job.get("generate") else None)
    if prompts:
        stop = set(answer["eog_ids"])
        answer["greedy"] = [greedy(llm, p, int(job.get("max_new_tokens", 48)), stop) for p in prompts]
    if "ppl_ids" in job:
        total, count = nll(llm, job["ppl_ids"], chunk)
        answer.update(nll_sum=total, nll_count=count, ppl=math.exp(total / count))
    answer["total_s"] = time.time() - started
    args.answer.write_text(json.dumps(answer, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
