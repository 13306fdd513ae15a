"""Batch prediction speed: `tunelab predict` against LLaMA-Factory 0.9.5's `do_predict`, alternating runs.

Both systems answer the same 200 alpaca prompts (English and Chinese, a few tokens to a few hundred) with
SmolLM2-135M-Instruct, template smollm2, greedy, max_new_tokens 128, at each batch size of --batch-sizes.
Generated tokens are counted the same way for both: the `predict` texts of generated_predictions.jsonl
re-tokenised with the model's tokenizer. Seconds: LLaMA-Factory's predict_results.json `predict_runtime`,
tunelab's predict_report.json `seconds` (both: the generation loop, without start-up). Every run holds
/tmp/tunelab-bench.lock (other benchmarks on this machine take it too).

    /path/to/venv/bin/python bench/bench_predict.py                       # about 40-60 minutes on 2 cores
    /path/to/venv/bin/python bench/bench_predict.py --rows 16 --batch-sizes 4   # smoke test
    # each system at its best batch size, tunelab in bf16 and float32 (the bf16 speed-up and changed answers too)
    /path/to/venv/bin/python bench/bench_predict.py --batch-sizes 32 --lf-batch-sizes 8 --dtypes bfloat16,float32

tunelab runs `python -m tunelab` with this checkout's src/ first on PYTHONPATH (the code measured is this one's).
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from bench_sft import REPO, launch, machine, wait_for_quiet

LOCK = Path("/tmp/tunelab-bench.lock")
DATASET = "bench_prompts"
LF_TEMPLATE_CHECK = """
import json, sys
from transformers import AutoTokenizer
from llamafactory.data.template import get_template_and_fix_tokenizer
from llamafactory.hparams import DataArguments
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template="smollm2"))
out = [template.encode_oneturn(tokenizer, m)[0] for m in json.loads(sys.stdin.read())]
print(json.dumps(out))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,4,8,16", help="comma-separated per_device_eval_batch_size values")
    parser.add_argument("--lf-batch-sizes", default=None,
                        help="LLaMA-Factory's batch sizes when they differ from tunelab's (each at its best)")
    parser.add_argument("--dtypes", default="float32",
                        help="comma-separated infer_dtype values tunelab runs with (LLaMA-Factory: float32)")
    parser.add_argument("--shared", action="store_true",
                        help="the machine is shared: run at once, never stop a run because others use the CPUs")
    parser.add_argument("--rows", type=int, default=200, help="prompts in the dataset")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--lf-batch1-rows", type=int, default=0,
                        help="run LLaMA-Factory at batch 1 on only the first N rows (0: all rows)")
    parser.add_argument("--model", type=Path, default=Path("/tmp/models/smollm2-135m-instruct"),
                        help="the HF folder LLaMA-Factory loads (tunelab loads its alias, same weights)")
    parser.add_argument("--lf-cli", type=Path, default=Path("/tmp/lf-venv/bin/llamafactory-cli"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench/runs/bench_predict"))
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--quiet-wait", type=float, default=120.0, help="seconds to wait for idle CPUs before a run")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------- data

SHORT_EN = ["What is the capital of {}?", "Name three animals that live in {}.", "How do you say 'thank you' in {}?",
            "Give one fact about {}.", "In one word, what is the main language spoken in {}?"]
PLACES = ["France", "Japan", "Brazil", "Kenya", "Canada", "Egypt", "India", "Norway", "Mexico", "Australia", "Peru",
          "Italy"]
TOPICS = ["photosynthesis", "gravity", "inflation", "a black hole", "machine learning", "the water cycle",
          "democracy", "a prime number", "vaccination", "recursion", "the stock market", "climate change"]
MEDIUM_EN = ["Explain {} to a ten-year-old in three sentences.", "Write a short email inviting a colleague to a talk "
             "about {}.", "List the pros and cons of studying {} at university.", "Write a haiku about {}.",
             "What are common misconceptions about {}?"]
SHORT_ZH = ["{}的首都是哪里？", "请用一句话介绍{}。", "{}有什么著名的食物？", "去{}旅游需要注意什么？"]
PLACES_ZH = ["中国", "日本", "法国", "埃及", "巴西", "印度", "意大利", "加拿大"]
TOPICS_ZH = ["光合作用", "万有引力", "通货膨胀", "人工智能", "水循环", "疫苗", "气候变化", "区块链"]
ZH_SENTENCES = ["随着科技的不断发展，人们的生活方式发生了巨大的变化。", "越来越多的城市开始重视绿色交通和可持续发展。",
                "教育是一个国家长期发展的基础，需要全社会共同努力。", "在过去的十年里，移动互联网彻底改变了信息的传播方式。",
                "专家认为，合理的饮食和规律的运动是保持健康的关键。", "这项研究表明，睡眠质量与工作效率之间存在明显的联系。",
                "许多年轻人选择在大城市工作，但也面临着高房价的压力。", "传统文化在现代社会中依然发挥着重要的作用。",
                "政府出台了一系列政策来支持中小企业的发展。", "人工智能技术正在被广泛应用于医疗、交通和金融等领域。"]


def passages() -> list[str]:
    """English passages of 60 to 400 tokens: docstrings of the Python standard library."""
    import collections
    import json as json_module
    import os.path
    import shutil
    import subprocess as subprocess_module
    import textwrap as textwrap_module

    objects = [json_module.dumps, json_module.loads, os.path.join, os.path.normpath, shutil.copytree, shutil.rmtree,
               subprocess_module.run, subprocess_module.Popen, textwrap_module.wrap, textwrap_module.dedent,
               collections.OrderedDict, collections.Counter, collections.namedtuple, random.Random.sample,
               random.Random.choices, str.split, str.format, dict.setdefault, sorted, zip]
    texts = [" ".join((obj.__doc__ or "").split()) for obj in objects]
    return [t[:1600] for t in texts if len(t) > 200]


def prompt_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    """`count` alpaca rows: short and long, English and Chinese questions, in a shuffled (seeded) order."""
    rng = random.Random(seed)
    docs = passages()
    rows: list[dict[str, str]] = []
    kinds = ["short_en", "short_en", "medium_en", "long_en", "short_zh", "medium_zh", "long_zh"]
    for index in range(count):
        kind = kinds[index % len(kinds)]
        if kind == "short_en":
            row = {"instruction": rng.choice(SHORT_EN).format(rng.choice(PLACES)), "input": ""}
        elif kind == "medium_en":
            row = {"instruction": rng.choice(MEDIUM_EN).format(rng.choice(TOPICS)), "input": ""}
        elif kind == "long_en":
            row = {"instruction": rng.choice(["Summarize the following text in two sentences.",
                                              "What is the main point of this text?",
                                              "Write three questions a student could ask about this text."]),
                   "input": rng.choice(docs)}
        elif kind == "short_zh":
            row = {"instruction": rng.choice(SHORT_ZH).format(rng.choice(PLACES_ZH)), "input": ""}
        elif kind == "medium_zh":
            row = {"instruction": f"请简单解释一下{rng.choice(TOPICS_ZH)}是什么，并举一个例子。", "input": ""}
        else:
            row = {"instruction": rng.choice(["请用两句话总结下面这段文字。", "这段文字的主要观点是什么？"]),
                   "input": "".join(rng.choices(ZH_SENTENCES, k=rng.randint(3, 12)))}
        rows.append({**row, "output": "(reference answer)" if "_en" in kind else "（参考答案）"})
    rng.shuffle(rows)
    return rows


def write_dataset(folder: Path, count: int) -> list[dict[str, str]]:
    """The prompts as an alpaca file registered in folder/dataset_info.json."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = prompt_rows(count)
    (folder / f"{DATASET}.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    info = {DATASET: {"file_name": f"{DATASET}.json", "formatting": "alpaca"}}
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return rows


# ---------------------------------------------------------------------------------------------- runs

def locked_launch(cmd: list[str], log: Path, quiet_wait: float, retries: int = 2,
                  shared: bool = False) -> dict[str, Any]:
    """launch() holding the shared benchmark lock, after waiting for idle CPUs; repeated when others disturb it.

    With 2 threads on 2 cores, another busy process slows torch's small matmuls many times over (thread
    contention), so a run during which others take over 20% of the CPUs is stopped and repeated.
    """
    LOCK.touch(exist_ok=True)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", DISABLE_VERSION_CHECK="1")
    discarded = []
    with LOCK.open("r") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the same lock as `flock /tmp/tunelab-bench.lock`
        for attempt in range(retries + 1):
            quiet = wait_for_quiet(0.0 if shared else quiet_wait, 10.0)
            run = launch(cmd, log, env=env, abort_share=0.2 if attempt < retries and not shared else None)
            if not run["aborted_noisy"]:
                break
            discarded.append({**run, **quiet})
    return {**run, **quiet, "discarded_disturbed_runs": discarded}


def run_tunelab(out: Path, data: Path, batch: int, args: argparse.Namespace, dtype: str) -> dict[str, Any]:
    """One `tunelab predict` process; its seconds and token count from predict_report.json."""
    config = out.with_suffix(".yaml")
    config.write_text(textwrap.dedent(f"""\
        model_name_or_path: smollm2-135m-instruct
        template: smollm2
        eval_dataset: {DATASET}
        dataset_dir: {data}
        cutoff_len: 4096
        max_new_tokens: {args.max_new_tokens}
        do_sample: false
        per_device_eval_batch_size: {batch}
        infer_dtype: {dtype}
        output_dir: {out}
        """))
    # the interpreter of this venv with the repository's src first: the code measured is this checkout's
    env_path = f"PYTHONPATH={REPO / 'src'}"
    cmd = ["env", env_path, sys.executable, "-m", "tunelab", "predict", str(config)]
    run = locked_launch(cmd, out.with_suffix(".log"), args.quiet_wait, shared=args.shared)
    if run["rc"] != 0:
        return {"system": "tunelab", "dtype": dtype, "batch": batch, "ok": False, **run}
    report = json.loads((out / "predict_report.json").read_text())
    return {"system": "tunelab", "dtype": dtype, "batch": batch, "ok": True, "seconds": report["seconds"],
            "own_generated_tokens": report["generated_tokens"], "rows": report["written"], **run}


def run_lf(out: Path, data: Path, batch: int, args: argparse.Namespace, rows: int | None) -> dict[str, Any]:
    """One `llamafactory-cli train` do_predict process; its seconds from predict_results.json."""
    config = out.with_suffix(".yaml")
    config.write_text(textwrap.dedent(f"""\
        model_name_or_path: {args.model}
        stage: sft
        do_train: false
        do_predict: true
        predict_with_generate: true
        finetuning_type: full
        eval_dataset: {DATASET}
        dataset_dir: {data}
        template: smollm2
        cutoff_len: 4096
        max_new_tokens: {args.max_new_tokens}
        do_sample: false
        per_device_eval_batch_size: {batch}
        output_dir: {out}
        overwrite_output_dir: true
        report_to: none
        """) + (f"max_samples: {rows}\n" if rows else ""))
    run = locked_launch([str(args.lf_cli), "train", str(config)], out.with_suffix(".log"), args.quiet_wait,
                        shared=args.shared)
    if run["rc"] != 0:
        return {"system": "llamafactory", "dtype": "float32", "batch": batch, "ok": False, **run}
    results = json.loads((out / "predict_results.json").read_text())
    return {"system": "llamafactory", "dtype": "float32", "batch": batch, "ok": True,
            "seconds": results["predict_runtime"],
            "samples_per_s": results.get("predict_samples_per_second"), "rows": rows or args.rows, **run}


# ---------------------------------------------------------------------------------------------- figures

def predictions(out: Path, system: str) -> list[str]:
    """The `predict` texts in dataset order (tunelab writes longest prompts first; its ids give the row)."""
    lines = [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]
    if system == "tunelab":
        lines.sort(key=lambda r: int(r["id"].rsplit(":", 1)[1]))
    return [r["predict"] for r in lines]


def add_token_counts(run: dict[str, Any], out: Path, tokenizer: Any) -> list[str]:
    """Generated tokens (re-tokenised predictions, the same for both systems) and tokens/s, into run."""
    texts = predictions(out, run["system"])
    run["generated_tokens"] = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    run["tokens_per_s"] = run["generated_tokens"] / run["seconds"]
    return texts


def template_check(rows: list[dict[str, str]], tunelab_out: Path, args: argparse.Namespace,
                   tokenizer: Any) -> dict[str, Any]:
    """Do LLaMA-Factory's smollm2 template and tunelab's give the same prompt tokens? (rows 0, 1 and a long one)"""
    picks = [0, 1, max(range(len(rows)), key=lambda i: len(rows[i]["input"]))]
    messages = [[{"role": "user", "content": "\n".join(t for t in (rows[i]["instruction"], rows[i]["input"]) if t)},
                 {"role": "assistant", "content": rows[i]["output"]}] for i in picks]
    lf_python = args.lf_cli.parent / "python"
    proc = subprocess.run([str(lf_python), "-c", LF_TEMPLATE_CHECK, str(args.model)], input=json.dumps(messages),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"rows": picks, "error": proc.stderr[-1000:]}
    lf_ids = json.loads(proc.stdout.strip().splitlines()[-1])
    by_id = {int(r["id"].rsplit(":", 1)[1]): r["prompt"]
             for r in map(json.loads, (tunelab_out / "generated_predictions.jsonl").read_text().splitlines())}
    ours = [tokenizer(by_id[i + 1], add_special_tokens=False)["input_ids"] for i in picks]
    return {"rows": picks, "prompt_tokens": [len(i) for i in ours], "identical": [a == b for a, b in zip(lf_ids, ours)]}


def schedule(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(system, dtype, batch) runs, systems alternating: tunelab per dtype and batch, LLaMA-Factory per batch."""
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    lf_sizes = [int(s) for s in (args.lf_batch_sizes or args.batch_sizes).split(",")]
    ours = [("tunelab", dtype, batch) for batch in sizes for dtype in args.dtypes.split(",")]
    theirs = [("llamafactory", "float32", batch) for batch in lf_sizes]
    runs: list[tuple[str, str, int]] = []
    while ours or theirs:
        if ours:
            runs.append(ours.pop(0))
        if theirs:
            runs.append(theirs.pop(0))
    return runs


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, alternating systems, and write the results."""
    from transformers import AutoTokenizer

    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / "data"
    rows = write_dataset(data, args.rows)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    info = {"date": datetime.date.today().isoformat(), "machine": machine(), "args": {k: str(v) for k, v in
                                                                                     vars(args).items()}}
    runs, texts = [], {}
    for system, dtype, batch in schedule(args):
        out = args.workdir / f"{system}_{dtype}_b{batch}_{int(time.time())}"
        subset = args.lf_batch1_rows if system == "llamafactory" and batch == 1 and args.lf_batch1_rows else None
        print(f"bench: {system} {dtype} batch {batch}" + (f" (first {subset} rows)" if subset else ""), flush=True)
        run = (run_tunelab(out, data, batch, args, dtype) if system == "tunelab"
               else run_lf(out, data, batch, args, subset))
        if run["ok"]:
            texts[(f"{system}_{dtype}", batch)] = add_token_counts(run, out, tokenizer)
            print(f"bench:   {run['seconds']:.1f}s, {run['generated_tokens']} tokens, "
                  f"{run['tokens_per_s']:.1f} tokens/s, rss {run['peak_rss_mib_wait4']:.0f} MiB", flush=True)
        else:
            print(f"bench:   FAILED rc {run['rc']}; see {run['log']}", flush=True)
        run["out"] = str(out)
        runs.append(run)
        write_results(args, info, runs, texts, {})  # after every run: an interrupted sweep keeps its figures
    first_tunelab = next((r for r in runs if r["system"] == "tunelab" and r["ok"]), None)
    checks = template_check(rows, Path(first_tunelab["out"]), args, tokenizer) if first_tunelab else {}
    write_results(args, info, runs, texts, checks)
    return 0


def agreement(texts: dict[tuple[str, int], list[str]]) -> dict[str, Any]:
    """Identical greedy predictions between every two runs, per row (and after strip(): LLaMA-Factory keeps a
    trailing newline that tunelab strips)."""
    out: dict[str, Any] = {}
    keys = sorted(texts)
    for n, (label, batch) in enumerate(keys):
        for other, other_batch in keys[n + 1:]:
            ours, theirs = texts[(label, batch)], texts[(other, other_batch)]
            count = min(len(ours), len(theirs))
            same = sum(a == b for a, b in zip(ours[:count], theirs[:count]))
            stripped = sum(a.strip() == b.strip() for a, b in zip(ours[:count], theirs[:count]))
            out[f"{label}_b{batch}_vs_{other}_b{other_batch}"] = {"rows": count, "identical": same,
                                                                  "identical_after_strip": stripped}
    return out


def dtype_speedup(ok: list[dict[str, Any]]) -> dict[str, float]:
    """tunelab's bfloat16 tokens/s over its float32 tokens/s, per batch size where both ran."""
    speed = {(r["dtype"], r["batch"]): r["tokens_per_s"] for r in ok if r["system"] == "tunelab"}
    return {f"b{batch}": round(value / speed[("float32", batch)], 2) for (dtype, batch), value in speed.items()
            if dtype == "bfloat16" and ("float32", batch) in speed}


def write_results(args: argparse.Namespace, info: dict[str, Any], runs: list[dict[str, Any]],
                  texts: dict[tuple[str, int], list[str]], checks: dict[str, Any], notes: str = "") -> None:
    """bench/results/predict_<date>.json and .md."""
    ok = [r for r in runs if r["ok"]]
    best = {system: max((r for r in ok if r["system"] == system), key=lambda r: r["tokens_per_s"], default=None)
            for system in ("tunelab", "llamafactory")}
    ratio = (best["tunelab"]["tokens_per_s"] / best["llamafactory"]["tokens_per_s"]
             if best["tunelab"] and best["llamafactory"] else None)
    summary = {"best": {s: (r and {"batch": r["batch"], "dtype": r["dtype"],
                                   "tokens_per_s": round(r["tokens_per_s"], 1)})
                        for s, r in best.items()},
               "dtype_speedup": dtype_speedup(ok),
               "ratio_best_vs_best": ratio and round(ratio, 2), "template_check": checks,
               "agreement": agreement(texts), "notes": notes}
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"predict_{info['date']}"
    stem.with_suffix(".json").write_text(json.dumps({**info, "summary": summary, "runs": runs}, indent=2,
                                                    ensure_ascii=False, default=str))
    lines = ["# tunelab predict vs LLaMA-Factory 0.9.5 do_predict", "",
             f"{args.rows} prompts, SmolLM2-135M-Instruct, greedy, max_new_tokens {args.max_new_tokens}, "
             f"{info['machine']['cpu_model']}, {info['machine']['logical_cpus']} CPUs"
             + (" (shared with other work: see the other-load column)" if args.shared else ""), "",
             "| batch | system | dtype | rows | seconds | generated tokens | tokens/s | wall s | peak RSS MiB | "
             "other load |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in ok:  # in the order they ran
        lines.append(f"| {r['batch']} | {r['system']} | {r['dtype']} | {r['rows']} | {r['seconds']:.1f} | "
                     f"{r['generated_tokens']} | "
                     f"{r['tokens_per_s']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mib_wait4']:.0f} | "
                     f"{100 * r['other_processes_cpu_share']:.0f}% |")
    lines += ["", f"Best vs best: {json.dumps(summary['best'])}; ratio **{summary['ratio_best_vs_best']}**", "",
              f"tunelab bfloat16 against float32 (tokens/s ratio per batch size): "
              f"{json.dumps(summary['dtype_speedup'])}", "",
              f"Template check (prompt tokens identical): {json.dumps(checks)}", "",
              f"Greedy agreement (identical predictions): {json.dumps(summary['agreement'])}", "", notes, ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
