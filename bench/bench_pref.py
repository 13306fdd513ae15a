#!/usr/bin/env python
"""Preference training speed: tunelab against LLaMA-Factory 0.9.5 on stages dpo, kto and rm, same data, same run.

The workload (issue 15): LoRA r=8 on all linear layers of SmolLM2-135M-Instruct, batch 4 (pairs for dpo and rm,
rows for kto), grad-acc 1, --steps steps in file order, cutoff 1024, lr 1e-4 linear without warmup, seed 42, bf16
autocast on the CPU, on pairs of 200-500 tokens a side (bench/make_pref_data.py: real text, deterministic). For each
stage it runs `tunelab train bench/pref_<stage>.yaml` and LLaMA-Factory's `run_exp` on the same settings (written
by this script; its defaults otherwise: gradient checkpointing on, the LoRA reference by disabling the adapter),
alternately, --rounds times each, as separate processes, with bench_train.py's machinery: the wait for a quiet
machine, peak RSS (wait4), real tokens/s over the steps (chosen + rejected sequences for dpo and rm, each row and its
KL partner for kto: the non-padding tokens both systems forward, computed from the data) and the per-step losses,
which must agree within bf16 noise.
Stage grpo (LLaMA-Factory 0.9.5 has none) runs tunelab alone on the pairs' prompts (bench/pref_grpo.yaml): answers
sampled per second and generated tokens per second over its steps.
Writes bench/results/pref_<date>.json (every figure) and .md (the tables, the machine and whether its CPU has AMX),
and prints the page.

Usage: /path/to/venv/bin/python bench/bench_pref.py --rounds 2 [--stages dpo,kto,rm,grpo] [--steps 30]
Never run as a test: an LLaMA-Factory DPO run takes minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import bench_sft
import bench_train
from bench_sft import figures, machine
from sft_report import table

REPO = Path(__file__).resolve().parents[1]
STAGES = ("dpo", "kto", "rm", "grpo")  # grpo: tunelab only (LLaMA-Factory 0.9.5 has no grpo stage)
DATASETS = {"dpo": "bench_pref", "kto": "bench_kto", "rm": "bench_pref"}
LF_KEYS: dict[str, dict[str, Any]] = {"dpo": {"pref_beta": 0.1, "pref_loss": "sigmoid"}, "kto": {"pref_beta": 0.1},
                                      "rm": {}}
COLUMNS = {"dpo": ("chosen_input_ids", "rejected_input_ids"), "rm": ("chosen_input_ids", "rejected_input_ids"),
           "kto": ("input_ids", "kl_input_ids")}  # what each stage forwards per example
BATCH = 4
SYSTEMS = (("tunelab", "tunelab median"), ("llamafactory", "LLaMA-Factory median"))


def config_of(stage: str, float32: bool = False, workdir: Path | None = None) -> Path:
    """tunelab's config for a stage (with float32: a copy in workdir with bf16 off)."""
    path = REPO / "bench" / f"pref_{stage}.yaml"
    if not float32:
        return path
    assert workdir is not None
    workdir.mkdir(parents=True, exist_ok=True)
    text = path.read_text()
    if "\nbf16: true\n" not in text:
        raise SystemExit(f"bench: {path} has no line 'bf16: true' for --float32 to turn off")
    copy = workdir / f"pref_{stage}_float32.yaml"
    copy.write_text(text.replace("\nbf16: true\n", "\nbf16: false\n"))
    return copy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (bench_train.py's, with --stages and the preference data folder)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="runs of each system per stage, alternating (default 2)")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated: dpo, kto, rm, grpo (default all)")
    ap.add_argument("--steps", type=int, default=30, help="training steps per run (default 30)")
    bench_train.add_run_options(ap, Path("/tmp/bench/pref_data"), Path("/tmp/bench/runs/bench_pref"),
                                "folder with make_dataset.py (its text source), convert_gguf.py")
    ap.add_argument("--note", default="", help="a note printed on the results page")
    ap.add_argument("--float32", action="store_true",
                    help="both systems in float32 (bf16 off): per-step losses without bf16 rounding; results as "
                         "pref_<date>_fp32")
    args = ap.parse_args(argv)
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if args.steps < 2 or args.rounds < 1 or not args.stages or not set(args.stages) <= set(STAGES):
        ap.error(f"--steps 2 or more, --rounds 1 or more, --stages among {','.join(STAGES)}")
    return args


def prepare(args: argparse.Namespace) -> None:
    """Resolve the paths; make the model folder and the data where missing; warm tunelab's model cache."""
    import make_pref_data

    args.data, args.model, args.baselines = args.data.resolve(), args.model.resolve(), args.baselines.resolve()
    bench_sft.ensure_model(args.model, args.baselines)
    if not (args.data / "dataset_info.json").is_file():
        print(f"bench: making the preference data in {args.data}", flush=True)
        make_pref_data.main(["--out", str(args.data), "--model", str(args.model), "--baselines", str(args.baselines),
                             "--pairs", str(max(160, args.steps * BATCH))])
    bench_sft.warm_tunelab_cache()


def stage_tokens(stage: str, args: argparse.Namespace) -> list[int]:
    """The real tokens of each batch of a stage's run (tokenized by tunelab, which encodes as LLaMA-Factory does)."""
    from tunelab.config.load import load_config
    from tunelab.data.pipeline import build_data
    from tunelab.model.load import load_tokenizer, resolve

    config = load_config(config_of(stage), [f"dataset_dir={args.data}", f"output_dir={args.workdir / 'unused'}"])
    tokenizer = load_tokenizer(resolve(config.model.model_name_or_path).path, config.data.template)
    train = build_data(config.data, tokenizer, config.train.seed, stage).train
    if len(train) < args.steps * BATCH:
        sys.exit(f"bench: {stage} has {len(train)} examples; {args.steps} steps of {BATCH} need {args.steps * BATCH}")
    rows = train.select(range(args.steps * BATCH))
    lengths = [sum(len(row[column]) for column in COLUMNS[stage]) for row in rows]
    return [sum(lengths[i:i + BATCH]) for i in range(0, len(lengths), BATCH)]


def lf_settings(stage: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """LLaMA-Factory's config for a stage: bench_train.py's LoRA workload with the stage, its data and keys."""
    settings = bench_train.lf_config("lora", args, out)
    settings.update({"stage": stage, "dataset": DATASETS[stage], "learning_rate": 1e-4, **LF_KEYS[stage]})
    if args.float32:
        settings["bf16"] = False
    return settings


def grpo_run(name: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """One tunelab grpo run after the quiet-machine wait: answers sampled per second and generated tokens per
    second over the training steps (sampling, rewards and the update together), from run.jsonl."""
    import yaml

    print(f"bench: {name} ...", flush=True)
    out = args.workdir / name
    shutil.rmtree(out, ignore_errors=True)
    quiet = bench_sft.wait_for_quiet(args.quiet_wait, args.quiet_load)
    run = bench_sft.run_tunelab(out, args, env, None, config_of("grpo"))
    run.update(name=name, mode="grpo", before=quiet, tunelab_git=bench_sft.git_revision())
    if run["ok"]:
        settings = yaml.safe_load(config_of("grpo").read_text())
        per_step = settings["per_device_train_batch_size"] * settings["num_generations"]
        records = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
        steps = [r for r in records if "completion_length" in r]
        train_s = sum(run["step_times_s"])
        run.update(train_s=train_s, completions=per_step * len(steps), samples_per_s=per_step * len(steps) / train_s,
                   generated_tokens_per_s=sum(r["completion_length"] * per_step for r in steps) / train_s,
                   mean_step_s=statistics.mean(run["step_times_s"]), rewards=[r.get("reward") for r in steps])
        run.pop("first_log", None)
    print(f"bench: {name} " + (f"{run['samples_per_s']:.3g} answers/s, {run['generated_tokens_per_s']:.1f} generated "
                               f"tokens/s, peak RSS {run['peak_rss_mib_wait4']:,.0f} MiB" if run["ok"]
                               else f"FAILED rc {run['rc']}, log {run['log']}"), flush=True)
    return run


def grpo_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the grpo runs."""
    ok = [r for r in runs if r["mode"] == "grpo" and r["ok"]]
    keys = ("samples_per_s", "generated_tokens_per_s", "mean_step_s", "startup_s", "peak_rss_mib_wait4")
    return {"tunelab": {k: statistics.median(r[k] for r in ok) for k in keys}} if ok else {}


def grpo_lines(result: dict[str, Any]) -> list[str]:
    """The grpo section of the page: its runs and medians."""
    lines = ["## grpo (tunelab only; 2 prompts x 4 sampled answers per step)", "",
             f"Workload: {result['grpo_workload']}.", "",
             "| run | answers/s | generated tokens/s | mean step s | start-up s | peak RSS MiB | other load |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in [r for r in result["runs"] if r["mode"] == "grpo"]:
        lines.append(f"| {r['name']} | {r['samples_per_s']:.3g} | {r['generated_tokens_per_s']:.1f} | "
                     f"{r['mean_step_s']:.2f} | {r['startup_s']:.1f} | {r['peak_rss_mib_wait4']:,.0f} | "
                     f"{100 * r['other_processes_cpu_share']:.0f}% |" if r["ok"]
                     else f"| {r['name']} | FAILED (rc {r['rc']}, see {r['log']}) | | | | | |")
    m = result["summary"]["grpo"].get("tunelab")
    if m:
        lines.append(f"| **median** | **{m['samples_per_s']:.3g}** | {m['generated_tokens_per_s']:.1f} | "
                     f"{m['mean_step_s']:.2f} | {m['startup_s']:.1f} | {m['peak_rss_mib_wait4']:,.0f} | |")
    return lines + [""]


def on_data_tokens(run: dict[str, Any], tokens: list[int]) -> dict[str, Any]:
    """A tunelab run's figures on the data's token counts (its own kept as own_step_tokens when they differ), so
    both systems' tokens/s count the same tokens."""
    if run["ok"] and run["system"] == "tunelab" and run["step_tokens"] != tokens:
        run["own_step_tokens"], run["step_tokens"] = run["step_tokens"], tokens
        figures(run)
    return run


def markdown(result: dict[str, Any]) -> str:
    """The results page: per stage the table, the ratio and the loss agreement; then the machine."""
    m = result["machine"]
    lines = [f"# Preference training speed: tunelab vs LLaMA-Factory 0.9.5 ({result['date']})", "",
             f"Workload: {result['workload']}", "",
             f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, avx512_bf16={m['avx512_bf16']}, "
             f"AMX={m['amx_bf16']}, {m['memory_gib']} GiB; torch {m['torch']} ({m['torch_threads']} threads), "
             f"transformers {m['versions']['transformers']}, peft {m['versions']['peft']}; LLaMA-Factory "
             f"{result['lf_versions']}; tunelab {m['versions']['tunelab']} at "
             f"{', '.join(sorted({str(r.get('tunelab_git')) for r in result['runs']}))}.", ""]
    for stage in result["stages"]:
        if stage == "grpo":
            lines += grpo_lines(result)
            continue
        s = result["summary"][stage]
        runs = [r for r in result["runs"] if r["mode"] == stage]
        lines += [f"## {stage} ({result['batch_unit'][stage]})", "", table(runs, s, SYSTEMS, polled=False), ""]
        if "ratio_tunelab_over_lf" in s:
            r = s["ratio_tunelab_over_lf"]
            lines += [f"**tunelab / LLaMA-Factory, median real tokens/s: {r['tokens_per_s']:.2f}x** (steps 2-N: "
                      f"{r['tokens_per_s_after_step1']:.2f}x; peak RSS {r['peak_rss_mib_wait4']:.2f}x).", ""]
            pairs = "; ".join(f"{k}: max {v['max_abs']:.4f}, mean {v['mean_abs']:.4f}, step 1 {v['step1_abs']:.4f}"
                              for k, v in s["loss_agreement"].items())
            lines += [f"Per-step loss ({'agree' if s['loss_agree'] else 'DIFFER'} within {result['loss_tol']}): "
                      f"{pairs}.", ""]
        mismatched = [r["name"] for r in runs if r["system"] == "tunelab" and r["ok"] and not r["batches_match_data"]]
        if mismatched:
            lines += [f"Note: tunelab's own token count differs from the data's in {', '.join(mismatched)} "
                      "(tokens/s uses the data's count for both systems).", ""]
    noisy = [r["name"] for r in result["runs"] if r.get("other_processes_cpu_share", 0) >= result["noisy_share"]]
    if noisy:
        lines += [f"WARNING: other processes used {100 * result['noisy_share']:.0f}% or more of the CPUs during "
                  f"{', '.join(noisy)}; those figures are disturbed.", ""]
    if result.get("note"):
        lines += [f"Note: {result['note']}", ""]
    lines += ["How to read: real tokens/s = the non-padding tokens each system forwards for the batches (dpo, rm: "
              "the chosen and the rejected sequence of each pair; kto: each row and its KL partner; computed from "
              "the data, the same for both) / the sum of the step times (LLaMA-Factory: Trainer step begin to step "
              "end, from a callback; tunelab: run.jsonl elapsed_s deltas). Both also run the reference model "
              "(dpo, kto: the base weights with the adapter disabled) inside each step. Peak RSS: wait4 of the "
              "process.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Prepare, run both systems alternately per stage, write and print the results."""
    args = parse_args(argv)
    prepare(args)
    tokens = {stage: stage_tokens(stage, args) for stage in args.stages if stage != "grpo"}
    for stage, counts in tokens.items():
        print(f"bench: {stage}: {args.steps} steps x {BATCH} = {sum(counts):,} real tokens", flush=True)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "lf_train_timed.py").write_text(bench_train.LF_WRAPPER)
    info = machine()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "DISABLE_VERSION_CHECK": "1"}
    runs = []
    for i in range(1, args.rounds + 1):
        if "grpo" in args.stages:
            runs.append(grpo_run(f"grpo-tunelab-{i}", args, env))
        for stage in [s for s in args.stages if s != "grpo"]:
            order = ("llamafactory", "tunelab") if i % 2 else ("tunelab", "llamafactory")
            for system in order:
                name = f"{stage}-{'lf' if system == 'llamafactory' else 'tunelab'}-{i}"
                run = bench_train.one_run(system, stage, name, args, env, tokens[stage],
                                          config_of(stage, args.float32, args.workdir),
                                          lambda out, stage=stage: lf_settings(stage, args, out))
                runs.append(on_data_tokens(run, tokens[stage]))
    date = datetime.date.today().isoformat()
    result = {
        "date": date, "machine": info, "lf_versions": bench_train.lf_versions(args.lf_python),
        "noisy_share": args.noisy, "loss_tol": args.loss_tol, "stages": args.stages,
        "workload": (f"SmolLM2-135M-Instruct, LoRA r=8 alpha 16 dropout 0 on all linear layers, batch {BATCH}, "
                     f"grad-acc 1, {args.steps} steps in file order, cutoff 1024, lr 1e-4 linear without warmup, "
                     f"seed 42, {'float32 (bf16 off)' if args.float32 else 'bf16 autocast'} on the CPU; pairs of 200-500 tokens a side (make_pref_data.py); dpo: "
                     "sigmoid loss, beta 0.1; kto: beta 0.1; each system at its defaults otherwise "
                     f"(LLaMA-Factory: gradient checkpointing on); {args.rounds} alternating runs per system and "
                     "stage"),
        "batch_unit": {"dpo": "4 pairs per step", "rm": "4 pairs per step", "kto": "4 rows (+ KL partners) per step"},
        "grpo_workload": "tunelab only: bench/pref_grpo.yaml, the pairs' prompts, 2 prompts x 4 answers of up to 128 "
                         "new tokens per step, a length reward (80 words)",
        "batch_real_tokens": tokens, "runs": runs, "note": args.note,
        "summary": {stage: grpo_summary(runs) if stage == "grpo" else bench_train.summarise(runs, stage, None,
                                                                                             args.loss_tol)
                    for stage in args.stages},
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"pref_{date}{'_fp32' if args.float32 else ''}"
    (args.results / f"{stem}.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (args.results / f"{stem}.md").write_text(text)
    print(text)
    print(f"bench: wrote {args.results / stem}.json and .md")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
