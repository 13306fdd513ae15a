"""Scoring speed: `tunelab eval score` on 10,000 Chinese generation rows (BLEU-4 + ROUGE-1/2/L, LLaMA-Factory's
recipe) against the same recipe called the way LLaMA-Factory calls it (jieba + nltk + rouge_chinese per row).

    python bench/bench_eval_score.py [--rows 10000] [--rounds 2] [--skip-naive]

The rows are synthetic but shaped like competition generation outputs: references of 30-120 words (about
70-300 characters) with Chinese punctuation, answers that copy, drop and alter parts of them, 5% empty.
Runs alternate (tunelab, naive, tunelab, naive); every run's averages must agree to 4 decimals.
Writes bench/results/eval_score_<date>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORDS = ("商品 购物 用户 推荐 价格 便宜 质量 不错 手机 电脑 衣服 鞋子 喜欢 购买 评价 服务 快递 速度 包装 精美 颜色 "
         "尺寸 合适 朋友 家人 学生 老师 考试 问题 答案 文章 阅读 理解 知识 图谱 报告 公司 市场 发展 技术 创新 "
         "我们 今天 这款 非常 已经 可以 因为 所以 但是 而且 如果 没有 一个 特别 满意 物流 客服 退货").split()
MARKS = "，，，。。！？；、"


def make_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    """References and perturbed answers (copied, dropped, replaced words; 5% empty)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        words = [rng.choice(WORDS) + (rng.choice(MARKS) if rng.random() < 0.18 else "")
                 for _ in range(rng.randint(30, 120))]
        answer = [w if rng.random() > 0.3 else rng.choice(WORDS) for w in words if rng.random() > 0.15]
        rows.append({"predict": "" if rng.random() < 0.05 else "".join(answer), "label": "".join(words)})
    return rows


NAIVE = r'''
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import jieba, logging
jieba.setLogLevel(logging.WARNING)
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_chinese import Rouge
start = time.time()
scores = {"rouge-1": [], "rouge-2": [], "rouge-l": [], "bleu-4": []}
for line in open(sys.argv[1], encoding="utf-8"):
    row = json.loads(line)
    hyp, ref = list(jieba.cut(row["predict"])), list(jieba.cut(row["label"]))
    if not " ".join(hyp).split() or not " ".join(ref).split():
        result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        result = Rouge().get_scores(" ".join(hyp), " ".join(ref))[0]
    for k, v in result.items():
        scores[k].append(round(v["f"] * 100, 4))
    bleu = sentence_bleu([list(row["label"])], list(row["predict"]), smoothing_function=SmoothingFunction().method3)
    scores["bleu-4"].append(round(bleu * 100, 4))
print(json.dumps({k: sum(v) / len(v) for k, v in scores.items()}))
'''


def timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds of a command (process start included) and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def run_tunelab(path: Path, out: Path) -> tuple[float, dict[str, float]]:
    tunelab = Path(sys.executable).with_name("tunelab")
    seconds, _ = timed([str(tunelab), "eval", "score", str(path), "--metrics", "bleu-4,rouge-1,rouge-2,rouge-l",
                        "--json", str(out)])
    return seconds, json.loads(out.read_text(encoding="utf-8"))["metrics"]


def run_naive(path: Path) -> tuple[float, dict[str, float]]:
    seconds, stdout = timed([sys.executable, "-c", NAIVE, str(path)])
    return seconds, json.loads(stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true", help="only time tunelab")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tunelab-bench-score-"))
    path = work / "zh_rows.jsonl"
    rows = make_rows(args.rows)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    runs = []
    for round_ in range(args.rounds):
        seconds, metrics = run_tunelab(path, work / "score.json")
        runs.append({"system": "tunelab", "round": round_ + 1, "seconds": round(seconds, 2), "metrics": metrics})
        print(runs[-1], flush=True)
        if not args.skip_naive:
            seconds, metrics = run_naive(path)
            runs.append({"system": "naive", "round": round_ + 1, "seconds": round(seconds, 2), "metrics": metrics})
            print(runs[-1], flush=True)
    write_results(args, rows, runs)


def median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def write_results(args: argparse.Namespace, rows: list[dict[str, str]], runs: list[dict]) -> None:
    ours = median([r["seconds"] for r in runs if r["system"] == "tunelab"])
    naive = [r["seconds"] for r in runs if r["system"] == "naive"]
    first = runs[0]["metrics"]
    agree = all(abs(r["metrics"][k] - first[k]) < 5e-5 for r in runs for k in first)
    chars = sum(len(r["label"]) for r in rows) / len(rows)
    result = {"date": datetime.date.today().isoformat(), "machine": {"cpus": os.cpu_count(),
              "processor": platform.processor() or platform.machine(), "python": platform.python_version()},
              "rows": len(rows), "mean_reference_chars": round(chars, 1), "runs": runs,
              "tunelab_median_s": ours, "naive_median_s": median(naive) if naive else None,
              "speedup": round(median(naive) / ours, 2) if naive else None, "averages_agree": agree}
    stem = HERE / "results" / f"eval_score_{result['date']}"
    stem.parent.mkdir(exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    lines = [f"# Scoring {len(rows):,} Chinese generation rows ({result['date']})", "",
             f"Mean reference length {chars:.0f} characters; BLEU-4 + ROUGE-1/2/L, LLaMA-Factory's recipe.", "",
             "| run | system | seconds |", "|---|---|---:|"]
    lines += [f"| {r['round']} | {r['system']} | {r['seconds']:.2f} |" for r in runs]
    lines += ["", f"- tunelab median: **{ours:.2f} s** (target: under 30 s)"]
    if naive:
        lines.append(f"- the recipe called naively, one process: median {median(naive):.2f} s; "
                     f"tunelab is **{result['speedup']}x** faster")
    lines.append(f"- every run's averages agree to 4 decimals: {agree} ({', '.join(f'{k} {v:.4f}' for k, v in first.items())})")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
