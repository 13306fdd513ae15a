#!/usr/bin/env python
"""tunelab's GGUF files checked with llama.cpp itself: tokenization and greedy answers on 20 prompts.

Exports SmolLM2-135M-Instruct + a LoRA adapter with `tunelab export` (the merged safetensors folder and one GGUF
per --types), then for each GGUF type runs llama.cpp's Python binding (`llama-cpp-python`, in its own venv:
--llama-python) through llamacpp_worker.py and compares, per prompt of bench/export_prompts.json (English
and Chinese), with tunelab's side, the merged model in transformers (float32):

- tokenization of the chat-templated prompt text (the merged folder's own chat template, generation prompt on):
  llama.tokenize(text, add_bos=False, special=True) against the HF tokenizer (add_special_tokens=False);
- greedy answers (temperature 0, up to --max-new-tokens): llama.cpp generates from its own tokens and stops at its
  end-of-generation tokens, transformers from the HF tokens at the generation config's eos ids.

Also checks the GGUF's chat template against the merged folder's. llama.cpp's extra CPU buffer types (weight
repacking) have crashed on quantized files on some CPUs: a worker that fails is rerun with them off, and the
page says so. Writes bench/results/gguf_llamacpp_<date>.{md,json}.

Usage: python bench/verify_gguf_llamacpp.py [--types f16,q8_0,q4_0] [--llama-python /tmp/llama-venv/bin/python]
Never run as a test: a few minutes on 2 cores, plus llama-cpp-python's build from source (10-30 minutes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

from bench_sft import REPO, machine
from export_common import (DATA, ensure_adapter, export_config, export_once, gguf_file, resolve_model,
                           tunelab_revision, worker_with_fallback)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--types", default="f16,q8_0,q4_0", help="GGUF types to check (comma list)")
    ap.add_argument("--llama-python", type=Path, default=Path("/tmp/llama-venv/bin/python"),
                    help="python of the venv where llama-cpp-python is installed")
    ap.add_argument("--model", type=Path, default=None, help="HF folder of the base (default: tunelab's cache)")
    ap.add_argument("--adapter", type=Path, default=Path("/tmp/bench/export/adapter"),
                    help="LoRA adapter folder; a seeded random one is written there if missing")
    ap.add_argument("--prompts", type=Path, default=DATA / "export_prompts.json")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--no-extra-bufts", action="store_true", help="run llama.cpp with extra buffer types off "
                    "from the start (default: only after a crash)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench/export/verify"))
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    return ap.parse_args(argv)


def tunelab_side(merged: Path, prompts: list[str], max_new: int) -> dict[str, Any]:
    """Prompt texts, HF token ids and greedy answers (ids, end token excluded) of the merged model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(merged))
    model = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    stop = set(eos if isinstance(eos, list) else [eos])
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    answers = []
    with torch.inference_mode():
        for row in ids:
            out = model.generate(torch.tensor([row]), max_new_tokens=max_new, do_sample=False,
                                 attention_mask=torch.ones(1, len(row), dtype=torch.long))[0, len(row):].tolist()
            cut = next((i for i, t in enumerate(out) if t in stop), len(out))
            answers.append(out[:cut])
    return {"texts": texts, "ids": ids, "answers": answers, "eos_ids": sorted(stop),
            "chat_template": tok.chat_template, "tokenizer": tok}


def divergence(a: list[int], b: list[int], tok: Any) -> dict[str, Any]:
    """Where two token sequences first differ, with the shared prefix and both continuations decoded."""
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return {"at_token": i, "lengths": [len(a), len(b)], "prefix": tok.decode(a[:i]),
            "tunelab": tok.decode(a[i:i + 12]), "llama_cpp": tok.decode(b[i:i + 12])}


def check_type(gtype: str, gguf: Path, ref: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Run llama.cpp on one GGUF and compare its tokens and greedy answers with the reference."""
    job = {"gguf": str(gguf), "texts": ref["texts"], "generate": True, "max_new_tokens": args.max_new_tokens}
    answer = worker_with_fallback(args.llama_python, job, args.workdir, gtype, args.no_extra_bufts)
    if not answer["ok"]:
        return {"type": gtype, "ok": False, "error": answer}
    tok = ref["tokenizer"]
    token_equal = [a == b for a, b in zip(ref["ids"], answer["tokens"], strict=True)]
    answer_equal = [a == b for a, b in zip(ref["answers"], answer["greedy"], strict=True)]
    return {
        "type": gtype, "ok": True, "file": str(gguf), "size_bytes": gguf.stat().st_size,
        "extra_bufts": answer["extra_bufts"], "crash_with_extra_bufts": answer.get("crash_with_extra_bufts"),
        "llama_cpp_python": answer["llama_cpp_python"],
        "tokenization_equal": sum(token_equal), "answers_equal": sum(answer_equal), "n": len(token_equal),
        "chat_template_equal": answer["metadata"].get("tokenizer.chat_template") == ref["chat_template"],
        "eog_ids": answer["eog_ids"], "add_bos": answer["metadata"].get("tokenizer.ggml.add_bos_token"),
        "token_diffs": {i: divergence(ref["ids"][i], answer["tokens"][i], tok)
                        for i, ok in enumerate(token_equal) if not ok},
        "answer_diffs": {i: divergence(ref["answers"][i], answer["greedy"][i], tok)
                         for i, ok in enumerate(answer_equal) if not ok},
        "llama_cpp_answers": [tok.decode(a) for a in answer["greedy"]],
    }


def markdown(result: dict[str, Any]) -> str:
    """The results page."""
    m = result["machine"]
    lines = [f"# tunelab GGUF files in llama.cpp, {result['date']}", "",
             f"SmolLM2-135M-Instruct + a {result['adapter_note']} merged and written by `tunelab export` "
             f"(tunelab {result['tunelab_git']}); llama-cpp-python {result['llama_cpp_python']} (llama.cpp built from "
             f"its sdist on this machine); {m['cpu_model']}, {m['logical_cpus']} CPUs "
             f"({'AMX' if m['amx_bf16'] else 'AVX512-BF16 only' if m['avx512_bf16'] else 'no bf16 units'}).",
             f"{result['n']} prompts (`bench/export_prompts.json`, 12 English, 8 Chinese), the merged folder's "
             f"chat template with the generation prompt; greedy, up to {result['max_new_tokens']} new tokens. "
             "tunelab's side: the merged safetensors model in transformers, float32.", "",
             "| type | size MiB | tokenization equal | greedy answers equal | chat template in GGUF equal | "
             "end tokens (llama.cpp) | extra CPU buffer types |", "| --- | ---: | ---: | ---: | --- | --- | --- |"]
    for r in result["types"]:
        if not r["ok"]:
            lines.append(f"| {r['type']} | | FAILED | | | | rc {r['error'].get('rc')} |")
            continue
        bufts = "on" if r["extra_bufts"] else ("off (crashed with them on)" if r["crash_with_extra_bufts"]
                                               else "off (--no-extra-bufts)")
        lines.append(f"| {r['type']} | {r['size_bytes'] / 2**20:.1f} | {r['tokenization_equal']}/{r['n']} | "
                     f"{r['answers_equal']}/{r['n']} | {'yes' if r['chat_template_equal'] else 'NO'} | "
                     f"{r['eog_ids']} | {bufts} |")
    for r in (r for r in result["types"] if r["ok"] and (r["token_diffs"] or r["answer_diffs"])):
        lines += ["", f"## {r['type']}: first divergences", "",
                  "| prompt | what | at token | shared prefix (end) | tunelab | llama.cpp |",
                  "| --- | --- | ---: | --- | --- | --- |"]
        for what, diffs in (("tokens", r["token_diffs"]), ("answer", r["answer_diffs"])):
            for i, d in diffs.items():
                cells = [d["prefix"][-40:], d["tunelab"], d["llama_cpp"]]
                cells = [c.replace("|", "\\|").replace("\n", "\\n") for c in cells]
                lines.append(f"| {int(i) + 1} | {what} | {d['at_token']} | {cells[0]} | {cells[1]} | {cells[2]} |")
    lines += ["", "Figures: `gguf_llamacpp_" + result["date"] + ".json` (every answer of both sides).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Export, run both sides, compare, write the page."""
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.llama_python.is_file():
        sys.exit(f"bench: {args.llama_python} is missing: pip install llama-cpp-python into a venv, "
                 "give --llama-python")
    model = resolve_model(args.model)
    adapter = ensure_adapter(args.adapter, model)
    config = export_config(args.workdir / "export.yaml", model, adapter)
    merged = export_once(config, args.workdir / "merged")
    prompts = json.loads(args.prompts.read_text(encoding="utf-8"))
    ref = tunelab_side(merged, prompts, args.max_new_tokens)
    types = []
    for gtype in args.types.split(","):
        gguf = gguf_file(export_once(config, args.workdir / f"gguf-{gtype}", export_format="gguf", gguf_type=gtype))
        types.append(check_type(gtype, gguf, ref, args))
        r = types[-1]
        print(f"bench: {gtype}: " + (f"tokens {r['tokenization_equal']}/{r['n']}, answers {r['answers_equal']}/{r['n']}"
                                     if r["ok"] else "FAILED"), flush=True)
    result = {"date": datetime.date.today().isoformat(), "machine": machine(), "tunelab_git": tunelab_revision(),
              "adapter": str(adapter),
              "adapter_note": "seeded random LoRA adapter (r 8, all linear layers; export_common.ensure_adapter)",
              "n": len(prompts), "max_new_tokens": args.max_new_tokens, "prompts": prompts,
              "llama_cpp_python": next((t["llama_cpp_python"] for t in types if t["ok"]), None),
              "tunelab_answers": [ref["tokenizer"].decode(a) for a in ref["answers"]], "types": types}
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"gguf_llamacpp_{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0 if all(t["ok"] for t in types) else 1


if __name__ == "__main__":
    sys.exit(main())
