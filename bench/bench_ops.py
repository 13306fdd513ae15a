#!/usr/bin/env python
"""Per-op A/B of the training step's kernels: decoder layers of a LLaMA model, LoRA on every linear, packed rows.

Builds a LLaMA config in-process with random weights (SmolLM2-135M's layer shapes by default; --shape 0.5b for
Qwen2.5-0.5B-like shapes), bf16 frozen weights, PEFT LoRA r 8 on every linear layer in float32 under bf16
autocast, tunelab's packed attention, as `tunelab train` sets them up. One step = forward of --layers decoder layers
on one packed row of --examples examples of --length tokens, a stand-in loss (sum of the last hidden state times
a fixed random tensor: the loss head is not what this measures), backward. The variants (a comma list of
VARIANTS' names) are timed alternately, --rounds rounds of --steps steps each after one warm-up step, and their
gradients compared with the first variant's. --profile prints the top ops by self CPU time for each variant.

Usage: /path/to/venv/bin/python bench/bench_ops.py --variants base,kernels [--shape 135m] [--profile]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROTARY = "transformers.models.llama.modeling_llama"
VARIANTS = {"unfused": "PEFT's LoRA forward", "base": "tunelab before this work (LoRA update inside addmm)",
            "kernels": "base + fused RMSNorm and rotary embeddings (model/kernels.py)",
            "sdpa": "base with SDPA's CPU flash attention per packed example instead of the GEMM attention",
            "compile": "base with each decoder layer through torch.compile (inductor, dynamic shapes; the packed "
                       "attention left eager)"}
EAGER: dict[Callable[..., object], Callable[..., object]] = {}  # the packed attention kept out of compiled graphs
SHAPES = {  # hidden, intermediate, heads, kv heads, layers of the model; the bench runs --layers of them
    "135m": dict(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3),
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_attention_heads=14, num_key_value_heads=2),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_attention_heads=12, num_key_value_heads=2),
}


def build(shape: str, layers: int, variant: str) -> torch.nn.Module:
    """The LoRA model of one variant, seeded so every variant has the same weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunelab.model import adapters, attention, fused, kernels

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1024, num_hidden_layers=layers, max_position_embeddings=4096,
                         rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, **SHAPES[shape])
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                             init_lora_weights=False))
    adapters.keep_input_dtype(model)
    attention.use_packed_attention(adapters.base_model(model))
    if variant == "unfused":
        return model
    fused.fuse_lora_linears(model)
    if variant == "kernels":
        kernels.fuse_rms_norms(model)
        kernels.fuse_rotary(model)
    if variant == "compile":  # the packed attention stays eager (switch)
        for layer in model.base_model.model.model.layers:
            layer.compile(dynamic=True)
    return model


def switch(variant: str) -> None:
    """The process-wide settings of a variant: the rotary function (module-level), the attention path (with
    compile, the packed attention outside the compiled graphs: its per-example loop reads the boundaries)."""
    from transformers import AttentionInterface

    from tunelab.model import attention, kernels, transformers_private

    plain = attention.packed_sdpa_attention
    if variant == "compile" and plain not in EAGER:  # one wrapper: dynamo guards on the function's identity
        EAGER[plain] = torch.compiler.disable(plain)
    AttentionInterface.register(attention.NAME, EAGER[plain] if variant == "compile" else plain)

    module = transformers_private.rotary_module(ROTARY)
    if variant == "kernels":
        transformers_private.replace_rotary(module, kernels.fused_rotary)
    else:
        transformers_private.restore_rotary(module)
    attention.GEMM_MAX_TOKENS = 0 if variant == "sdpa" else 2048


def batch(examples: int, length: int) -> dict[str, torch.Tensor]:
    """One packed row: examples of `length` tokens, positions restarting per example."""
    tokens = examples * length
    ids = torch.randint(3, 1000, (1, tokens), generator=torch.Generator().manual_seed(1))
    positions = torch.arange(length).repeat(examples)[None]
    bounds = torch.arange(0, tokens + 1, length, dtype=torch.int32)
    return {"input_ids": ids, "position_ids": positions, "cu_seq_lens_q": bounds, "cu_seq_lens_k": bounds,
            "max_length_q": length, "max_length_k": length}


def step(model: torch.nn.Module, inputs: dict[str, torch.Tensor], probe: torch.Tensor) -> None:
    """Forward through the decoder, the stand-in loss, backward."""
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model.base_model.model.model(**inputs).last_hidden_state
        loss = (hidden.float() * probe).sum()
    loss.backward()


def saved_mib(model: torch.nn.Module, inputs: dict[str, torch.Tensor], probe: torch.Tensor) -> float:
    """MiB of distinct tensor storage that autograd keeps for the backward pass of one step (weights excluded)."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step(model, inputs, probe)
    return sum(storages.values()) / 2**20


def gradients(model: torch.nn.Module) -> list[torch.Tensor]:
    """The LoRA gradients, in parameter order."""
    return [p.grad.float().clone() for p in model.parameters() if p.requires_grad]


def timed(fn: Callable[[], None], steps: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of this process over `steps` calls (on a machine shared with
    other work, CPU time at one thread is the steadier figure)."""
    wall, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def profile(fn: Callable[[], None], rows: int) -> list[tuple[str, float, int]]:
    """The top ops of one call by self CPU time: (name, seconds, calls)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return [(e.key, e.self_cpu_time_total / 1e6, e.count) for e in events]


def main() -> None:
    """Time the variants alternately and print the medians, ratios and gradient agreement."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="unfused,base,kernels")
    ap.add_argument("--shape", default="135m", choices=sorted(SHAPES))
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--examples", type=int, default=4)
    ap.add_argument("--length", type=int, default=471)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    models = {name: build(args.shape, args.layers, name) for name in names}
    inputs = batch(args.examples, args.length)
    probe = torch.randn(1, args.examples * args.length, SHAPES[args.shape]["hidden_size"],
                        generator=torch.Generator().manual_seed(2)) / 100
    runs = {name: (lambda m=model, v=name: (switch(v), step(m, inputs, probe))[1]) for name, model in models.items()}
    grads, saved, first_step = {}, {}, {}
    for name, fn in runs.items():
        start = time.perf_counter()
        fn()
        first_step[name] = time.perf_counter() - start  # with compile: the compilation
        grads[name] = gradients(models[name])
        switch(name)
        saved[name] = saved_mib(models[name], inputs, probe)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            times[name].append(timed(fn, args.steps))
    first = names[0]
    result = {"args": vars(args) | {"out": str(args.out)}, "threads": torch.get_num_threads(),
              "variants": {name: VARIANTS[name] for name in names}, "figures": {}}
    cpu_first = statistics.median(t[1] for t in times[first])
    for name in names:
        errors = [((g - w).norm() / w.norm()).item() for g, w in zip(grads[name], grads[first])]
        wall, cpu = statistics.median(t[0] for t in times[name]), statistics.median(t[1] for t in times[name])
        result["figures"][name] = {"wall_cpu_s_per_round": times[name], "median_wall_s": wall, "median_cpu_s": cpu,
                                   "cpu_speedup_vs_first": cpu_first / cpu, "max_grad_rel_err_vs_first": max(errors),
                                   "saved_for_backward_mib": saved[name], "first_step_s": first_step[name]}
        print(f"{name:>10}: median step CPU {cpu:.3f} s (wall {wall:.3f})  x{cpu_first / cpu:.2f} vs {first} "
              f"(CPU time)  first step {first_step[name]:.1f} s  saved for backward {saved[name]:.0f} MiB  "
              f"max grad rel err {max(errors):.2e}  "
              f"rounds {[round(t[1], 3) for t in times[name]]}", flush=True)
    if args.profile:
        for name, fn in runs.items():
            print(f"--- {name}")
            for op, seconds, calls in profile(fn, 18):
                print(f"{seconds:8.3f}s {calls:6d}  {op}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
