#!/usr/bin/env python
"""Multiple choice by logits: speed, memory and batch-size agreement of tunelab.eval.choice on SmolLM2-135M.

Writes a synthetic MMLU-layout folder (English; 4 subjects; --per-subject test questions of varied length and
5 dev rows each; a mapping.json with categories) to a temporary folder, loads SmolLM2-135M-Instruct through
tunelab (the alias smollm2-135m-instruct), and runs evaluate_choice 5-shot at each --batch-sizes, in one
process, after one warm-up forward pass. Per run: seconds (prompt building included), questions/s,
prompt tokens/s, padding share, peak RSS (psutil, polled), accuracy, and agreement with the first run
(same predictions, largest probability difference). Writes bench/results/choice_<date>.json and .md.

Usage: /path/to/venv/bin/python bench/bench_choice.py [--per-subject 30] [--batch-sizes 1,4,16]
Never run as a test: it takes several minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.metadata
import json
import os
import platform
import random
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tunelab.eval.choice import choice_prompts, evaluate_choice, load_questions, load_shots

REPO = Path(__file__).resolve().parents[1]
FILLER = [
    "This question comes from a short practice quiz.",
    "Read every option before you choose one of them.",
    "Only one of the four options below is correct, and the others are common mistakes.",
    "Students often get this kind of question wrong when they answer too quickly, so take your time.",
    "The quiz was written for a general audience and needs no special knowledge beyond school lessons.",
]
CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid", "Germany": "Berlin",
            "Egypt": "Cairo", "Canada": "Ottawa", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo",
            "Greece": "Athens", "Poland": "Warsaw", "Chile": "Santiago", "India": "New Delhi", "China": "Beijing",
            "Russia": "Moscow", "Portugal": "Lisbon", "Austria": "Vienna", "Ireland": "Dublin", "Cuba": "Havana"}
ANIMALS = {"mammal": ["dog", "whale", "horse", "bat", "elephant", "mouse"],
           "bird": ["eagle", "sparrow", "penguin", "owl", "parrot", "duck"],
           "fish": ["salmon", "shark", "tuna", "trout", "cod", "goldfish"],
           "reptile": ["snake", "lizard", "crocodile", "turtle", "iguana", "gecko"]}
UNITS = [("minutes", "hours", 60), ("seconds", "minutes", 60), ("centimetres", "metres", 100),
         ("grams", "kilograms", 1000), ("months", "years", 12), ("days", "weeks", 7)]
SUBJECTS = {"elementary_arithmetic": ("elementary arithmetic", "STEM"),
            "unit_conversion": ("unit conversion", "STEM"),
            "world_capitals": ("world capitals", "Social Sciences"),
            "animal_classes": ("animal classes", "Other")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-subject", type=int, default=30, help="test questions per subject (4 subjects)")
    ap.add_argument("--batch-sizes", default="1,4,16", help="comma-separated batch sizes, run in this order")
    ap.add_argument("--n-shot", type=int, default=5, help="few-shot examples per question (dev has 5 rows)")
    ap.add_argument("--model", default="smollm2-135m-instruct", help="tunelab alias, folder or GGUF file")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="model weights dtype")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic questions")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="where results are written")
    ap.add_argument("--date", default=datetime.date.today().isoformat(), help="date in the results' file names")
    return ap.parse_args(argv)


# ---------------------------------------------------------------------------------------------- data

def lead_in(rng: random.Random) -> str:
    """0-3 filler sentences, so that prompt lengths vary the way real questions do."""
    return " ".join(rng.sample(FILLER, rng.randint(0, 3)))


def item(rng: random.Random, subject: str) -> tuple[str, str, list[str]]:
    """(question, right option, three wrong options) of one synthetic question."""
    if subject == "elementary_arithmetic":
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        wrong = rng.sample([a + b + d for d in (-10, -2, -1, 1, 2, 10)], 3)
        return f"What is {a} + {b}?", str(a + b), [str(w) for w in wrong]
    if subject == "unit_conversion":
        small, big, factor = rng.choice(UNITS)
        n = rng.randint(2, 9)
        wrong = rng.sample([n * factor + d for d in (-factor, factor, factor * 2)] + [n + factor], 3)
        return f"How many {small} are there in {n} {big}?", str(n * factor), [str(w) for w in wrong]
    if subject == "world_capitals":
        country = rng.choice(list(CAPITALS))
        wrong = rng.sample([c for k, c in CAPITALS.items() if k != country], 3)
        return f"What is the capital city of {country}?", CAPITALS[country], wrong
    kind = rng.choice(list(ANIMALS))
    wrong = [rng.choice(ANIMALS[k]) for k in rng.sample([k for k in ANIMALS if k != kind], 3)]
    return f"Which of these animals is a {kind}?", rng.choice(ANIMALS[kind]), wrong


def csv_row(rng: random.Random, subject: str) -> list[str]:
    """question, A, B, C, D, answer: the right option at a random letter."""
    question, right, wrong = item(rng, subject)
    options = wrong[:]
    slot = rng.randrange(4)
    options.insert(slot, right)
    return [f"{lead_in(rng)} {question}".strip(), *options, "ABCD"[slot]]


def write_benchmark(folder: Path, per_subject: int, dev_rows: int, seed: int) -> Path:
    """The MMLU layout ({dev,test}/{subject}_{split}.csv, no header) and a mapping.json."""
    rng = random.Random(seed)
    for subject in SUBJECTS:
        for split, count in (("dev", dev_rows), ("test", per_subject)):
            path = folder / split / f"{subject}_{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="") as f:
                csv.writer(f).writerows(csv_row(rng, subject) for _ in range(count))
    mapping = {key: {"name": name, "category": category} for key, (name, category) in SUBJECTS.items()}
    (folder / "mapping.json").write_text(json.dumps(mapping, indent=2), encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------------------------- measuring

class PeakRss:
    """The largest RSS of this process seen while the block runs (psutil, polled every 20 ms)."""

    def __enter__(self) -> PeakRss:
        self.process, self.peak, self.done = psutil.Process(), 0, threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()
        return self

    def poll(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.done.wait(0.02)

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def token_stats(bundle: Any, folder: Path, n_shot: int, batch_sizes: list[int]) -> dict[str, Any]:
    """Prompt lengths, and the padded tokens each batch size forwards (longest-first batches, as scored)."""
    questions = load_questions(folder)
    shots = load_shots(folder, list(SUBJECTS))
    lengths = sorted((len(p.input_ids) for p in choice_prompts(questions, shots, bundle.tokenizer, n_shot, "en",
                                                                  4096)), reverse=True)
    padded = {bs: sum(max(lengths[i:i + bs]) * len(lengths[i:i + bs]) for i in range(0, len(lengths), bs))
              for bs in batch_sizes}
    return {"questions": len(lengths), "prompt_tokens": sum(lengths), "min": lengths[-1], "max": lengths[0],
            "mean": round(sum(lengths) / len(lengths), 1), "padded_tokens": padded}


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy so far."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def measure(bundle: Any, folder: Path, batch_size: int, n_shot: int) -> tuple[dict[str, Any], Any]:
    """One evaluate_choice run: its figures, and the result."""
    own = psutil.Process()
    cpu0, busy0, start = sum(own.cpu_times()[:2]), busy_cpu_s(), time.perf_counter()
    first_batch: list[float] = []
    with PeakRss() as rss:
        result = evaluate_choice(bundle, folder, n_shot=n_shot, batch_size=batch_size,
                                 progress=lambda done, total: first_batch or first_batch.append(time.perf_counter()))
    seconds = time.perf_counter() - start
    own_cpu, busy = sum(own.cpu_times()[:2]) - cpu0, busy_cpu_s() - busy0
    return {"batch_size": batch_size, "seconds": round(seconds, 2),
            "questions_per_s": round(result.questions / seconds, 3),
            "first_batch_s": round(first_batch[0] - start, 2) if first_batch else None,
            "peak_rss_mib": round(rss.peak / 2**20, 1), "accuracy": round(result.average, 2),
            "categories": {k: round(v, 2) for k, v in result.categories.items()},
            "other_load": round(max(0.0, busy - own_cpu) / (seconds * (os.cpu_count() or 1)), 3)}, result


def agreement(reference: Any, other: Any) -> dict[str, Any]:
    """Same predictions as the reference run, and the largest option-probability difference."""
    pairs = list(zip(reference.records, other.records))
    return {"same_predictions": all(a["predict"] == b["predict"] for a, b in pairs),
            "max_prob_diff": max(abs(a["probs"][k] - b["probs"][k]) for a, b in pairs for k in a["probs"])}


def machine(torch: Any) -> dict[str, Any]:
    """CPU, memory and versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
               platform.processor())
    return {"cpu_model": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "versions": {n: importlib.metadata.version(n) for n in ("tunelab", "torch", "transformers")}}


# ---------------------------------------------------------------------------------------------- report

def markdown(report: dict[str, Any]) -> str:
    """The results page: workload, machine, one row per batch size."""
    tokens, m = report["tokens"], report["machine"]
    lines = [f"# Multiple choice by logits: tunelab.eval.choice speed ({report['date']})", "",
             f"Workload: synthetic MMLU layout, {tokens['questions']} English test questions (4 subjects), "
             f"{report['n_shot']}-shot from dev, SmolLM2-135M-Instruct ({report['dtype']}), ChatML via the model's "
             f"chat template; prompts {tokens['min']}-{tokens['max']} tokens (mean {tokens['mean']}, "
             f"{tokens['prompt_tokens']:,} in all).", "",
             f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, torch {m['versions']['torch']} "
             f"({m['torch_threads']} threads), transformers {m['versions']['transformers']}. "
             f"Model load {report['load_s']} s, RSS after load {report['rss_after_load_mib']} MiB.", "",
             "| batch size | seconds | questions/s | prompt tokens/s | padding | first batch s | peak RSS MiB "
             "| accuracy % | same predictions as batch 1 | max prob diff | other load |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: |"]
    for run in report["runs"]:
        pad = tokens["padded_tokens"][str(run["batch_size"])] / tokens["prompt_tokens"] - 1
        lines.append(f"| {run['batch_size']} | {run['seconds']} | {run['questions_per_s']} | "
                     f"{tokens['prompt_tokens'] / run['seconds']:.0f} | {pad:.1%} | {run['first_batch_s']} | "
                     f"{run['peak_rss_mib']:,} | {run['accuracy']} | {run['agreement']['same_predictions']} | "
                     f"{run['agreement']['max_prob_diff']:.1e} | {run['other_load']:.0%} |")
    lines += ["", "Seconds include reading the CSVs and rendering/tokenising the prompts (evaluate_choice end to "
              "end); padding = padded tokens forwarded / real prompt tokens - 1. Accuracy is on synthetic "
              "questions (chance is 25%): it checks that scoring works, not the model. 'other load' = CPU share "
              "used by other processes during the run (noise). Compare batch sizes, not machines."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Generate the data, load the model, run each batch size, write JSON and markdown."""
    args = parse_args(argv)
    import torch

    from tunelab.model.load import load_bundle

    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    start = time.perf_counter()
    bundle = load_bundle(args.model, getattr(torch, args.dtype))
    load_s = round(time.perf_counter() - start, 2)
    rss_after_load = round(psutil.Process().memory_info().rss / 2**20, 1)
    with torch.inference_mode():  # warm-up: the first forward pass carries one-off costs
        bundle.model(input_ids=torch.ones((1, 64), dtype=torch.long))
    with tempfile.TemporaryDirectory(prefix="bench_choice_") as tmp:
        folder = write_benchmark(Path(tmp) / "synthetic_mmlu", args.per_subject, 5, args.seed)
        tokens = token_stats(bundle, folder, args.n_shot, batch_sizes)
        print(f"bench: {tokens['questions']} questions, {tokens['prompt_tokens']:,} prompt tokens", flush=True)
        runs, results = [], []
        for bs in batch_sizes:
            figures, result = measure(bundle, folder, bs, args.n_shot)
            figures["agreement"] = agreement(results[0] if results else result, result)
            runs.append(figures)
            results.append(result)
            print(f"bench: batch {bs}: {figures['seconds']} s, {figures['questions_per_s']} questions/s, "
                  f"peak RSS {figures['peak_rss_mib']} MiB, accuracy {figures['accuracy']}%", flush=True)
    report = {"date": args.date, "model": args.model, "dtype": args.dtype, "n_shot": args.n_shot,
              "per_subject": args.per_subject, "seed": args.seed, "load_s": load_s,
              "rss_after_load_mib": rss_after_load, "max_rss_mib": round(
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "machine": machine(torch), "tokens": {**tokens, "padded_tokens": {
                  str(k): v for k, v in tokens["padded_tokens"].items()}}, "runs": runs,
              "subjects_batch1": results[0].subjects}
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"choice_{args.date}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    page = markdown(report)
    stem.with_suffix(".md").write_text(page, encoding="utf-8")
    print(page)


if __name__ == "__main__":
    main()
