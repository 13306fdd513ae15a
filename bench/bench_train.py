#!/usr/bin/env python
"""Training speed: tunelab against LLaMA-Factory 0.9.5, LoRA SFT and full fine-tuning, same data, same run.

For each mode (lora, full) runs `tunelab train bench/train_<mode>.yaml` and LLaMA-Factory's `run_exp` (the
function `llamafactory-cli train` calls in a single process) on a config this script writes, alternately,
--rounds times each, as separate processes. Settings are the shared workload's (batch 4, grad-acc 1, 30 steps
in file order, cutoff 1024, seed 42, bf16 autocast on the CPU with `use_cpu: true` for LLaMA-Factory; lr 1e-4
for LoRA, 1e-5 for full), each system at its defaults otherwise (LLaMA-Factory: gradient checkpointing on;
tunelab: off below 1B parameters, padding-free batches). Per run: real (non-padding) tokens/s over the training
steps, start-up, peak RSS and the per-step losses, which must agree within bf16 noise.
Writes bench/results/train_<date><--tag>.json (every figure) and .md (the tables), and prints the page.

Usage: /path/to/venv/bin/python bench/bench_train.py --rounds 1 [--modes lora,full] [--lf-python PATH]
Never run as a test: an LLaMA-Factory run takes 5-10 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import bench_sft
from bench_sft import figures, git_revision, launch, machine, matmul_rate, wait_for_quiet
from sft_report import table

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = (("tunelab", "tunelab median"), ("llamafactory", "LLaMA-Factory median"))
CONFIGS = {"lora": REPO / "bench" / "train_lora.yaml", "full": REPO / "bench" / "train_full.yaml"}
LEARNING_RATE = {"lora": 1e-4, "full": 1e-5}
MEAN_LENGTH = 471  # tokens per example of the benchmark data (the attention's FLOPs depend on it)
LORA_RANK = 8

LF_WRAPPER = '''
"""LLaMA-Factory's run_exp (what `llamafactory-cli train CONFIG` calls in one process) with a step timer."""
import json, sys, time
import yaml
from transformers import TrainerCallback


class Timer(TrainerCallback):
    def __init__(self, out):
        self.out, self.begin, self.step_start, self.steps, self.losses = out, None, None, [], []

    def on_train_begin(self, *a, **k):
        self.begin = time.time()

    def on_step_begin(self, *a, **k):
        self.step_start = time.time()

    def on_step_end(self, *a, **k):
        self.steps.append(time.time() - self.step_start)

    def on_log(self, args, state, control, logs=None, **k):
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])

    def on_train_end(self, *a, **k):
        with open(self.out, "w") as f:
            json.dump({"train_begin_t": self.begin, "step_times_s": self.steps, "losses": self.losses}, f)


config, out = sys.argv[1], sys.argv[2]
from llamafactory.train.tuner import run_exp

run_exp(yaml.safe_load(open(config)), callbacks=[Timer(out)])
'''


def add_run_options(ap: argparse.ArgumentParser, data: Path, workdir: Path, baselines_help: str) -> None:
    """The options of a run against LLaMA-Factory (environment, data, model, folders, the quiet-machine rules and
    the loss tolerance), shared with bench_pref.py."""
    ap.add_argument("--lf-python", type=Path, default=Path("/tmp/lf-venv/bin/python"),
                    help="python of the LLaMA-Factory 0.9.5 environment")
    ap.add_argument("--baselines", type=Path, default=REPO.parent / "shared" / "baselines", help=baselines_help)
    ap.add_argument("--data", type=Path, default=data, help="dataset folder; made if missing")
    ap.add_argument("--model", type=Path, default=Path("/tmp/models/smollm2-135m-instruct"),
                    help="HF folder of SmolLM2-135M-Instruct for LLaMA-Factory; converted from the GGUF if missing")
    ap.add_argument("--workdir", type=Path, default=workdir,
                    help="where the runs' output folders and logs go (deleted and rewritten per run)")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="where results are written")
    ap.add_argument("--quiet-wait", type=float, default=300,
                    help="before each run wait up to this many seconds for idle CPUs; then run and record the load")
    ap.add_argument("--quiet-load", type=float, default=10.0, help="machine CPU %% counted as idle (default 10)")
    ap.add_argument("--noisy", type=float, default=0.10, help="other processes' CPU share called disturbed")
    ap.add_argument("--retries", type=int, default=0, help="repeats of a disturbed run (default 0: keep and flag)")
    ap.add_argument("--loss-tol", type=float, default=0.02, help="largest per-step loss difference called agreement")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="runs of each system per mode, alternating (default 2)")
    ap.add_argument("--modes", default="lora,full", help="comma-separated: lora, full (default both)")
    ap.add_argument("--steps", type=int, default=30, help="training steps per run (the workload: 30)")
    add_run_options(ap, Path("/tmp/bench/data"), Path("/tmp/bench/runs/bench_train"),
                    "folder with make_dataset.py, convert_gguf.py, matmul_bench.py")
    ap.add_argument("--matmul-secs", type=float, default=0.5, help="seconds per shape for matmul_bench.py; 0 skips")
    ap.add_argument("--tag", default="", help="added to the results' file names: train_<date><tag>.json/.md")
    ap.add_argument("--note", default="", help="a note printed on the results page (e.g. what changed between rounds)")
    ap.add_argument("--variants", default="",
                    help="extra tunelab runs with overrides, alternating with the others: comma-separated "
                         "NAME:KEY=VALUE[;KEY=VALUE], e.g. nockpt:gradient_checkpointing=false (each gets its own "
                         "median and ratio to LLaMA-Factory)")
    ap.add_argument("--shape-model", type=Path, default=None,
                    help="a model folder of another shape with SmolLM2's tokenizer (bench/make_shape_model.py) that "
                         "both systems train instead of SmolLM2 (tunelab by path); the data stays the same")
    ap.add_argument("--append", action="store_true",
                    help="keep the runs of today's results file and add this session's as the next rounds")
    args = ap.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        args.variants = {name: dict(item.split("=", 1) for item in settings.split(";"))
                         for name, settings in (v.split(":", 1) for v in args.variants.split(",") if v.strip())}
    except ValueError:
        ap.error("--variants: NAME:KEY=VALUE[;KEY=VALUE], comma-separated")
    if args.steps < 2 or args.rounds < 1 or not set(args.modes) <= set(CONFIGS) or not args.modes:
        ap.error("--steps 2 or more, --rounds 1 or more, --modes among lora,full")
    if args.shape_model is not None:
        if not (args.shape_model / "config.json").is_file():
            ap.error(f"--shape-model {args.shape_model}: no config.json there; make it with bench/make_shape_model.py")
        args.shape_model = args.model = args.shape_model.resolve()
    return args


def flop_per_token(model: Path) -> dict[str, float]:
    """Model FLOPs per real token of a training step, forward + backward, from the model folder's config: N = the
    linear layers' weights (the tied output head once); full 6N + attention, LoRA 4N (no weight gradients) + the
    adapters' 6 x r x (in + out) + attention; attention (scores and values) 6 x length x hidden x layers at the
    data's mean example length. SmolLM2-135M: N = 134.5M, LoRA 601 MFLOP (the shared baselines' figure)."""
    c = json.loads((model / "config.json").read_text())
    hidden, inter, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    kv_width = hidden // c["num_attention_heads"] * c.get("num_key_value_heads", c["num_attention_heads"])
    shapes = [(hidden, hidden), (hidden, kv_width), (hidden, kv_width), (hidden, hidden),
              (hidden, inter), (hidden, inter), (inter, hidden)]
    n_params = layers * sum(i * o for i, o in shapes) + c["vocab_size"] * hidden
    lora = layers * sum(LORA_RANK * (i + o) for i, o in shapes)
    attention = 6 * MEAN_LENGTH * hidden * layers
    return {"lora": 4 * n_params + 6 * lora + attention, "full": 6 * n_params + attention}


def lf_config(mode: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """LLaMA-Factory's config for the workload: its defaults otherwise (gradient checkpointing on)."""
    config: dict[str, Any] = {
        "model_name_or_path": str(args.model), "trust_remote_code": False, "stage": "sft", "do_train": True,
        "finetuning_type": mode, "dataset": "bench_sft", "dataset_dir": str(args.data), "template": "smollm2",
        "cutoff_len": 1024, "overwrite_cache": True, "disable_shuffling": True, "output_dir": str(out),
        "logging_steps": 1, "save_strategy": "no", "plot_loss": False, "overwrite_output_dir": True,
        "report_to": "none", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
        "learning_rate": LEARNING_RATE[mode], "max_steps": args.steps, "lr_scheduler_type": "linear",
        "warmup_steps": 0, "bf16": True, "use_cpu": True, "seed": 42,
    }
    if mode == "lora":
        config.update({"lora_target": "all", "lora_rank": 8})  # alpha 2 x rank = 16 and dropout 0: defaults
    return config


def run_lf(mode: str, out: Path, args: argparse.Namespace, env: dict[str, str], tokens: list[int]) -> dict[str, Any]:
    """One LLaMA-Factory run of a mode's config through run_exp with the step timer."""
    return run_lf_config(lf_config(mode, args, out), out, args, env, tokens)


def run_lf_config(settings: dict[str, Any], out: Path, args: argparse.Namespace, env: dict[str, str],
                  tokens: list[int]) -> dict[str, Any]:
    """One LLaMA-Factory run of a config (any stage) through run_exp with the step timer (bench_pref.py's too)."""
    out.mkdir(parents=True, exist_ok=True)
    config = out / "lf_config.yaml"
    config.write_text(yaml.safe_dump(settings))
    wrapper = args.workdir / "lf_train_timed.py"
    timing = out / "bench_timing.json"
    cmd = [str(args.lf_python), str(wrapper), str(config), str(timing)]
    proc = launch(cmd, out.with_suffix(".log"), env, None)
    if proc["rc"] != 0 or not timing.is_file():
        return {"system": "llamafactory", "ok": False, **proc}
    timed = json.loads(timing.read_text())
    return {"system": "llamafactory", "ok": True, **proc, "startup_s": timed["train_begin_t"] - proc["launch_t"],
            "step_times_s": timed["step_times_s"], "step_tokens": tokens, "losses": timed["losses"]}


def one_run(system: str, mode: str, name: str, args: argparse.Namespace, env: dict[str, str],
            tokens: list[int], tunelab_config: Path | None = None,
            lf_settings: Callable[[Path], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Wait for a quiet machine, run one system once (repeating a disturbed run --retries times), add figures.
    tunelab_config and lf_settings (output folder -> LLaMA-Factory config) replace the mode's (bench_pref.py)."""
    for attempt in range(args.retries + 1):
        print(f"bench: {name} ...", flush=True)
        out = args.workdir / name
        shutil.rmtree(out, ignore_errors=True)
        quiet = wait_for_quiet(args.quiet_wait, args.quiet_load)
        revision = git_revision()
        settings = lf_settings or (lambda folder: lf_config(mode, args, folder))
        config = tunelab_config or mode_config(mode, args)
        run = (bench_sft.run_tunelab(out, args, env, None, config) if system == "tunelab"
               else run_lf_config(settings(out), out, args, env, tokens))
        run.update({"name": name, "mode": mode, "before": quiet, "tunelab_git": revision, "attempt": attempt})
        figures(run)
        if system == "tunelab":
            run["batches_match_data"] = run["ok"] and run["step_tokens"] == tokens
        print(f"bench: {name} " + (f"{run['tokens_per_s']:.1f} tokens/s, loss {run['final_loss']:.4f}, "
                                   f"peak RSS {run['peak_rss_mib_wait4']:,.0f} MiB, other load "
                                   f"{100 * run['other_processes_cpu_share']:.0f}%" if run["ok"]
                                   else f"FAILED rc {run['rc']}, log {run['log']}"), flush=True)
        if not run["ok"] or run["other_processes_cpu_share"] < args.noisy:
            break
    return run


# ---------------------------------------------------------------------------------------------- figures

def mode_config(mode: str, args: argparse.Namespace, name: str = "", settings: dict[str, str] | None = None) -> Path:
    """The mode's tunelab config: as it is, or with --shape-model's folder as the model and a variant's overrides
    (values parsed as YAML), written to the workdir."""
    shape_model = getattr(args, "shape_model", None)  # bench_pref.py has none
    if shape_model is None and not settings:
        return CONFIGS[mode]
    config = yaml.safe_load(CONFIGS[mode].read_text())
    if shape_model is not None:
        config["model_name_or_path"] = str(shape_model)
    config.update({key: yaml.safe_load(value) for key, value in (settings or {}).items()})
    path = args.workdir / f"train_{mode}{'_' + name if name else ''}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def summarise(runs: list[dict[str, Any]], mode: str, gemm: dict[str, Any] | None, tol: float,
              flops: float | None = None) -> dict[str, Any]:
    """Medians per system, the tunelab/LLaMA-Factory ratio, MFU (given the FLOPs per real token) and per-step loss
    agreement for one mode."""
    out: dict[str, Any] = {}
    systems = ["tunelab", "llamafactory"] + sorted({r["system"] for r in runs if r["system"].startswith("tunelab:")})
    by = {s: [r for r in runs if r["mode"] == mode and r["system"] == s and r["ok"]] for s in systems}
    for system, ok in by.items():
        if not ok:
            continue
        med = {k: statistics.median(r[k] for r in ok) for k in
               ("tokens_per_s", "tokens_per_s_after_step1", "mean_step_s", "startup_s", "peak_rss_mib_wait4",
                "final_loss", "other_processes_cpu_share")}
        if gemm and flops:
            med["mfu_vs_bf16_gemm"] = med["tokens_per_s"] * flops / (
                gemm["model_gemm_gflops_bf16"]["mean"] * 1e9)
        out[system] = med
    for variant in systems[2:]:
        if by[variant] and by["llamafactory"]:
            out[f"ratio_{variant}_over_lf"] = {k: out[variant][k] / out["llamafactory"][k] for k in
                                               ("tokens_per_s", "tokens_per_s_after_step1", "peak_rss_mib_wait4")}
    if by["tunelab"] and by["llamafactory"]:
        out["ratio_tunelab_over_lf"] = {k: out["tunelab"][k] / out["llamafactory"][k] for k in
                                        ("tokens_per_s", "tokens_per_s_after_step1", "peak_rss_mib_wait4")}
        diffs = {f"{a['name']} vs {b['name']}": [abs(x - y) for x, y in zip(a["losses"], b["losses"])]
                 for a in by["tunelab"] for b in by["llamafactory"]}
        out["loss_agreement"] = {k: {"max_abs": max(d), "mean_abs": statistics.mean(d), "step1_abs": d[0]}
                                 for k, d in diffs.items()}
        out["loss_agree"] = max(v["max_abs"] for v in out["loss_agreement"].values()) <= tol
    return out


def markdown(result: dict[str, Any]) -> str:
    """The results page: per mode the table, the ratio, MFU and loss agreement; then the machine."""
    m, g = result["machine"], result["matmul"]
    lines = [f"# Training speed: tunelab vs LLaMA-Factory 0.9.5 ({result['date']})", "",
             f"Workload: {result['workload']}", "",
             f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, avx512_bf16={m['avx512_bf16']}, "
             f"amx={m['amx_bf16']}, {m['memory_gib']} GiB; torch {m['torch']} ({m['torch_threads']} threads), "
             f"transformers {m['versions']['transformers']}, peft {m['versions']['peft']}; LLaMA-Factory "
             f"{result['lf_versions']}; tunelab {m['versions']['tunelab']} at "
             f"{', '.join(sorted({str(r.get('tunelab_git')) for r in result['runs']}))}.", ""]
    if g:
        lines += [f"bf16 GEMM rate at the model's shapes (matmul_bench.py, {g['threads']} threads): mean "
                  f"{g['model_gemm_gflops_bf16']['mean']:,.0f} GFLOP/s (fp32 {g['model_gemm_gflops_fp32']['mean']:,.0f}).", ""]
    for mode in result["modes"]:
        s = result["summary"][mode]
        runs = [r for r in result["runs"] if r["mode"] == mode]
        lines += [f"## {mode} ({'LoRA r=8 on all linear layers, lr 1e-4' if mode == 'lora' else 'every weight, lr 1e-5'})",
                  "", table(runs, s, SYSTEMS + tuple((k, f"{k} median") for k in s
                                                     if k.startswith("tunelab:")), polled=False), ""]
        for key, r in s.items():
            if key.startswith("ratio_tunelab:"):
                lines += [f"**{key[6:-8]} / LLaMA-Factory: {r['tokens_per_s']:.2f}x** real tokens/s (steps 2-N: "
                          f"{r['tokens_per_s_after_step1']:.2f}x; peak RSS {r['peak_rss_mib_wait4']:.2f}x).", ""]
        if "ratio_tunelab_over_lf" in s:
            r = s["ratio_tunelab_over_lf"]
            lines += [f"**tunelab / LLaMA-Factory, median real tokens/s: {r['tokens_per_s']:.2f}x** (steps 2-N: "
                      f"{r['tokens_per_s_after_step1']:.2f}x; peak RSS {r['peak_rss_mib_wait4']:.2f}x).", ""]
            pairs = "; ".join(f"{k}: max {v['max_abs']:.4f}, mean {v['mean_abs']:.4f}, step 1 {v['step1_abs']:.4f}"
                              for k, v in s["loss_agreement"].items())
            lines += [f"Per-step loss ({'agree' if s['loss_agree'] else 'DIFFER'} within {result['loss_tol']}): "
                      f"{pairs}.", ""]
        mfu = "; ".join(f"{k} {100 * s[k]['mfu_vs_bf16_gemm']:.1f}%" for k in ("tunelab", "llamafactory")
                        if k in s and "mfu_vs_bf16_gemm" in s[k])
        if mfu:
            lines += [f"Model FLOPs utilisation ({result['flop_per_real_token'][mode] / 1e6:.0f} MFLOP per real "
                      "token against "
                      f"the mean bf16 GEMM rate): {mfu}.", ""]
    noisy = [r["name"] for r in result["runs"] if r.get("other_processes_cpu_share", 0) >= result["noisy_share"]]
    if noisy:
        lines += [f"WARNING: other processes used {100 * result['noisy_share']:.0f}% or more of the CPUs during "
                  f"{', '.join(noisy)}; those figures are disturbed (ratios of runs under similar load still "
                  "compare; absolute figures do not).", ""]
    if result.get("note"):
        lines += [f"Note: {result['note']}", ""]
    lines += ["How to read: real tokens/s = the non-padding tokens of the batches (computed from the data, the "
              "same for both) / the sum of the step times (LLaMA-Factory: Trainer step begin to step end, "
              "from a callback; tunelab: run.jsonl elapsed_s deltas). Peak RSS: wait4 of the process. MFU: "
              f"LoRA 4N + adapters + attention = {result['flop_per_real_token']['lora'] / 1e6:.0f} MFLOP per real "
              f"token, full 6N + attention = {result['flop_per_real_token']['full'] / 1e6:.0f} MFLOP "
              "(`flop_per_token`); tunelab skips the output head for unlabelled tokens, "
              "so its real FLOPs are a little lower.", ""]
    return "\n".join(lines)


def lf_versions(lf_python: Path) -> str:
    """llamafactory, torch and transformers versions of the LLaMA-Factory environment."""
    code = ("import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
            "('llamafactory', 'torch', 'transformers', 'peft')))")
    proc = subprocess.run([str(lf_python), "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


# ---------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    """Prepare, run both systems alternately per mode, write and print the results."""
    args = parse_args(argv)
    tokens = bench_sft.prepare(args)
    date = datetime.date.today().isoformat()
    stem = f"train_{date}{args.tag}"
    results_file = args.results / f"{stem}.json"
    earlier = json.loads(results_file.read_text())["runs"] if args.append and results_file.is_file() else []
    first_round = 1 + max((int(r["name"].rsplit("-", 1)[1]) for r in earlier), default=0)
    if not earlier:
        shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "lf_train_timed.py").write_text(LF_WRAPPER)
    info = machine()
    flops = flop_per_token(args.model)
    model_name = (f"{args.shape_model.name} (random weights, SmolLM2's tokenizer; tunelab loads it by path)"
                  if args.shape_model else "SmolLM2-135M-Instruct")
    wait_for_quiet(args.quiet_wait, args.quiet_load)
    gemm = matmul_rate(args.baselines, args.matmul_secs, info["torch_threads"], args.workdir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "DISABLE_VERSION_CHECK": "1"}
    runs = list(earlier)
    for i in range(first_round, first_round + args.rounds):
        for mode in args.modes:
            order = ["llamafactory", "tunelab", *(f"tunelab:{v}" for v in args.variants)]
            for system in order if i % 2 else order[::-1]:
                if system.startswith("tunelab:"):
                    variant = system.split(":", 1)[1]
                    config = mode_config(mode, args, variant, args.variants[variant])
                    run = one_run("tunelab", mode, f"{mode}-tunelab_{variant}-{i}", args, env, tokens, config)
                    run.update({"system": system, "overrides": args.variants[variant]})
                    runs.append(run)
                    continue
                name = f"{mode}-{'lf' if system == 'llamafactory' else 'tunelab'}-{i}"
                runs.append(one_run(system, mode, name, args, env, tokens))
    rounds = len({r["name"].rsplit("-", 1)[1] for r in runs})
    result = {
        "date": date, "machine": info, "lf_versions": lf_versions(args.lf_python), "matmul": gemm,
        "flop_per_real_token": flops, "noisy_share": args.noisy, "loss_tol": args.loss_tol,
        "modes": args.modes,
        "workload": (f"{model_name}, batch 4, grad-acc 1, {args.steps} steps in file order, cutoff 1024, "
                     f"seed 42, lr linear without warmup (LoRA r=8 alpha 16 dropout 0 on all linear layers: 1e-4; "
                     f"full: 1e-5), bf16 autocast on the CPU, {sum(tokens):,} real tokens; each system at its "
                     f"defaults otherwise (LLaMA-Factory: gradient checkpointing on); {rounds} alternating "
                     "runs per system and mode"),
        "batch_real_tokens": tokens, "runs": runs, "note": args.note,
        "summary": {mode: summarise(runs, mode, gemm, args.loss_tol, flops[mode]) for mode in args.modes},
    }
    args.results.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (args.results / f"{stem}.md").write_text(text)
    print(text)
    print(f"bench: wrote {results_file} and .md")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
