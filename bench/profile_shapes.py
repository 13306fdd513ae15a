#!/usr/bin/env python
"""Training step profile at several model shapes: tokens/s, op shares, peak RSS and where the memory goes.

Each (shape, mode, memory setting) runs as its own process (so its peak RSS is its own): a Llama/Qwen2-shaped
model built in-process with random weights (no download), set up as `tunelab train` sets it up on the CPU (bf16
frozen weights, LoRA r=8 on every linear layer with the fused LoRA forward, or full fine-tuning on bf16 working
weights with float32 masters; padding-free packed batches through the packed attention; the selective chunked
loss; fused AdamW), then a few optimizer steps on random tokens shaped like the benchmark data (examples of
448-511 tokens, the first ~30% of each a prompt without labels). Per run it reports:

- tokens/s over the steps after the first, and peak RSS (the kernel's ru_maxrss of the child);
- RSS after loading, and the peak RSS of each phase of one step (forward, backward, optimizer);
- the bytes autograd keeps for the backward pass at the end of one forward, by the module that saved them (the
  innermost module running: RMSNorm, a LoRA or base Linear, the attention, the MLP, the loss) and by dtype;
- with --profile, the torch profiler's self-CPU-time shares of the top ops over one step.

Usage: /path/to/venv/bin/python bench/profile_shapes.py --shapes smollm2-135m,qwen2-0.5b,qwen2-1.5b
           [--modes lora,full] [--memory none,cheap] [--steps 3] [--profile] [--ab] [--out X]
Never run as a test: a 1.5B step takes tens of seconds on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# name: (architecture, hidden, intermediate, layers, heads, kv heads, vocabulary, examples, tokens per example)
SHAPES: dict[str, tuple[str, int, int, int, int, int, int, int, int]] = {
    "smollm2-135m": ("llama", 576, 1536, 30, 9, 3, 49152, 4, 480),  # the benchmark model's shape and batch
    "smollm2-layers": ("llama", 576, 1536, 2, 9, 3, 512, 4, 480),  # its layers with a tiny vocabulary: layer cost
    "qwen2-0.5b": ("qwen2", 896, 4864, 24, 14, 2, 151936, 2, 480),
    # Qwen2's widths as Llama models with SmolLM2's vocabulary (no q/k/v biases): make_shape_model.py's folders for
    # bench_train.py --shape-model (transformers 5.25 and 5.6 disagree on a Qwen2 model's forward; on these they agree)
    "llama-0.5b": ("llama", 896, 4864, 24, 14, 2, 49152, 2, 480),
    "llama-1.5b": ("llama", 1536, 8960, 28, 12, 2, 49152, 1, 480),
    "qwen2-1.5b": ("qwen2", 1536, 8960, 28, 12, 2, 151936, 1, 480),
}


def rss_mib() -> float:
    """This process's resident memory now, in MiB (from /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakSampler:
    """Samples a figure of this process (its RSS unless `probe` says another, in MiB) every 5 ms; peak() is the
    largest since the last reset()."""

    def __init__(self, probe: Callable[[], float] = rss_mib) -> None:
        self.probe = probe
        self.top = probe()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            self.top = max(self.top, self.probe())

    def reset(self) -> None:
        self.top = self.probe()

    def peak(self) -> float:
        return max(self.top, self.probe())


KEEP_GLIBC_DEFAULTS = False  # --glibc-defaults: leave malloc as it is (no runtime/allocator.py settings)
LAYERS: dict[str, int] = {}  # --layers: fewer decoder layers than the shape has (same widths and vocabulary)


def build_model(shape: str) -> Any:
    """The shape's model with random weights (float32, as loaded before tunelab's casts)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    arch, hidden, inter, layers, heads, kv, vocab, _, _ = SHAPES[shape]
    layers = LAYERS.get(shape, layers)
    common = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=True,
                  max_position_embeddings=4096, attn_implementation="sdpa")
    torch.manual_seed(0)
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**common))
    return Qwen2ForCausalLM(Qwen2Config(**common))


def batch(shape: str, seed: int) -> dict[str, Any]:
    """A packed batch shaped like the benchmark's: examples of 448-511 tokens, the first 30% unlabelled."""
    import torch

    from tunelab.data.collate import PackedCollator
    from tunelab.data.encode.cutoff import IGNORE_INDEX

    vocab, examples, length = SHAPES[shape][6], SHAPES[shape][7], SHAPES[shape][8]
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(examples):
        n = length - 32 + int(torch.randint(0, 64, (1,), generator=gen))
        ids = torch.randint(0, vocab, (n,), generator=gen).tolist()
        prompt = int(0.3 * n)
        rows.append({"input_ids": ids, "labels": [IGNORE_INDEX] * prompt + ids[prompt:]})
    return PackedCollator()(rows)


def prepare(shape: str, mode: str, memory: str) -> tuple[Any, Any, Any]:
    """The model set up as tunelab train sets it up, the optimizer, and the master weights (full) or None;
    memory: what the backward recomputes (train/recompute.py: none, cheap, full)."""
    import torch

    from tunelab.config.load import build
    from tunelab.model import adapters
    from tunelab.model.attention import use_packed_attention
    from tunelab.model.methods import apply_method
    from tunelab.model.precision import decide
    from tunelab.train import recompute, speed
    from tunelab.train.master import MasterWeights

    flat = {"model_name_or_path": "random", "stage": "sft", "finetuning_type": mode, "bf16": True,
            "lora_target": "all", "lora_rank": 8, "dataset": "x", "template": "smollm2",
            "output_dir": "/tmp/profile_shapes"}
    config = build(flat)
    precision = decide(config.train)
    model = build_model(shape).to(getattr(torch, precision.load_dtype(mode)))
    model, _ = apply_method(model, config, precision)
    adapters.keep_input_dtype(model)
    if not KEEP_GLIBC_DEFAULTS:
        speed.tune_process(precision)
    speed.apply(model, precision)
    speed.keep_less(model, memory)
    use_packed_attention(adapters.base_model(model))
    if memory == "cheap":
        recompute.enable_cheap(model)
    elif memory == "full":
        adapters.base_model(model).gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    master = MasterWeights(model) if speed.master_weights(config, precision) else None
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
    if master is not None:
        master.attach(optimizer)
    model.train()
    return model, optimizer, master


class KeptBytes:
    """What the selective checkpoint keeps (memory 'cheap'): the outputs its policy marks MUST_SAVE in the
    forward pass, counted from the ops' arguments, by op (plus each layer's input, which every checkpoint keeps)."""

    def __init__(self) -> None:
        from tunelab.train import recompute

        self.by_op: dict[str, int] = defaultdict(int)
        self.policy = recompute.keep_output
        recompute.keep_output = self.count

    def count(self, ctx: Any, op: Any, *args: Any, **kwargs: Any) -> Any:
        from torch.utils.checkpoint import CheckpointPolicy

        decision = self.policy(ctx, op, *args, **kwargs)
        if decision == CheckpointPolicy.MUST_SAVE and not ctx.is_recompute:
            name = str(op).split(".")[1]
            a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
            size = a[..., :1].numel() * b.shape[-1] if name in ("mm", "addmm", "bmm", "baddbmm") else a.numel()
            self.by_op[name] += size * a.element_size()
        return decision


class SavedBytes:
    """Bytes autograd saves for backward during a forward, by the innermost running module's class and dtype
    (each storage counted once; parameters, which are not activations, left out)."""

    def __init__(self, model: Any) -> None:
        import torch

        self.stack: list[str] = []
        self.seen: set[int] = set()
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.by_module: dict[str, int] = defaultdict(int)
        self.by_dtype: dict[str, int] = defaultdict(int)
        for module in model.modules():
            module.register_forward_pre_hook(self.enter)
            module.register_forward_hook(self.leave)
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda x: x)

    def enter(self, module: Any, *_: Any) -> None:
        name = type(module).__name__
        if name == "Linear" and self.stack and self.stack[-1].startswith("lora."):
            name = "lora.Linear(A/B)"
        elif type(module).__module__.startswith("peft"):
            name = "lora." + name
        self.stack.append(name)

    def leave(self, *_: Any) -> None:
        self.stack.pop()

    def pack(self, tensor: Any) -> Any:
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in self.seen and ptr not in self.params:
            self.seen.add(ptr)
            size = tensor.untyped_storage().nbytes()
            self.by_module[self.stack[-1] if self.stack else "(loss, outside modules)"] += size
            self.by_dtype[str(tensor.dtype).replace("torch.", "")] += size
        return tensor


def step(model: Any, optimizer: Any, inputs: dict[str, Any], sampler: PeakSampler | None = None) -> dict[str, float]:
    """One optimizer step; with a sampler, the peak RSS of each phase."""
    import torch

    from tunelab.train.loss import selective_loss

    phases: dict[str, float] = {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = selective_loss(model, inputs, None)
    if sampler:
        phases["forward_peak_mib"], _ = sampler.peak(), sampler.reset()
    loss.backward()
    if sampler:
        phases["backward_peak_mib"], _ = sampler.peak(), sampler.reset()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if sampler:
        phases["optimizer_peak_mib"] = sampler.peak()
    phases["loss"] = float(loss)
    return phases


def one(shape: str, mode: str, memory: str, steps: int, profile: bool) -> dict[str, Any]:
    """Everything measured for one configuration, in this process."""
    import torch

    sampler = PeakSampler()
    start = time.perf_counter()
    kept = KeptBytes() if memory == "cheap" else None
    model, optimizer, _ = prepare(shape, mode, memory)
    out: dict[str, Any] = {"shape": shape, "mode": mode, "memory": memory, "threads": torch.get_num_threads(),
                           "setup_s": round(time.perf_counter() - start, 1), "rss_after_setup_mib": rss_mib(),
                           "parameters": sum(p.numel() for p in model.parameters()),
                           "layers": LAYERS.get(shape, SHAPES[shape][3])}
    inputs = [batch(shape, seed) for seed in range(steps)]
    tokens = [int(b["input_ids"].shape[1]) for b in inputs]
    times, losses, rss_after = [], [], []
    for i, b in enumerate(inputs):
        sampler.reset()
        t = time.perf_counter()
        phases = step(model, optimizer, b, sampler if i == 1 else None)
        times.append(time.perf_counter() - t)
        rss_after.append(round(rss_mib()))
        losses.append(phases.pop("loss"))
        if i == 1:
            out["phases"] = {k: round(v) for k, v in phases.items()}
    out["rss_after_each_step_mib"] = rss_after
    out.update({"tokens": tokens, "step_s": [round(t, 2) for t in times], "losses": [round(x, 4) for x in losses],
                "tokens_per_s": sum(tokens[1:]) / sum(times[1:])})
    saved = SavedBytes(model)
    if kept is not None:
        kept.by_op.clear()
    with saved.hooks, torch.autocast("cpu", dtype=torch.bfloat16):
        from tunelab.train.loss import selective_loss

        loss = selective_loss(model, inputs[0], None)
    loss.backward()
    optimizer.zero_grad(set_to_none=True)
    if kept is not None:  # inside checkpointed layers the hooks see only the layers' inputs
        for op, size in kept.by_op.items():
            saved.by_module[f"kept output of {op}"] += size
    out["saved_mib_by_module"] = {k: round(v / 2**20, 1) for k, v in sorted(saved.by_module.items(),
                                                                            key=lambda kv: -kv[1])}
    out["saved_mib_by_dtype"] = {k: round(v / 2**20, 1) for k, v in saved.by_dtype.items()}
    out["saved_mib_total"] = round(sum(saved.by_module.values()) / 2**20, 1)
    out["saved_bytes_per_token"] = round(sum(saved.by_module.values()) / tokens[0])
    out["saved_bytes_per_token_and_layer"] = round(out["saved_bytes_per_token"] / out["layers"])
    if profile:
        out["op_shares"] = op_shares(model, optimizer, inputs[-1])
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def ab(shape: str, mode: str, settings: list[str], steps: int) -> dict[str, Any]:
    """Models with each memory setting (same weights), stepped alternately on the same batches in one process:
    wall and process CPU seconds per step (the median after the first step of each) and the losses."""
    import torch

    setups = {memory: prepare(shape, mode, memory) for memory in settings}
    inputs = [batch(shape, seed) for seed in range(steps)]
    figures: dict[str, dict[str, list[float]]] = {m: {"wall": [], "cpu": [], "loss": []} for m in settings}
    for i, b in enumerate(inputs):
        for memory in settings if i % 2 else settings[::-1]:
            model, optimizer, _ = setups[memory]
            wall, cpu = time.perf_counter(), time.process_time()
            loss = step(model, optimizer, b)["loss"]
            figures[memory]["wall"].append(time.perf_counter() - wall)
            figures[memory]["cpu"].append(time.process_time() - cpu)
            figures[memory]["loss"].append(round(loss, 5))
    summary = {m: {"wall_s": round(statistics.median(f["wall"][1:]), 3),
                   "cpu_s": round(statistics.median(f["cpu"][1:]), 3), "losses": f["loss"]} for m, f in figures.items()}
    first = settings[0]
    for m in settings[1:]:
        summary[m]["wall_vs_" + first] = round(summary[m]["wall_s"] / summary[first]["wall_s"], 3)
        summary[m]["cpu_vs_" + first] = round(summary[m]["cpu_s"] / summary[first]["cpu_s"], 3)
    return {"shape": shape, "mode": mode, "memory": "+".join(settings), "threads": torch.get_num_threads(),
            "tokens": [int(b["input_ids"].shape[1]) for b in inputs], "figures": figures, "summary": summary}


def op_shares(model: Any, optimizer: Any, inputs: dict[str, Any]) -> dict[str, float]:
    """Self-CPU-time share of the 12 largest ops over one step (torch profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(model, optimizer, inputs)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]
    return {e.key: round(100 * e.self_cpu_time_total / total, 1) for e in top}


def main(argv: list[str] | None = None) -> int:
    """Run every configuration in its own process, alternating memory settings, and write the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="smollm2-135m,qwen2-0.5b,qwen2-1.5b")
    ap.add_argument("--modes", default="lora,full")
    ap.add_argument("--memory", default="none,cheap",
                    help="what backward recomputes, comma-separated: none, cheap, full")
    ap.add_argument("--ab", action="store_true", help="instead: one process per shape and mode, the --memory "
                    "settings' models stepped alternately on the same batches (wall and CPU seconds per step)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--glibc-defaults", action="store_true", help="leave glibc malloc at its defaults")
    ap.add_argument("--layers", type=int, default=0, help="build this many decoder layers instead of the shape's "
                    "(per-layer figures stay the same; the runs get shorter)")
    ap.add_argument("--tokens", type=int, default=0, help="tokens per example instead of the shape's")
    ap.add_argument("--profile", action="store_true", help="also the torch profiler's op shares of one step")
    ap.add_argument("--out", type=Path, default=None, help="write the runs to OUT.json")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        shape, mode, memory = args.one.split(":")
        if args.layers:
            LAYERS[shape] = args.layers
        global KEEP_GLIBC_DEFAULTS
        KEEP_GLIBC_DEFAULTS = args.glibc_defaults
        if args.tokens:
            SHAPES[shape] = SHAPES[shape][:8] + (args.tokens,)
        result = ab(shape, mode, memory.split("+"), args.steps) if "+" in memory else one(
            shape, mode, memory, args.steps, args.profile)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    runs = []
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for _ in range(args.rounds):
        for shape in args.shapes.split(","):
            for mode in args.modes.split(","):
                for memory in ([args.memory.replace(",", "+")] if args.ab else args.memory.split(",")):
                    cmd = [sys.executable, __file__, "--one", f"{shape}:{mode}:{memory}", "--steps", str(args.steps)]
                    cmd += ["--profile"] if args.profile else []
                    cmd += ["--layers", str(args.layers), "--tokens", str(args.tokens)]
                    cmd += ["--glibc-defaults"] if args.glibc_defaults else []
                    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
                    if proc.returncode or not lines:
                        print(f"{shape} {mode} {memory}: FAILED\n{proc.stderr[-3000:]}", flush=True)
                        continue
                    run = json.loads(lines[-1][7:])
                    runs.append(run)
                    if args.ab:
                        print(f"{shape} {mode} A/B: " + json.dumps(run["summary"]), flush=True)
                        continue
                    print(f"{shape} {mode} {memory}: RSS after each step {run['rss_after_each_step_mib']}", flush=True)
                    print(f"{shape} {mode} {memory}: {run['tokens_per_s']:.1f} tokens/s, peak RSS "
                          f"{run['peak_rss_mib']:,.0f} MiB, saved {run['saved_mib_total']:,.0f} MiB "
                          f"({run['saved_bytes_per_token']:,} B/token), steps {run['step_s']}, losses "
                          f"{run['losses']}", flush=True)
                    print("   saved by module: " + json.dumps(run["saved_mib_by_module"]) + " dtype: "
                          + json.dumps(run["saved_mib_by_dtype"]) + " phases: " + json.dumps(run.get("phases")),
                          flush=True)
                    if run.get("op_shares"):
                        print("   ops: " + json.dumps(run["op_shares"]), flush=True)
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps({"runs": runs}, indent=1))
    return 0 if runs else 1


if __name__ == "__main__":
    sys.exit(main())
