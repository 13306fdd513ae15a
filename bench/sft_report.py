"""The figures and the markdown page of bench_sft.py: medians, ratios, loss agreement, the table."""

from __future__ import annotations

import statistics
from typing import Any

FLOP_PER_TOKEN = 601e6  # LoRA SFT of SmolLM2-135M, per real token: the shared baselines README's figure


def loss_agreement(runs: list[dict[str, Any]], tol: float) -> dict[str, Any]:
    """Per-step loss differences: tunelab vs HF for every pair, and run to run within each system."""
    by = {s: [r for r in runs if r["system"] == s and r["ok"]] for s in ("tunelab", "hf_peft")}

    def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        """Absolute and relative per-step loss differences of two runs."""
        d = [abs(x - y) for x, y in zip(a["losses"], b["losses"])]
        return {"max_abs": max(d), "mean_abs": statistics.mean(d), "step1_abs": d[0],
                "max_rel": max(x / y for x, y in zip(d, b["losses"]))}

    cross = {f"{a['name']} vs {b['name']}": diff(a, b) for a in by["tunelab"] for b in by["hf_peft"]}
    within = {f"{a['name']} vs {b['name']}": diff(a, b) for s in by for i, a in enumerate(by[s])
              for b in by[s][i + 1:]}
    worst = max((v["max_abs"] for v in cross.values()), default=None)
    return {"tunelab_vs_hf": cross, "run_to_run": within, "max_abs_tunelab_vs_hf": worst, "tolerance": tol,
            "agree": worst is not None and worst <= tol}


def summarise(runs: list[dict[str, Any]], gemm: dict[str, Any] | None) -> dict[str, Any]:
    """Medians per system, the tunelab/HF ratio and model FLOPs utilisation."""
    out: dict[str, Any] = {}
    for system in ("tunelab", "hf_peft"):
        ok = [r for r in runs if r["system"] == system and r["ok"]]
        if not ok:
            continue
        med = {k: statistics.median(r[k] for r in ok) for k in
               ("tokens_per_s", "tokens_per_s_after_step1", "mean_step_s", "startup_s",
                "peak_rss_mib_wait4", "peak_rss_mib_tree_polled", "final_loss")}
        if gemm:
            rate = gemm["model_gemm_gflops_bf16"]["mean"] * 1e9
            med["mfu_vs_bf16_gemm"] = med["tokens_per_s"] * FLOP_PER_TOKEN / rate
        out[system] = med
    if "tunelab" in out and "hf_peft" in out:
        out["ratio_tunelab_over_hf"] = {k: out["tunelab"][k] / out["hf_peft"][k] for k in
                                        ("tokens_per_s", "tokens_per_s_after_step1", "startup_s",
                                         "peak_rss_mib_wait4")}
    return out


def rss(figures: dict[str, Any], polled: bool) -> str:
    """The peak-RSS cell: wait4's figure, and the polled process tree's when the benchmark polled it."""
    cell = f"{figures['peak_rss_mib_wait4']:,.0f}"
    return f"{cell} / {figures['peak_rss_mib_tree_polled']:,.0f}" if polled else cell


def table(runs: list[dict[str, Any]], summary: dict[str, Any],
          systems: tuple[tuple[str, str], ...] = (("tunelab", "tunelab median"), ("hf_peft", "HF+PEFT median")),
          polled: bool = True) -> str:
    """The markdown table of every run, then the medians of each (system, label) of systems."""
    rss_head = "peak RSS MiB (wait4 / polled tree)" if polled else "peak RSS MiB"
    head = (f"| run | real tokens/s | tokens/s (steps 2-N) | mean step s | start-up s | {rss_head} | final loss "
            "| other load |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [head]
    for r in runs:
        if not r["ok"]:
            rows.append(f"| {r['name']} | FAILED (rc {r['rc']}, see {r['log']}) | | | | | | |")
            continue
        rows.append(f"| {r['name']} | {r['tokens_per_s']:.1f} | {r['tokens_per_s_after_step1']:.1f} | "
                    f"{r['mean_step_s']:.2f} | {r['startup_s']:.1f} | {rss(r, polled)} | {r['final_loss']:.4f} | "
                    f"{100 * r['other_processes_cpu_share']:.0f}% |")
    for system, label in systems:
        if system in summary:
            m = summary[system]
            rows.append(f"| **{label}** | **{m['tokens_per_s']:.1f}** | {m['tokens_per_s_after_step1']:.1f} | "
                        f"{m['mean_step_s']:.2f} | {m['startup_s']:.1f} | {rss(m, polled)} | {m['final_loss']:.4f} | |")
    return "\n".join(rows)


def revisions(runs: list[dict[str, Any]]) -> str:
    """The tunelab commit the runs measured; a warning when it changed between runs."""
    seen = sorted({str(r.get("tunelab_git")) for r in runs})
    if len(seen) == 1:
        return seen[0]
    return "DIFFERENT commits: " + ", ".join(f"{r['name']} {r.get('tunelab_git')}" for r in runs)


def markdown(result: dict[str, Any]) -> str:
    """The results page: workload, table, ratio, loss agreement, GEMM rate and MFU, machine."""
    m, s, la, g = result["machine"], result["summary"], result["loss_agreement"], result["matmul"]
    lines = [f"# LoRA SFT speed: tunelab vs plain HF Trainer + PEFT ({result['date']})", "",
             f"Workload: {result['workload']}", "",
             f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, avx512_bf16={m['avx512_bf16']}, "
             f"amx={m['amx_bf16']}, {m['memory_gib']} GiB; torch {m['torch']} ({m['torch_threads']} threads), "
             f"transformers {m['versions']['transformers']}, peft {m['versions']['peft']}; "
             f"tunelab {m['versions']['tunelab']} at {revisions(result['runs'])}.", "",
             table(result["runs"], s), ""]
    if "ratio_tunelab_over_hf" in s:
        r = s["ratio_tunelab_over_hf"]
        lines += [f"**tunelab / HF, median real tokens/s: {r['tokens_per_s']:.3f}** "
                  f"(steps 2-N only: {r['tokens_per_s_after_step1']:.3f}; start-up {r['startup_s']:.2f}x, "
                  f"peak RSS {r['peak_rss_mib_wait4']:.2f}x).", ""]
    if la["max_abs_tunelab_vs_hf"] is not None:
        pairs = "; ".join(f"{k}: max {v['max_abs']:.4f}, mean {v['mean_abs']:.4f}, step 1 {v['step1_abs']:.4f}"
                          for k, v in la["tunelab_vs_hf"].items())
        within = "; ".join(f"{k}: max {v['max_abs']:.4f}" for k, v in la["run_to_run"].items()) or "n/a"
        verdict = "agree" if la["agree"] else "DIFFER"
        lines += [f"Per-step loss, tunelab vs HF ({verdict} within {la['tolerance']}): {pairs}.",
                  f"Run to run within a system: {within}.", ""]
    if g:
        gb = g["model_gemm_gflops_bf16"]
        mfu = "; ".join(f"{k} {100 * s[k]['mfu_vs_bf16_gemm']:.1f}%" for k in ("tunelab", "hf_peft")
                        if k in s and "mfu_vs_bf16_gemm" in s[k])
        lines += [f"bf16 GEMM rate at the model's shapes (matmul_bench.py, {g['threads']} threads): "
                  f"mean {gb['mean']:,.0f} GFLOP/s, best {gb['best']:,.0f} (fp32 mean "
                  f"{g['model_gemm_gflops_fp32']['mean']:,.0f}). Model FLOPs utilisation at "
                  f"{FLOP_PER_TOKEN / 1e6:.0f} MFLOP per real token (the shared baselines README's figure), "
                  f"median tokens/s against the mean bf16 rate: {mfu}.", ""]
    noisy = [r["name"] for r in result["runs"] if r.get("other_processes_cpu_share", 0) >= result["noisy_share"]]
    if noisy:
        lines += [f"WARNING: other processes used {100 * result['noisy_share']:.0f}% or more of the CPUs "
                  f"during {', '.join(noisy)}; those figures are disturbed.", ""]
    dropped = result.get("discarded_disturbed_runs") or []
    if dropped:
        lines += [f"Discarded and repeated because other processes took the CPUs: {len(dropped)} attempts ("
                  + ", ".join(f"{r['name']} {100 * r['other_processes_cpu_share']:.0f}%" for r in dropped) + ").", ""]
    if result.get("note"):
        lines += [f"Note: {result['note']}", ""]
    lines += ["How to read: real tokens/s = non-padding tokens of the training batches / the sum of the step "
              "times (HF: Trainer step begin to step end; tunelab: run.jsonl elapsed_s deltas). Start-up = "
              "process launch to the start of training. 'other load' = CPU share used by other processes during "
              "the run (noise). Compare ratios, not absolute figures, across machines.", ""]
    return "\n".join(lines)
