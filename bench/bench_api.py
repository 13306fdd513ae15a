#!/usr/bin/env python
"""`tunelab api` under load, the continuous engine against the engine before it (fixed batches), alternating.

Starts two servers of `examples/quickstart_lora_sft.yaml` (SmolLM2-135M-Instruct, the base model: output_dir is an
empty temporary folder) with --max-batch 16 on free loopback ports: NEW runs this tree's code, OLD the code of
--old-src (the tree at commit 689b112, e.g. `git archive 689b112 src | tar -x -C /tmp/oldapi`). Both are warmed up,
then every level runs on both, alternating which goes first. A level is CLIENTSxREQUESTS: that many threads, each
sending REQUESTS streaming chat requests in a row with the official openai client (greedy, include_usage). The
uniform levels ask 16 short questions with max_tokens --max-tokens; the mixed level (name prefixed 'm') mixes
short questions and long prompts (a ~350-token text to summarize) with max_tokens 16 to 96. Per request: latency
(request to [DONE]), time to first token (request to the first content chunk) and completion tokens (the usage
chunk); per level: p50/p95/p99 of both and generated tokens/s. Writes bench/results/api_<date>.json and .md.

Usage: flock /tmp/tunelab-bench.lock /path/to/venv/bin/python bench/bench_api.py --old-src /tmp/oldapi/src
       [--levels 1x6,16x3,64x1,m16x3] [--max-tokens 32]
Never run as a test: it takes several minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
QUESTIONS = ["What is the capital of France?", "Explain photosynthesis in one paragraph.", "Write a haiku about rain.",
             "What are three uses of a paperclip?", "Describe the water cycle.", "Why is the sky blue?",
             "Give me a short recipe for pancakes.", "What is machine learning?", "Tell me about the Moon.",
             "How do airplanes fly?", "List four farm animals.", "What is a prime number?",
             "Summarize the plot of Cinderella.", "How does a bicycle work?", "What causes the seasons?",
             "Write two sentences about the ocean."]
LONG_TEXT = ("The history of bread goes back at least thirty thousand years. Early people ground wild grains between "
             "stones, mixed the flour with water and baked flat cakes on hot rocks. Leavened bread came later, when "
             "bakers in Egypt noticed that dough left in the warm air rose and gave a lighter loaf. The Romans built "
             "public bakeries and guilds of bakers, and mills driven by water or animals ground flour for whole "
             "cities. In the middle ages the colour of one's bread showed one's rank: white bread for the rich, dark "
             "rye and barley loaves for the poor. The industrial age brought roller mills, commercial yeast and "
             "sliced bread, and today bakers are rediscovering sourdough, old grains and long fermentation. ")
MIXED_TOKENS = (16, 96, 32, 64)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1x6,16x3,64x1,m16x3",
                    help="comma-separated CLIENTSxREQUESTS levels; an 'm' prefix makes a mixed-workload level")
    ap.add_argument("--max-tokens", type=int, default=32, help="max_tokens of the uniform levels' requests")
    ap.add_argument("--max-batch", type=int, default=16, help="the servers' --max-batch")
    ap.add_argument("--old-src", type=Path, required=True, help="the src/ folder of the old code (commit 689b112)")
    ap.add_argument("--old-label", default="the code at commit 689b112 (a batch is fixed once it starts)",
                    help="what OLD is, for the results page (an A/B of two versions of this engine names its own)")
    ap.add_argument("--config", default="examples/quickstart_lora_sft.yaml", help="the servers' config")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="where results are written")
    ap.add_argument("--date", default=datetime.date.today().isoformat(), help="date in the results' file names")
    return ap.parse_args(argv)


@dataclass(frozen=True)
class Level:
    """clients threads sending requests each; mixed: short and long prompts, varied max_tokens."""

    clients: int
    requests: int
    mixed: bool

    @property
    def name(self) -> str:
        """As given on the command line."""
        return f"{'m' if self.mixed else ''}{self.clients}x{self.requests}"


def parse_levels(text: str) -> list[Level]:
    """'1x6,m16x3' -> levels."""
    levels = []
    for part in text.split(","):
        mixed = part.startswith("m")
        clients, requests = part.removeprefix("m").split("x")
        levels.append(Level(int(clients), int(requests), mixed))
    return levels


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One running server: which code, its process and URL."""

    name: str
    process: subprocess.Popen
    base: str
    startup_s: float


def start_server(name: str, src: Path, args: argparse.Namespace, workdir: Path) -> Server:
    """The API server process running the code under src, once /health answers."""
    port = free_port()
    log = (workdir / f"{name}.log").open("w")
    command = [sys.executable, "-m", "tunelab", "api", args.config, f"output_dir={workdir / 'none'}",
               "--port", str(port), "--max-batch", str(args.max_batch)]
    started = time.monotonic()
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(src)}
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the {name} server exited:\n{(workdir / f'{name}.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return Server(name, process, base, time.monotonic() - started)
        except httpx.HTTPError:
            pass
        time.sleep(0.25)


def request_of(level: Level, client: int, index: int, max_tokens: int) -> tuple[str, int]:
    """The question and max_tokens of one request of a level."""
    number = client * level.requests + index
    question = QUESTIONS[number % len(QUESTIONS)]
    if not level.mixed:
        return question, max_tokens
    if number % 3 == 1:
        question = f"Summarize this text in two sentences.\n\n{LONG_TEXT}"
    return question, MIXED_TOKENS[number % len(MIXED_TOKENS)]


def one_request(client: openai.OpenAI, question: str, max_tokens: int) -> dict[str, float]:
    """One streaming chat request: latency, time to first token, completion tokens."""
    start = time.perf_counter()
    first = None
    tokens = 0
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                            max_tokens=max_tokens, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    latency = time.perf_counter() - start
    return {"latency_s": latency, "ttft_s": first if first is not None else latency, "completion_tokens": tokens}


def percentile(values: list[float], share: float) -> float:
    """The share-quantile of values (linear interpolation)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all CPUs)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def our_seconds(server_pid: int) -> float:
    """CPU seconds of the server process and of this process (the clients)."""
    total = 0.0
    for process in (psutil.Process(server_pid), psutil.Process()):
        times = process.cpu_times()
        total += times.user + times.system
    return total


def run_clients(server: Server, level: Level, args: argparse.Namespace) -> tuple[list[dict[str, float]], list[str]]:
    """The level's threads against one server; every request's figures and the errors."""
    records: list[dict[str, float]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        client = openai.OpenAI(base_url=f"{server.base}/v1", api_key="none", max_retries=0, timeout=900)
        for r in range(level.requests):
            question, max_tokens = request_of(level, index, r, args.max_tokens)
            try:
                record = one_request(client, question, max_tokens)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                records.append(record)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(level.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records, errors


def run_level(server: Server, level: Level, args: argparse.Namespace) -> dict[str, Any]:
    """One level on one server; its figures."""
    busy, ours = busy_seconds(), our_seconds(server.process.pid)
    start = time.perf_counter()
    records, errors = run_clients(server, level, args)
    seconds = time.perf_counter() - start
    # CPU share taken by other processes: above ~10% the figures are disturbed
    other = ((busy_seconds() - busy) - (our_seconds(server.process.pid) - ours)) / (seconds * (os.cpu_count() or 1))
    latencies = [r["latency_s"] for r in records]
    ttfts = [r["ttft_s"] for r in records]
    tokens = sum(r["completion_tokens"] for r in records)
    figures = {"server": server.name, "level": level.name, "clients": level.clients, "requests": len(records),
               "errors": errors, "seconds": round(seconds, 2), "generated_tokens": tokens,
               "generated_tokens_per_s": round(tokens / seconds, 1), "other_load": round(max(other, 0.0), 3)}
    for name, values in (("latency", latencies), ("ttft", ttfts)):
        for share in (50, 95, 99):
            figures[f"{name}_p{share}_s"] = round(percentile(values, share / 100), 3)
    return figures


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
            "versions": {name: importlib.metadata.version(name)
                         for name in ("transformers", "fastapi", "uvicorn", "openai")}}


def ratios(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NEW over OLD per level run: generated tokens/s, and OLD over NEW for median TTFT and latency (>1: NEW
    better). `levels` holds both servers' figures of each level run in turn; a level name run again is numbered."""
    out = []
    seen: dict[str, int] = {}
    for first, second in zip(levels[::2], levels[1::2]):
        new, old = (first, second) if first["server"] == "new" else (second, first)
        seen[first["level"]] = seen.get(first["level"], 0) + 1
        name = first["level"] + (f" #{seen[first['level']]}" if seen[first["level"]] > 1 else "")
        speed = new["generated_tokens_per_s"] / old["generated_tokens_per_s"]
        out.append({"level": name, "tokens_per_s": round(speed, 2),
                    "ttft_p50": round(old["ttft_p50_s"] / new["ttft_p50_s"], 2),
                    "latency_p50": round(old["latency_p50_s"] / new["latency_p50_s"], 2)})
    return out


def sharing(result: dict[str, Any]) -> str:
    """What the page says about other work on the machine while it ran."""
    m, busiest = result["machine"], max((x["other_load"] for x in result["levels"]), default=0.0)
    if busiest < 0.05:
        return (f"A quiet machine: other processes took at most {busiest:.0%} of the CPUs during any level "
                "('other load' below).")
    return (f"**The machine was shared** with other work (load average {m['load_average'][0]:.1f} at the end on "
            f"{m['cpu_count']} CPUs; 'other load' per level below): absolute figures are low and noisy, compare the "
            "two systems within a level.")


def markdown(result: dict[str, Any]) -> str:
    """The results page."""
    m = result["machine"]
    lines = [f"# tunelab api under load: continuous batching against fixed batches ({result['date']})", "",
             f"Workload: `tunelab api {result['config']}` serving {MODEL} (base model, float32) with --max-batch "
             f"{result['max_batch']}. NEW: this tree (continuous batching); OLD: {result.get('old_label', 'the engine before it')}. "
             "Both servers ran side by side, each level on both, alternating which went "
             f"first. Levels CLIENTSxREQUESTS: streaming chat requests in a row per client, greedy, max_tokens "
             f"{result['max_tokens']}; 'm' levels mix short questions and a ~350-token text to summarize, max_tokens "
             "16/32/64/96.", "",
             f"Machine: {m['cpu']}, {m['cpu_count']} logical CPUs (AVX512-BF16, no AMX), torch {m['torch']}, "
             f"transformers {m['versions']['transformers']}. {sharing(result)}", "",
             "| level | server | requests | tokens/s | TTFT p50 | TTFT p95 | TTFT p99 | latency p50 | latency p95 "
             "| latency p99 | errors | other load |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for x in result["levels"]:
        lines.append(f"| {x['level']} | {x['server']} | {x['requests']} | {x['generated_tokens_per_s']} | "
                     f"{x['ttft_p50_s']} | {x['ttft_p95_s']} | {x['ttft_p99_s']} | {x['latency_p50_s']} | "
                     f"{x['latency_p95_s']} | {x['latency_p99_s']} | {len(x['errors'])} | {x['other_load']:.0%} |")
    lines += ["", "NEW against OLD (above 1: NEW better):", "",
              "| level | generated tokens/s | median TTFT | median latency |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['level']} | {r['tokens_per_s']}x | {r['ttft_p50']}x | {r['latency_p50']}x |"
              for r in result["ratios"]]
    lines += ["", "Latency: request sent to `[DONE]`; TTFT: request sent to the first chunk with content (any wait "
              "for a slot plus the prompt's prefill). Seconds throughout. Generated tokens/s: completion tokens of "
              "the usage chunks over the level's wall time. The clients run in the benchmark process and share the "
              "CPUs with the servers. 'other load' = CPU share used by other processes during the level.", ""]
    return "\n".join(lines)


def write(args: argparse.Namespace, servers: list[Server], figures: list[dict[str, Any]]) -> str:
    """Write the results so far (after every level: a run cut short still leaves its page); the page's text."""
    done = figures[:len(figures) - len(figures) % 2]  # both servers' figures of every level run so far
    result = {"date": args.date, "config": args.config, "max_batch": args.max_batch, "max_tokens": args.max_tokens,
              "old_label": args.old_label,
              "levels_asked": args.levels, "startup_s": {s.name: round(s.startup_s, 2) for s in servers},
              "machine": machine(), "levels": figures, "ratios": ratios(done)}
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"api_{args.date}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    page = markdown(result)
    stem.with_suffix(".md").write_text(page)
    return page


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    args = parse_args(argv)
    levels = parse_levels(args.levels)
    figures: list[dict[str, Any]] = []
    page = ""
    with tempfile.TemporaryDirectory(prefix="bench_api_") as tmp:
        servers = [start_server("old", args.old_src.resolve(), args, Path(tmp)),
                   start_server("new", REPO / "src", args, Path(tmp))]
        try:
            for server in servers:
                warm = openai.OpenAI(base_url=f"{server.base}/v1", api_key="none", max_retries=0, timeout=600)
                one_request(warm, QUESTIONS[0], args.max_tokens)
            for number, level in enumerate(levels):
                for server in (servers if number % 2 == 0 else servers[::-1]):
                    figures.append(run_level(server, level, args))
                    print(json.dumps(figures[-1]), flush=True)
                page = write(args, servers, figures)
        finally:
            for server in servers:
                server.process.terminate()
                server.process.wait(timeout=60)
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
