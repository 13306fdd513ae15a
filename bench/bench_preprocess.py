#!/usr/bin/env python
"""Preprocessing speed: tokenizing 100,000 alpaca rows with tunelab against LLaMA-Factory 0.9.5, alternating runs.

Both systems turn the same alpaca file (English and Chinese rows of about 300 tokens, 1% longer than the cutoff)
into input_ids/labels with SmolLM2-135M-Instruct's tokenizer, template smollm2, cutoff_len 1024, the same
preprocessing_num_workers, and save the result with `save_to_disk`:

* LLaMA-Factory: `llamafactory-cli train` (stage sft, do_train, overwrite_cache, tokenized_path: a new empty
  folder). LLaMA-Factory 0.9.5 does NOT exit after saving tokenized_path (data/loader.py saves and returns; the
  `sys.exit(0)` of older versions is gone) and would go on to load the model and train. The bench therefore runs
  the same entry point (`llamafactory.cli.main` with argv `train CONFIG`) through a small wrapper that replaces
  `load_model` of the sft workflow with an exit: everything up to and including the saved tokenized_path is
  LLaMA-Factory's own code path, nothing after it runs. The wrapper also times get_dataset (the preprocessing part)
  and DatasetDict.save_to_disk.
* tunelab: a Python process doing what `tunelab data tokenize` does: load_tokenizer + build_data +
  `bundle.train.save_to_disk` (and `tunelab data tokenize` itself, when that command exists).

Each run is a separate process with its own empty HF_DATASETS_CACHE (a cold start: LLaMA-Factory would otherwise
reuse the json->arrow conversion of an earlier run), HF_HUB_OFFLINE=1, and holds /tmp/tunelab-bench.lock. Per run:
wall clock of the whole process, the preprocessing part, peak RSS of the process tree (polled) and of the
largest process (wait4), rows/s and the CPU share other processes took. Afterwards the saved datasets of the
two systems are compared row by row (input_ids and labels).

    /path/to/venv/bin/python bench/bench_preprocess.py                        # about 30-40 minutes on 2 cores
    /path/to/venv/bin/python bench/bench_preprocess.py --rows 10000 --rounds 1 --workers 2 \\
        --results /tmp/bench/preprocess/smoke                                  # smoke test, ~2 minutes
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from bench_sft import REPO, launch, machine, wait_for_quiet

LOCK = Path("/tmp/tunelab-bench.lock")
MARK = "BENCH_MARKS "
DATA_VERSION = 2  # bump when the generated rows change

# ---------------------------------------------------------------------------------------------- wrappers

LF_WRAPPER = '''
"""llamafactory-cli train CONFIG, stopped right after the tokenized dataset is saved (see bench_preprocess.py)."""
import json, sys, time

def main(config):
    started = time.time()
    import datasets
    import llamafactory.train.sft.workflow as workflow
    from llamafactory.cli import main as cli_main

    marks = {"imports_done": time.time()}
    get_dataset, save = workflow.get_dataset, datasets.DatasetDict.save_to_disk

    def timed_get_dataset(*args, **kwargs):
        marks["preprocess_start"] = time.time()
        try:
            return get_dataset(*args, **kwargs)
        finally:
            marks["preprocess_end"] = time.time()

    def timed_save(self, *args, **kwargs):
        marks["save_start"] = time.time()
        save(self, *args, **kwargs)
        marks["save_end"] = time.time()

    def stop(*args, **kwargs):  # the model load that follows get_dataset in run_sft: preprocessing is over
        marks["stopped"] = time.time()
        print("BENCH_MARKS " + json.dumps({"started": started, **marks}), flush=True)
        raise SystemExit(0)

    workflow.get_dataset, workflow.load_model = timed_get_dataset, stop
    datasets.DatasetDict.save_to_disk = timed_save
    sys.argv = ["llamafactory-cli", "train", config]
    cli_main()
    raise SystemExit("LLaMA-Factory returned without reaching load_model")

if __name__ == "__main__":
    main(sys.argv[1])
'''

TUNELAB_WRAPPER = '''
"""What `tunelab data tokenize` does: tokenizer, build_data, save_to_disk (see bench_preprocess.py)."""
import json, sys, time

def main(model, dataset, dataset_dir, workers, out):
    started = time.time()
    from pathlib import Path
    from tunelab.config.schema import DataSection
    from tunelab.model.load import load_tokenizer
    from tunelab.data.pipeline import build_data

    marks = {"started": started, "imports_done": time.time()}
    tok = load_tokenizer(Path(model), template="smollm2")
    marks["preprocess_start"] = time.time()  # after the tokenizer, as LLaMA-Factory's get_dataset
    bundle = build_data(DataSection(dataset=dataset, dataset_dir=dataset_dir, template="smollm2", cutoff_len=1024,
                                    preprocessing_num_workers=int(workers)), tok, seed=42)
    marks["save_start"] = time.time()
    bundle.train.save_to_disk(out)
    marks["save_end"] = marks["preprocess_end"] = time.time()
    print("BENCH_MARKS " + json.dumps(marks), flush=True)

if __name__ == "__main__":
    main(*sys.argv[1:])
'''


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="alpaca rows to make and tokenize")
    parser.add_argument("--workers", default="2,1", help="comma-separated preprocessing_num_workers values")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each system per worker count")
    parser.add_argument("--check-rows", type=int, default=2000, help="rows compared first (all rows are counted too)")
    parser.add_argument("--model", type=Path, default=Path("/tmp/models/smollm2-135m-instruct"))
    parser.add_argument("--baselines", type=Path, default=REPO.parent / "shared" / "baselines",
                        help="the shared baselines folder (its make_dataset.py gives the English text)")
    parser.add_argument("--lf-python", type=Path, default=Path("/tmp/lf-venv/bin/python"))
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench/preprocess"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench/runs/bench_preprocess"))
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="seconds to wait for idle CPUs before a run")
    parser.add_argument("--no-cli", action="store_true", help="skip `tunelab data tokenize` even if it exists")
    parser.add_argument("--notes", default="", help="text added to the markdown page")
    parser.add_argument("--append", action="store_true",
                        help="keep the runs and checks of today's results file and add this session's (e.g. a "
                             "second session on a quieter machine)")
    parser.add_argument("--quiet-share", type=float, default=0.10,
                        help="runs with less other load than this also get their own medians and ratio")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------- data

EN_INSTR = [
    "Explain what the Python standard library object `{q}` does and how to use it.",
    "I am new to Python. What is `{q}` for? Please describe its behaviour in detail.",
    "Write documentation for `{q}` from the Python standard library.",
    "Summarize the following text and then explain `{q}`.",
    "Can you tell me how `{q}` works? Include any caveats.",
]
ZH_INSTR = ["请详细介绍一下{t}，并举例说明。", "用通俗的语言解释{t}的基本原理。", "请根据下面的材料，写一段关于{t}的分析。",
            "{t}对普通人的生活有什么影响？请分点回答。", "请总结下面这段文字，并谈谈你对{t}的看法。"]
ZH_TOPICS = ["光合作用", "万有引力", "通货膨胀", "人工智能", "水循环", "疫苗", "气候变化", "区块链", "城市化", "量子计算",
             "传统节日", "在线教育"]
ZH_SUBJECTS = ["随着科技的不断发展，", "在过去的十年里，", "专家普遍认为，", "根据最新的调查数据，", "从长远来看，",
               "在许多大城市中，", "对于年轻人来说，", "与传统方式相比，", "在全球化的背景下，", "研究人员发现，",
               "在政府的支持下，", "值得注意的是，"]
ZH_MIDDLES = ["人们的生活方式", "绿色交通和可持续发展", "教育和医疗资源的分配", "信息的传播方式", "中小企业的发展",
              "睡眠质量与工作效率", "人工智能技术的应用", "传统文化的传承", "城市的住房问题", "农村的经济结构",
              "消费者的购物习惯", "能源结构的转型"]
ZH_ENDS = ["发生了巨大的变化。", "受到了越来越多的关注。", "面临着新的机遇和挑战。", "需要全社会的共同努力。",
           "已经成为一个重要的话题。", "仍然存在不少问题。", "正在被广泛讨论。", "呈现出明显的上升趋势。",
           "得到了显著的改善。", "还需要进一步的研究。"]


def english_lines(baselines: Path) -> list[str]:
    """Lines of the ASCII stdlib docstrings the shared baselines' make_dataset.py uses (deterministic order)."""
    sys.path.insert(0, str(baselines))
    try:
        from make_dataset import docs
    finally:
        sys.path.pop(0)
    lines: list[str] = []
    for name, doc in docs():
        lines += [f"`{name}`:", ""] + doc.splitlines() + [""]
    return lines


def chinese_sentences() -> list[str]:
    """1,440 distinct Chinese sentences (subject x topic x ending), deterministic order."""
    return [s + m + e for s in ZH_SUBJECTS for m in ZH_MIDDLES for e in ZH_ENDS]


def make_rows(count: int, tokenizer: Any, baselines: Path, seed: int = 0) -> list[dict[str, str]]:
    """`count` alpaca rows: 80% English (stdlib docstrings), 20% Chinese; about 300 tokens each (uniform
    230-370 targets), 1% of 1,100-1,600 tokens (longer than cutoff_len 1024: truncation is compared too);
    40-50% with an input. Token counts are summed per line (pre-counted once), so lengths are approximate."""
    en = english_lines(baselines)
    zh = chinese_sentences()
    en_counts = [len(ids) for ids in tokenizer(en, add_special_tokens=False)["input_ids"]]
    zh_counts = [len(ids) for ids in tokenizer(zh, add_special_tokens=False)["input_ids"]]
    names = sorted({line[1:-2] for line in en if line.startswith("`") and line.endswith("`:")})
    rng = random.Random(seed)

    def text(lines: list[str], counts: list[int], tokens: int, sep: str) -> str:
        start, out, total = rng.randrange(len(lines)), [], 0
        while total < tokens:
            i = (start + len(out)) % len(lines)
            out.append(lines[i])
            total += counts[i] + 1
        return sep.join(out).strip() or lines[start] or "."

    rows = []
    for _ in range(count):
        target = rng.randint(1100, 1600) if rng.random() < 0.01 else rng.randint(230, 370)
        if rng.random() < 0.2:
            instruction = rng.choice(ZH_INSTR).format(t=rng.choice(ZH_TOPICS))
            given = text(zh, zh_counts, rng.randint(20, 120), "") if rng.random() < 0.5 else ""
            output = text(zh, zh_counts, max(target - 85 - 1.3 * len(given), 20), "")
        else:
            instruction = rng.choice(EN_INSTR).format(q=rng.choice(names))
            given = text(en, en_counts, rng.randint(30, 120), "\n") if rng.random() < 0.4 else ""
            output = text(en, en_counts, max(target - 65 - len(given) / 4, 20), "\n")
        rows.append({"instruction": instruction, "input": given, "output": output})
    return rows


def ensure_dataset(folder: Path, count: int, model: Path, baselines: Path) -> str:
    """The alpaca file alpaca_<count>.json registered as bench_preprocess_<count> in folder/dataset_info.json."""
    name, file = f"bench_preprocess_{count}", folder / f"alpaca_{count}.json"
    stamp = folder / f"alpaca_{count}.stamp.json"
    wanted = {"rows": count, "version": DATA_VERSION, "python": sys.version.split()[0]}
    if not (file.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == wanted):
        from transformers import AutoTokenizer

        folder.mkdir(parents=True, exist_ok=True)
        rows = make_rows(count, AutoTokenizer.from_pretrained(model), baselines)
        file.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        stamp.write_text(json.dumps(wanted))
        print(f"bench: wrote {count} rows to {file} ({file.stat().st_size / 2**20:.0f} MiB)", flush=True)
    info_file = folder / "dataset_info.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    info[name] = {"file_name": file.name}
    info_file.write_text(json.dumps(info, indent=2))
    return name


# ---------------------------------------------------------------------------------------------- runs

def locked_run(cmd: list[str], run_dir: Path, quiet_wait: float) -> dict[str, Any]:
    """launch() holding the shared benchmark lock, after waiting (a while) for idle CPUs; never aborted: the
    other load is recorded instead. Cold datasets cache per run, offline hub."""
    LOCK.touch(exist_ok=True)
    env = dict(os.environ, DISABLE_VERSION_CHECK="1", HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(run_dir / "hf_cache"))
    with LOCK.open("r") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the same lock as `flock /tmp/tunelab-bench.lock`
        quiet = wait_for_quiet(quiet_wait, 10.0)
        run = launch(cmd, run_dir / "run.log", env=env, abort_share=None)
    marks = [line for line in Path(run["log"]).read_text(errors="replace").splitlines() if line.startswith(MARK)]
    run["marks"] = json.loads(marks[-1][len(MARK):]) if marks else None
    return {**run, **quiet}


def one_run(system: str, workers: int, index: int, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    """One process of `system` ("llamafactory", "tunelab" or "tunelab-cli"); figures in a dict."""
    run_dir = args.workdir / f"{system}_w{workers}_{index}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    out = run_dir / ("tokenized.jsonl" if system == "tunelab-cli" else "tokenized")  # the CLI writes JSON lines
    if system == "llamafactory":
        config = run_dir / "lf.yaml"
        config.write_text(textwrap.dedent(f"""\
            model_name_or_path: {args.model}
            stage: sft
            do_train: true
            finetuning_type: lora
            dataset: {dataset}
            dataset_dir: {args.data}
            template: smollm2
            cutoff_len: 1024
            preprocessing_num_workers: {workers}
            overwrite_cache: true
            tokenized_path: {out}
            output_dir: {run_dir / 'output'}
            overwrite_output_dir: true
            report_to: none
            """))
        wrapper = args.workdir / "lf_preprocess_only.py"
        wrapper.write_text(LF_WRAPPER)
        cmd = [str(args.lf_python), str(wrapper), str(config)]
    elif system == "tunelab":
        wrapper = args.workdir / "tunelab_tokenize.py"
        wrapper.write_text(TUNELAB_WRAPPER)
        cmd = [sys.executable, str(wrapper), str(args.model), dataset, str(args.data), str(workers), str(out)]
    else:
        config = run_dir / "tunelab.yaml"
        config.write_text(textwrap.dedent(f"""\
            model_name_or_path: {args.model}
            template: smollm2
            dataset: {dataset}
            dataset_dir: {args.data}
            cutoff_len: 1024
            preprocessing_num_workers: {workers}
            output_dir: {run_dir / 'output'}
            """))
        cmd = [str(Path(sys.executable).parent / "tunelab"), "data", "tokenize", str(config), "--out", str(out)]
    print(f"bench: {system}, {workers} worker(s), run {index}", flush=True)
    run = locked_run(cmd, run_dir, args.quiet_wait)
    shutil.rmtree(run_dir / "hf_cache", ignore_errors=True)
    run.update(system=system, workers=workers, index=index, out=str(out), ok=run["rc"] == 0 and out.exists())
    marks = run.get("marks") or {}
    if "preprocess_start" in marks and "preprocess_end" in marks:
        run["preprocess_s"] = marks["preprocess_end"] - marks["preprocess_start"]
        run["save_s"] = marks.get("save_end", 0) - marks.get("save_start", 0)
        run["startup_s"] = marks["preprocess_start"] - run["launch_t"]
    if run["ok"]:
        run["rows"] = args.rows
        run["rows_per_s"] = args.rows / run["wall_s"]
        if "preprocess_s" in run:
            run["rows_per_s_preprocess"] = args.rows / run["preprocess_s"]
        files = [out] if out.is_file() else [f for f in out.rglob("*") if f.is_file()]
        run["saved_mib"] = sum(f.stat().st_size for f in files) / 2**20
        print(f"bench:   {run['wall_s']:.1f}s wall, preprocessing {run.get('preprocess_s', float('nan')):.1f}s, "
              f"{run['rows_per_s']:.0f} rows/s, tree RSS {run['peak_rss_mib_tree_polled']:.0f} MiB, "
              f"other load {100 * run['other_processes_cpu_share']:.0f}%", flush=True)
    else:
        print(f"bench:   FAILED rc {run['rc']}; see {run['log']}", flush=True)
    return run


# ---------------------------------------------------------------------------------------------- equality

def train_split(path: Path) -> Any:
    """The saved dataset (LLaMA-Factory saves a DatasetDict with a train split, tunelab a Dataset, `tunelab data
    tokenize` a JSON lines file)."""
    from datasets import Dataset, DatasetDict, load_from_disk

    if path.is_file():
        with path.open(encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines]
        return Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]})

    loaded = load_from_disk(str(path))
    return loaded["train"] if isinstance(loaded, DatasetDict) else loaded


def flat(dataset: Any, column: str) -> tuple[Any, Any]:
    """Row lengths and all values of a list column, as numpy arrays."""
    import numpy as np

    array = dataset.with_format("arrow")[:][column].combine_chunks()
    return np.asarray(array.value_lengths()), np.asarray(array.flatten()).astype(np.int64)


def identical_rows(a: Any, b: Any) -> Any:
    """Per row: are input_ids and labels identical (vectorised over all rows)?"""
    import numpy as np

    same = np.ones(min(len(a), len(b)), dtype=bool)
    for column in ("input_ids", "labels"):
        (len_a, val_a), (len_b, val_b) = flat(a, column), flat(b, column)
        len_a, len_b = len_a[:len(same)], len_b[:len(same)]
        if np.array_equal(len_a, len_b):  # same layout: compare the values and count mismatches per row
            ends = np.cumsum(len_a)
            mismatches = np.concatenate([[0], np.cumsum(val_a[:ends[-1]] != val_b[:ends[-1]])])
            same &= mismatches[ends] == mismatches[ends - len_a]
        else:  # different lengths somewhere: row by row (slow, only when something is wrong)
            starts_a, starts_b = np.cumsum(len_a) - len_a, np.cumsum(len_b) - len_b
            for row in range(len(same)):
                same[row] &= len_a[row] == len_b[row] and np.array_equal(
                    val_a[starts_a[row]:starts_a[row] + len_a[row]], val_b[starts_b[row]:starts_b[row] + len_b[row]])
    return same


def compare(lf_dir: Path, tl_dir: Path, check_rows: int, model: Path) -> dict[str, Any]:
    """input_ids and labels: the first check_rows rows one by one as Python lists, then all rows (vectorised);
    totals; the first difference."""
    lf, tl = train_split(lf_dir), train_split(tl_dir)
    n = min(len(lf), len(tl))
    first = min(check_rows, n)
    a, b = lf.select_columns(["input_ids", "labels"])[:first], tl.select_columns(["input_ids", "labels"])[:first]
    same_first = sum(list(ia) == list(ib) and list(la) == list(lb)
                     for ia, la, ib, lb in zip(a["input_ids"], a["labels"], b["input_ids"], b["labels"]))
    same = identical_rows(lf, tl)
    totals = {}
    for name, dataset in (("llamafactory", lf), ("tunelab", tl)):
        lengths, _ = flat(dataset, "input_ids")
        _, labels = flat(dataset, "labels")
        totals[name] = {"tokens": int(lengths.sum()), "label_tokens": int((labels != -100).sum()),
                        "truncated_to_cutoff": int((lengths == 1024).sum()), "max_len": int(lengths.max())}
    first_diff = None
    if not same.all():
        row = int((~same).argmax())
        first_diff = difference(row, lf[row]["input_ids"], lf[row]["labels"], tl[row]["input_ids"],
                                tl[row]["labels"], model)
    return {"rows": {"llamafactory": len(lf), "tunelab": len(tl)},
            "columns": {"llamafactory": lf.column_names, "tunelab": tl.column_names},
            "compared_first": first, "identical_first": int(same_first), "compared_all": n,
            "identical_all": int(same.sum()), "identical_first_vectorised": int(same[:first].sum()),
            "totals": totals, "first_difference": first_diff}


def difference(row: int, ia: list[int], la: list[int], ib: list[int], lb: list[int], model: Path) -> dict[str, Any]:
    """Where two rows first differ, with a few decoded tokens around it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    ids_at = next((i for i, (x, y) in enumerate(zip(ia, ib)) if x != y), min(len(ia), len(ib)))
    labels_at = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
    at = min(ids_at, labels_at)
    window = slice(max(at - 8, 0), at + 8)
    return {"row": row, "lengths": {"llamafactory": len(ia), "tunelab": len(ib)}, "input_ids_differ_at": ids_at,
            "labels_differ_at": labels_at,
            "llamafactory": {"ids": list(ia[window]), "labels": list(la[window]), "text": tok.decode(ia[window])},
            "tunelab": {"ids": list(ib[window]), "labels": list(lb[window]), "text": tok.decode(ib[window])}}


# ---------------------------------------------------------------------------------------------- main

def cli_available() -> bool:
    """Does this tunelab have `tunelab data tokenize`?"""
    exe = Path(sys.executable).parent / "tunelab"
    proc = subprocess.run([str(exe), "data", "--help"], capture_output=True, text=True)
    return proc.returncode == 0 and "tokenize" in proc.stdout


def main(argv: list[str] | None = None) -> int:
    """Make the data, alternate the systems per worker count, compare the outputs, write the results."""
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    dataset = ensure_dataset(args.data, args.rows, args.model, args.baselines)
    info = {"date": datetime.date.today().isoformat(), "machine": machine(),
            "llamafactory_versions": lf_versions(args.lf_python),
            "args": {k: str(v) for k, v in vars(args).items()}, "dataset": dataset}
    runs: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    previous = args.results / f"preprocess_{info['date']}.json"
    if args.append and previous.is_file():
        old = json.loads(previous.read_text())
        runs, checks = old["runs"], old["equality"]
        for run in runs:
            run.setdefault("session", 1)
    session = 1 + max((r["session"] for r in runs), default=0)
    with_cli = not args.no_cli and cli_available()
    info["tunelab_data_tokenize"] = with_cli
    for workers in [int(w) for w in args.workers.split(",")]:
        for index in range(args.rounds):
            for system in ("llamafactory", "tunelab"):
                done = sum(r["system"] == system and r["workers"] == workers for r in runs)
                runs.append({**one_run(system, workers, done, dataset, args), "session": session})
                write_results(args, info, runs, checks)  # after every run: an interrupted session keeps its figures
        if with_cli:
            done = sum(r["system"] == "tunelab-cli" and r["workers"] == workers for r in runs)
            runs.append({**one_run("tunelab-cli", workers, done, dataset, args), "session": session})
        # the outputs compared: this session's first of each system, else an earlier session's kept one
        kept = [r for r in runs if r["workers"] == workers and r["ok"] and Path(r["out"]).exists()]
        firsts = {s: next((r for r in sorted(kept, key=lambda r: -r["session"]) if r["system"] == s), None)
                  for s in ("llamafactory", "tunelab", "tunelab-cli")}
        key = f"workers_{workers}" + (f"_session{session}" if session > 1 else "")
        if firsts["llamafactory"] and firsts["tunelab"] and session in (firsts["llamafactory"]["session"],
                                                                      firsts["tunelab"]["session"]):
            print(f"bench: comparing the saved datasets ({workers} worker(s))", flush=True)
            checks[key] = compare(Path(firsts["llamafactory"]["out"]), Path(firsts["tunelab"]["out"]),
                                  args.check_rows, args.model)
        if firsts["llamafactory"] and firsts["tunelab-cli"] and firsts["tunelab-cli"]["session"] == session:
            print(f"bench: comparing LLaMA-Factory's output with `tunelab data tokenize`'s ({workers} worker(s))",
                  flush=True)
            checks[key + "_cli"] = compare(Path(firsts["llamafactory"]["out"]), Path(firsts["tunelab-cli"]["out"]),
                                           args.check_rows, args.model)
        for run in runs:  # keep one output per system and worker count (they are ~0.5-1 GiB each)
            if run["workers"] == workers and run["session"] == session and run is not firsts.get(run["system"]):
                path = Path(run["out"])
                path.unlink() if path.is_file() else shutil.rmtree(path, ignore_errors=True)
        write_results(args, info, runs, checks)
    return 0


def lf_versions(lf_python: Path) -> dict[str, str]:
    """Package versions in LLaMA-Factory's environment."""
    code = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
            "('llamafactory', 'transformers', 'datasets', 'tokenizers', 'torch')}))")
    proc = subprocess.run([str(lf_python), "-c", code], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-300:]}


def median(values: list[float]) -> float | None:
    """Median, None for no values."""
    return statistics.median(values) if values else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per system and worker count, and the LLaMA-Factory/tunelab ratios (tunelab faster by x)."""
    out: dict[str, Any] = {}
    for workers in sorted({r["workers"] for r in runs}):
        per: dict[str, Any] = {}
        for system in ("llamafactory", "tunelab", "tunelab-cli"):
            ok = [r for r in runs if r["ok"] and r["system"] == system and r["workers"] == workers]
            if ok:
                per[system] = {"runs": len(ok), "median_wall_s": median([r["wall_s"] for r in ok]),
                               "median_preprocess_s": median([r["preprocess_s"] for r in ok if "preprocess_s" in r]),
                               "median_rows_per_s": median([r["rows_per_s"] for r in ok]),
                               "max_peak_rss_tree_mib": max(r["peak_rss_mib_tree_polled"] for r in ok),
                               "max_other_load": max(r["other_processes_cpu_share"] for r in ok)}
        lf, tl = per.get("llamafactory"), per.get("tunelab")
        if lf and tl:
            per["tunelab_faster_by_wall"] = round(lf["median_wall_s"] / tl["median_wall_s"], 2)
            if lf["median_preprocess_s"] and tl["median_preprocess_s"]:
                per["tunelab_faster_by_preprocess"] = round(lf["median_preprocess_s"] / tl["median_preprocess_s"], 2)
        out[f"workers_{workers}"] = per
    return out


def best_vs_best(table: dict[str, Any]) -> dict[str, Any] | None:
    """Each system at its fastest worker count (median wall), and the ratio."""
    best: dict[str, Any] = {}
    for system in ("llamafactory", "tunelab"):
        options = [(per[system]["median_wall_s"], int(key.split("_")[1])) for key, per in table.items()
                   if system in per]
        if not options:
            return None
        wall, workers = min(options)
        best[system] = {"median_wall_s": wall, "workers": workers}
    best["ratio"] = round(best["llamafactory"]["median_wall_s"] / best["tunelab"]["median_wall_s"], 2)
    return best


def write_results(args: argparse.Namespace, info: dict[str, Any], runs: list[dict[str, Any]],
                  checks: dict[str, Any]) -> None:
    """bench/results/preprocess_<date>.json and .md."""
    summary = summarise(runs)
    quiet = summarise([r for r in runs if r["other_processes_cpu_share"] < args.quiet_share])
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"preprocess_{info['date']}"
    stem.with_suffix(".json").write_text(json.dumps({**info, "summary": summary, "summary_quiet_runs": quiet,
                                                     "best_vs_best": best_vs_best(summary),
                                                     "best_vs_best_quiet_runs": best_vs_best(quiet),
                                                     "equality": checks, "runs": runs},
                                                    indent=2, ensure_ascii=False, default=str))
    m = info["machine"]
    lines = ["# Preprocessing: tunelab vs LLaMA-Factory 0.9.5", "",
             f"{args.rows:,} alpaca rows (80% English, 20% Chinese, about 300 tokens; 1% longer than the cutoff), "
             "SmolLM2-135M-Instruct tokenizer, template smollm2, cutoff_len 1024, tokenized and saved with "
             f"save_to_disk. {m['cpu_model']}, {m['logical_cpus']} CPUs, shared with other work (see other load). "
             f"tunelab {m['versions'].get('tunelab')} (git {m.get('tunelab_git')}), datasets "
             f"{m['versions'].get('datasets')}, transformers {m['versions'].get('transformers')}; LLaMA-Factory "
             f"{json.dumps(info.get('llamafactory_versions'))}.", "",
             "| workers | system | run | session | wall s | preprocessing s | save s | rows/s (wall) | "
             "peak RSS tree MiB | peak RSS largest process MiB | other load | CPUs busy before |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        if r["ok"]:
            lines.append(f"| {r['workers']} | {r['system']} | {r['index'] + 1} | {r.get('session', 1)} | "
                         f"{r['wall_s']:.1f} | {r.get('preprocess_s', float('nan')):.1f} | "
                         f"{r.get('save_s', float('nan')):.1f} | "
                         f"{r['rows_per_s']:.0f} | {r['peak_rss_mib_tree_polled']:.0f} | "
                         f"{r['peak_rss_mib_wait4']:.0f} | {100 * r['other_processes_cpu_share']:.0f}% | "
                         f"{r['cpu_percent_before']:.0f}% |")
        else:
            lines.append(f"| {r['workers']} | {r['system']} | {r['index'] + 1} | {r.get('session', 1)} | "
                         f"FAILED rc {r['rc']} | | | | | | | |")
    lines += ["", "## Medians and ratio", "",
              "| runs | workers | LLaMA-Factory wall s | tunelab wall s | **tunelab faster by (wall)** | LLaMA-Factory "
              "preprocessing s | tunelab preprocessing s | tunelab faster by (preprocessing) | `tunelab data tokenize` "
              "wall s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    fmt = lambda v: "" if v is None else f"{v:.1f}"  # noqa: E731
    for label, table in ((f"all ({len(runs)})", summary), (f"other load < {100 * args.quiet_share:.0f}%", quiet)):
        for key, per in table.items():
            lf, tl = per.get("llamafactory") or {}, per.get("tunelab") or {}
            lines.append(f"| {label} | {key.split('_')[1]} ({lf.get('runs', 0)} + {tl.get('runs', 0)} runs) | "
                         f"{fmt(lf.get('median_wall_s'))} | {fmt(tl.get('median_wall_s'))} | "
                         f"**{per.get('tunelab_faster_by_wall', '')}x** | {fmt(lf.get('median_preprocess_s'))} | "
                         f"{fmt(tl.get('median_preprocess_s'))} | {per.get('tunelab_faster_by_preprocess', '')}x | "
                         f"{fmt((per.get('tunelab-cli') or {}).get('median_wall_s'))} |")
    for label, table in (("all runs", summary), (f"other load < {100 * args.quiet_share:.0f}%", quiet)):
        best = best_vs_best(table)
        if best:
            lines.append(f"\nBest vs best ({label}): LLaMA-Factory {best['llamafactory']['median_wall_s']:.1f} s "
                         f"({best['llamafactory']['workers']} workers), tunelab "
                         f"{best['tunelab']['median_wall_s']:.1f} s "
                         f"({best['tunelab']['workers']} workers): tunelab faster by **{best['ratio']}x**")
    lines += ["", "## Equality of the saved datasets (input_ids and labels, row by row)", ""]
    for key, check in checks.items():
        lines.append(f"- {key}: first {check['compared_first']} rows: **{check['identical_first']} identical**; all "
                     f"{check['compared_all']} rows: {check['identical_all']} identical; rows "
                     f"{json.dumps(check['rows'])}; totals {json.dumps(check['totals'])}")
        if check["first_difference"]:
            lines.append(f"  - first difference: `{json.dumps(check['first_difference'], ensure_ascii=False)}`")
    lines += ["", "Wall s: the whole process (interpreter start to exit). Preprocessing s: LLaMA-Factory's "
              "get_dataset (read, convert, tokenize, save) / tunelab's build_data + save_to_disk (both after the "
              "tokenizer is loaded). `tunelab data tokenize` writes a JSON lines file instead of save_to_disk "
              "(timed, not the main figure). "
              "LLaMA-Factory is stopped where run_sft would load the model (0.9.5 does not exit after saving "
              "tokenized_path). Each run has an empty HF_DATASETS_CACHE (cold start). Other load: the CPU share "
              "other processes took during the run.", "", args.notes, ""]
    stem.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
