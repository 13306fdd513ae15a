#!/usr/bin/env python
"""Export speed: `tunelab export` against LLaMA-Factory 0.9.5's `llamafactory-cli export` + llama.cpp's
`convert_hf_to_gguf.py`, same base, same adapter, alternating runs.

Per round, each step runs as its own process, tunelab first in odd rounds and last in even ones:

- merge: `tunelab export CONFIG export_dir=...` (with its default check against base + adapter, and again with
  `export_verify=false`, the same work as LLaMA-Factory's) vs `llamafactory-cli export` (export_size 5,
  export_device cpu, export_legacy_format false); both save float32, the base's dtype;
- GGUF, per --types (f16, q8_0): `tunelab export ... export_format=gguf gguf_type=T export_verify=false` (merge +
  GGUF in one command; the check's cost is the merge rows' difference, --gguf-verify keeps it on) vs
  `convert_hf_to_gguf.py --outtype T` on LLaMA-Factory's merged folder of the same round. The page gives the
  convert step alone and LLaMA-Factory's merge + convert (times added, peak memory the larger of the two).

Per run: wall time of the process (start-up included), peak RSS (wait4, and the process tree polled every 0.2 s),
the CPU share other processes took meanwhile, and the size of what was written. Afterwards the GGUF files of
both systems are compared (tensor names, types, shapes and bytes; metadata keys and values).
Writes bench/results/export_<date>.{md,json}.

Usage: python bench/bench_export.py --rounds 2 [--lf-cli /tmp/lf-venv/bin/llamafactory-cli]
       [--convert-python /tmp/convert-venv/bin/python --convert-script .../convert_hf_to_gguf.py]
Never run as a test: about 20-30 minutes on 2 cores.
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
import textwrap
from pathlib import Path
from typing import Any, Callable

from bench_predict import locked_launch
from bench_sft import REPO, machine
from export_common import (compare_gguf, ensure_adapter, export_config, gguf_file, resolve_model, run_export,
                           tunelab_revision)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="runs of each step and system, alternating (default 2)")
    ap.add_argument("--types", default="f16,q8_0", help="GGUF types (comma list, default f16,q8_0)")
    ap.add_argument("--model", type=Path, default=None, help="HF folder of the base (default: tunelab's cache)")
    ap.add_argument("--adapter", type=Path, default=Path("/tmp/bench/export/adapter"),
                    help="LoRA adapter folder; a seeded random one is written there if missing")
    ap.add_argument("--lf-cli", type=Path, default=Path("/tmp/lf-venv/bin/llamafactory-cli"))
    ap.add_argument("--convert-python", type=Path, default=Path("/tmp/convert-venv/bin/python"),
                    help="python with torch, transformers, sentencepiece and llama.cpp's gguf-py")
    ap.add_argument("--convert-script", type=Path, default=Path("/tmp/llama-cpp-vendor/convert_hf_to_gguf.py"),
                    help="llama.cpp's convert_hf_to_gguf.py (from the llama-cpp-python sdist's vendor/llama.cpp)")
    ap.add_argument("--llama-python", type=Path, default=Path("/tmp/llama-venv/bin/python"),
                    help="python of llama-cpp-python's venv (only its version is read: the sdist the script came from)")
    ap.add_argument("--no-verify-runs", action="store_true", help="skip the export_verify=false merge runs")
    ap.add_argument("--no-checked-merge", action="store_true",
                    help="skip the default merge runs (tunelab's check on), e.g. on a machine too busy for them")
    ap.add_argument("--gguf-verify", action="store_true",
                    help="GGUF runs with tunelab's check against base + adapter on (default off, like the other side)")
    ap.add_argument("--append", action="store_true",
                    help="add this session's runs to today's results file instead of replacing it (e.g. --types none "
                         "--no-verify-runs: only the default merge runs, as a second session)")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: derive the summary and the page again from today's results JSON")
    ap.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for idle CPUs before a run")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench/export/speed"))
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    return ap.parse_args(argv)


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under folder (0 when it is missing)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def lf_config(path: Path, model: Path, adapter: Path, export_dir: Path) -> Path:
    """LLaMA-Factory's export YAML for one run."""
    path.write_text(textwrap.dedent(f"""\
        model_name_or_path: {model}
        adapter_name_or_path: {adapter}
        template: smollm2
        finetuning_type: lora
        export_dir: {export_dir}
        export_size: 5
        export_device: cpu
        export_legacy_format: false
        """))
    return path


def measured(step: str, system: str, rnd: int, out: Path, run: dict[str, Any]) -> dict[str, Any]:
    """One run's record (the figures that matter first), printed as one line."""
    rec = {"step": step, "system": system, "round": rnd, "ok": run["rc"] == 0, "wall_s": run["wall_s"],
           "peak_rss_mib_wait4": run["peak_rss_mib_wait4"], "peak_rss_mib_tree": run["peak_rss_mib_tree_polled"],
           "other_load": run["other_processes_cpu_share"], "output": str(out), "output_bytes": folder_bytes(out),
           "child_cpu_s": run["child_cpu_s"], "log": run["log"], "cmd": run["cmd"]}
    print(f"bench: {step:<10} {system:<22} round {rnd}: " + (
        f"{rec['wall_s']:6.1f} s, peak RSS {rec['peak_rss_mib_wait4']:6.0f} MiB, other load "
        f"{100 * rec['other_load']:.0f}%" if rec["ok"] else f"FAILED rc {run['rc']}, log {run['log']}"), flush=True)
    return rec


def one_round(rnd: int, args: argparse.Namespace, config: Path, model: Path, adapter: Path,
              done: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    """Every step of one round, the two systems alternating (tunelab first in odd rounds); done(runs) after each."""
    w, runs = args.workdir, []

    def tunelab(step: str, name: str, **keys: str) -> dict[str, Any]:
        out = w / f"{name}-{rnd}"
        return measured(step, name, rnd, out, run_export(config, out, w / f"{name}-{rnd}.log", args.quiet_wait,
                                                         **keys))

    def llamafactory() -> dict[str, Any]:
        out = w / f"lf-merge-{rnd}"
        shutil.rmtree(out, ignore_errors=True)
        cfg = lf_config(w / f"lf-merge-{rnd}.yaml", model, adapter, out)
        run = locked_launch([str(args.lf_cli), "export", str(cfg)], w / f"lf-merge-{rnd}.log", args.quiet_wait,
                            retries=0)
        return measured("merge", "llamafactory", rnd, out, run)

    def convert(gtype: str) -> dict[str, Any]:
        out = w / f"lf-gguf-{gtype}-{rnd}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        cmd = [str(args.convert_python), str(args.convert_script), str(w / f"lf-merge-{rnd}"), "--outtype", gtype,
               "--outfile", str(out / f"model-{gtype}.gguf")]
        run = locked_launch(cmd, w / f"lf-gguf-{gtype}-{rnd}.log", args.quiet_wait, retries=0)
        return measured(f"gguf-{gtype}", "convert_hf_to_gguf", rnd, out, run)

    pairs = [(None if args.no_checked_merge else (lambda: tunelab("merge", "tunelab")), llamafactory)]
    if not args.no_verify_runs:
        pairs.append((lambda: tunelab("merge", "tunelab-noverify", export_verify="false"), None))
    for gtype in [] if args.types == "none" else args.types.split(","):
        check = {} if args.gguf_verify else {"export_verify": "false"}
        pairs.append((lambda g=gtype, c=check: tunelab(f"gguf-{g}", f"tunelab-gguf-{g}", export_format="gguf",
                                                       gguf_type=g, **c), lambda g=gtype: convert(g)))
    for ours, theirs in pairs:
        for f in ([ours, theirs] if rnd % 2 else [theirs, ours]):
            if f is not None:
                runs.append(f())
                done(runs)
    return runs


def pick(runs: list[dict[str, Any]], step: str, system: str) -> dict[tuple[int, int], dict[str, Any]]:
    """The successful runs of one step and system, by (session, round)."""
    return {(r.get("session", 1), r["round"]): r for r in runs if r["step"] == step and r["system"] == system
            and r["ok"]}


def summary(runs: list[dict[str, Any]], types: list[str]) -> list[dict[str, Any]]:
    """Per comparison, over the rounds where both sides ran (pairs of neighbouring runs, so under the same load):
    each side's median time and peak RSS, and the median of the per-round tunelab/other ratios."""
    rows = []

    def row(what: str, ours: str, step: str, theirs: list[tuple[str, str]]) -> None:
        mine, others = pick(runs, step, ours), [pick(runs, s, n) for s, n in theirs]
        rounds = sorted(k for k in mine if all(k in o for o in others))
        if not rounds:
            rows.append({"what": what, "missing": True})
            return
        t_s = [mine[k]["wall_s"] for k in rounds]
        t_rss = [mine[k]["peak_rss_mib_wait4"] for k in rounds]
        o_s = [sum(o[k]["wall_s"] for o in others) for k in rounds]  # other side: steps added, peak the larger
        o_rss = [max(o[k]["peak_rss_mib_wait4"] for o in others) for k in rounds]
        rows.append({"what": what, "pairs": len(rounds), "tunelab_s": statistics.median(t_s),
                     "other_s": statistics.median(o_s), "tunelab_rss_mib": statistics.median(t_rss),
                     "other_rss_mib": statistics.median(o_rss),
                     "time_ratio": statistics.median(a / b for a, b in zip(t_s, o_s, strict=True)),
                     "time_ratios": [a / b for a, b in zip(t_s, o_s, strict=True)],
                     "rss_ratio": statistics.median(a / b for a, b in zip(t_rss, o_rss, strict=True))})

    row("merge (tunelab with its check) vs llamafactory-cli export", "tunelab", "merge", [("merge", "llamafactory")])
    row("merge (tunelab export_verify=false) vs llamafactory-cli export", "tunelab-noverify", "merge",
        [("merge", "llamafactory")])
    for g in types:
        row(f"GGUF {g}: tunelab export (merge + GGUF) vs convert_hf_to_gguf.py alone", f"tunelab-gguf-{g}",
            f"gguf-{g}", [(f"gguf-{g}", "convert_hf_to_gguf")])
        row(f"GGUF {g}: tunelab export (merge + GGUF) vs llamafactory-cli export + convert_hf_to_gguf.py",
            f"tunelab-gguf-{g}", f"gguf-{g}", [("merge", "llamafactory"), (f"gguf-{g}", "convert_hf_to_gguf")])
    return rows


def markdown(result: dict[str, Any]) -> str:
    """The results page."""
    m, v = result["machine"], result["versions"]
    unit = "AMX" if m["amx_bf16"] else ("AVX512-BF16 only, no AMX" if m["avx512_bf16"] else "no bf16 units")
    lines = [f"# Export speed: tunelab vs LLaMA-Factory + llama.cpp's converter, {result['date']}", "",
             f"Machine: {m['cpu_model']}, {m['logical_cpus']} CPUs ({unit}), {m['memory_gib']} GiB; shared with "
             "other work, so read the ratios of alternating runs, not absolute seconds (other load per run below).",
             f"Versions: tunelab {result['tunelab_git']}, torch {m['torch']}, transformers "
             f"{m['versions'].get('transformers')}; LLaMA-Factory {v['llamafactory']} (transformers "
             f"{v['lf_transformers']}); convert_hf_to_gguf.py from llama-cpp-python {v['llama_cpp_python_sdist']} "
             f"(gguf-py {v['convert_gguf']}, transformers {v['convert_transformers']}).",
             f"Workload: SmolLM2-135M-Instruct (float32) + {result['adapter_note']}; "
             + (f"{result['sessions']} sessions (column 'session'), " if result.get("sessions", 1) > 1 else "")
             + "each step as its own process, tunelab first in odd rounds. Times are whole processes (start-up "
             "included); peak RSS is wait4's (the largest process). tunelab's GGUF runs "
             + ("keep its check against base + adapter on." if result["gguf_verify"] else
                "turn its check against base + adapter off (`export_verify=false`), as the other side has none; "
                "the merge rows show the check's cost.") + " llama.cpp's converter runs with transformers "
             f"{v['convert_transformers']}: its requirements pin 4.57.6, which cannot read the tokenizer_config.json "
             "that LLaMA-Factory's transformers 5 writes (`TokenizersBackend`).", "",
             "| comparison | pairs | tunelab s | other s | time tunelab/other (per pair) | tunelab peak MiB | "
             "other peak MiB | memory tunelab/other |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["summary"]:
        if r.get("missing"):
            lines.append(f"| {r['what']} | 0 | | | | | | |")
            continue
        pairs = ", ".join(f"{x:.2f}" for x in r["time_ratios"])
        lines.append(f"| {r['what']} | {r['pairs']} | {r['tunelab_s']:.1f} | {r['other_s']:.1f} | "
                     f"**{r['time_ratio']:.2f}** ({pairs}) | "
                     f"{r['tunelab_rss_mib']:.0f} | {r['other_rss_mib']:.0f} | **{r['rss_ratio']:.2f}** |")
    lines += ["", "Pairs: the rounds in which both sides ran, one after the other; figures are medians over them, the "
              "ratio the median of the per-pair ratios (each pair under the same load). Below 1: tunelab is faster "
              "/ smaller.", "",
              "## Runs", "", "| step | system | session | round | wall s | peak RSS MiB (wait4) | tree MiB (polled) | "
              "other load | output MiB |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["runs"]:
        lines.append(f"| {r['step']} | {r['system']} | {r.get('session', 1)} | {r['round']} | " + (
            f"{r['wall_s']:.1f} | {r['peak_rss_mib_wait4']:.0f} | {r['peak_rss_mib_tree']:.0f} | "
            f"{100 * r['other_load']:.0f}% | {r['output_bytes'] / 2**20:.1f} |" if r["ok"] else "FAILED | | | | |"))
    lines += ["", "## Do the two GGUF files agree?", ""]
    for g, c in result["gguf_agreement"].items():
        lines += gguf_lines(g, c)
    return "\n".join(lines) + "\n"


def gguf_lines(gtype: str, c: dict[str, Any]) -> list[str]:
    """The agreement paragraph of one GGUF type (tunelab's file first, convert_hf_to_gguf.py's second)."""
    if "error" in c:
        return [f"- **{gtype}**: not compared ({c['error']})"]
    same = (f"{c['tensors_bitwise_equal']} of {c['tensors'][0]} tensors byte-identical"
            f"{'' if not c['tensors_data_differ_max_abs'] else ', differing (max abs after dequantizing): '}"
            + ", ".join(f"`{n}` {d:.3g}" for n, d in list(c["tensors_data_differ_max_abs"].items())[:8])
            + (" ..." if len(c["tensors_data_differ_max_abs"]) > 8 else ""))
    out = [f"- **{gtype}**: sizes {c['sizes_bytes'][0] / 2**20:.1f} / {c['sizes_bytes'][1] / 2**20:.1f} MiB "
           f"(tunelab / convert_hf_to_gguf.py); tensors {c['tensors'][0]} / {c['tensors'][1]}; {same}.",
           f"  Tensor names only in tunelab's: {c['only_in_first'] or 'none'}; only in llama.cpp's: "
           f"{c['only_in_second'] or 'none'}; type or shape differs: {c['type_or_shape_differs'] or 'none'}.",
           f"  Metadata keys {c['metadata_keys'][0]} / {c['metadata_keys'][1]}; only in tunelab's: "
           f"{', '.join(c['metadata_only_in_first']) or 'none'}; only in llama.cpp's: "
           f"{', '.join(c['metadata_only_in_second']) or 'none'}."]
    for key, (a, b) in c["metadata_values_differ"].items():
        out.append(f"  - `{key}`: tunelab `{str(a)[:90]}` vs llama.cpp `{str(b)[:90]}`")
    return out


def versions(args: argparse.Namespace) -> dict[str, str | None]:
    """Versions of the other side's packages, read from their venvs."""
    def ask(python: Path, code: str) -> str | None:
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
        return proc.stdout.strip() or None

    lf_python = args.lf_cli.parent / "python"
    meta = "import importlib.metadata as m; print(m.version({!r}))"
    return {"llamafactory": ask(lf_python, meta.format("llamafactory")),
            "lf_transformers": ask(lf_python, meta.format("transformers")),
            "convert_gguf": ask(args.convert_python, meta.format("gguf")),
            "convert_transformers": ask(args.convert_python, meta.format("transformers")),
            "llama_cpp_python_sdist": ask(args.llama_python, meta.format("llama_cpp_python"))}

def main(argv: list[str] | None = None) -> int:
    """Prepare, run the rounds, compare the GGUF files, write the page."""
    args = parse_args(argv)
    if args.report_only:
        return report_only(args.results / f"export_{datetime.date.today().isoformat()}")
    os.environ.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    for exe in (args.lf_cli, args.convert_python, args.convert_script):
        if not exe.is_file():
            sys.exit(f"bench: {exe} is missing (see bench/README.md, 'Export benchmarks', for the set-up)")
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    model = resolve_model(args.model)
    adapter = ensure_adapter(args.adapter, model)
    config = export_config(args.workdir / "export.yaml", model, adapter)
    types = [] if args.types == "none" else args.types.split(",")
    runs: list[dict[str, Any]] = []
    partial = args.workdir / "runs_so_far.json"  # a long session that is cut short keeps its runs
    for rnd in range(1, args.rounds + 1):
        before = list(runs)
        runs += one_round(rnd, args, config, model, adapter, lambda new, old=before: partial.write_text(
            json.dumps(old + new, indent=1, default=str)))
    stem = args.results / f"export_{datetime.date.today().isoformat()}"
    earlier = json.loads(stem.with_suffix(".json").read_text()) if args.append and stem.with_suffix(
        ".json").is_file() else {"runs": [], "gguf_agreement": {}, "sessions": 0}
    session = earlier.get("sessions", 1) + 1
    for r in runs:
        r["session"] = session
    agreement = dict(earlier["gguf_agreement"])
    for g in types:
        try:
            agreement[g] = compare_gguf(gguf_file(args.workdir / f"tunelab-gguf-{g}-1"),
                                        gguf_file(args.workdir / f"lf-gguf-{g}-1"))
        except (SystemExit, OSError, ValueError) as exc:
            agreement[g] = {"error": str(exc)}
    runs = earlier["runs"] + runs
    result = {"date": datetime.date.today().isoformat(), "machine": machine(), "tunelab_git": tunelab_revision(),
              "versions": versions(args), "rounds": args.rounds, "gguf_verify": args.gguf_verify, "model": str(model),
              "adapter": str(adapter), "runs": runs, "sessions": session,
              "adapter_note": "a seeded random LoRA adapter (r 8, alpha 16, all linear layers, B ~ N(0, 0.004))",
              "summary": summary(runs, sorted(agreement) or types), "gguf_agreement": agreement}
    args.results.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0 if all(r["ok"] for r in runs) else 1


def report_only(stem: Path) -> int:
    """The summary and page again from a results JSON (after a change to how they are derived)."""
    result = json.loads(stem.with_suffix(".json").read_text())
    result["summary"] = summary(result["runs"], sorted(result["gguf_agreement"]))
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
