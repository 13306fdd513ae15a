#!/usr/bin/env python
"""`tunelab api` under load: requests/s, generated tokens/s, latency and time to first token at 1, 4, 16 clients.

Starts `python -m tunelab api examples/quickstart_lora_sft.yaml` (SmolLM2-135M-Instruct, the base model: output_dir
is an empty temporary folder) on a free loopback port with --max-batch 16, sends one warm-up request, then for each
--clients level runs that many threads, each sending --requests streaming chat requests in a row with the official
openai client (max_tokens --max-tokens, greedy, include_usage). Per request: latency (request to [DONE]), time to
first token (request to the first content chunk) and completion tokens (the usage chunk). Writes
bench/results/api_<date>.json and .md.

Usage: flock /tmp/tunelab-bench.lock /path/to/venv/bin/python bench/bench_api.py [--clients 1,4,16] [--requests 8]
Never run as a test: it takes a few minutes on a 2-core CPU.
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="1,4,16", help="comma-separated numbers of concurrent clients")
    ap.add_argument("--requests", type=int, default=8, help="requests each client sends, one after another")
    ap.add_argument("--max-tokens", type=int, default=64, help="max_tokens of every request")
    ap.add_argument("--max-batch", type=int, default=16, help="the server's --max-batch")
    ap.add_argument("--config", default="examples/quickstart_lora_sft.yaml", help="the server's config")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="where results are written")
    ap.add_argument("--date", default=datetime.date.today().isoformat(), help="date in the results' file names")
    return ap.parse_args(argv)


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen, str, float]:
    """The API server process, its base URL and the seconds until /health answered."""
    port = free_port()
    log = (workdir / "server.log").open("w")
    command = [sys.executable, "-m", "tunelab", "api", args.config, f"output_dir={workdir / 'none'}",
               "--port", str(port), "--max-batch", str(args.max_batch)]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{(workdir / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base, time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)


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


def run_level(base: str, server_pid: int, clients: int, args: argparse.Namespace) -> dict[str, Any]:
    """clients threads, each sending args.requests requests; figures of the level."""
    records: list[dict[str, float]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0, timeout=600)
        for r in range(args.requests):
            try:
                record = one_request(client, QUESTIONS[(index * args.requests + r) % len(QUESTIONS)], args.max_tokens)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                records.append(record)

    before = httpx.get(f"{base}/health").json()
    busy, ours = busy_seconds(), our_seconds(server_pid)
    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    # CPU share taken by other processes: above ~10% the figures are disturbed
    other = ((busy_seconds() - busy) - (our_seconds(server_pid) - ours)) / (seconds * (os.cpu_count() or 1))
    after = httpx.get(f"{base}/health").json()
    latencies = [r["latency_s"] for r in records]
    ttfts = [r["ttft_s"] for r in records]
    tokens = sum(r["completion_tokens"] for r in records)
    batches = after["batches"] - before["batches"]
    return {"clients": clients, "requests": len(records), "errors": errors, "seconds": round(seconds, 2),
            "requests_per_s": round(len(records) / seconds, 3), "generated_tokens": tokens,
            "generated_tokens_per_s": round(tokens / seconds, 1),
            "mean_tokens_per_request": round(tokens / max(len(records), 1), 1),
            "latency_p50_s": round(percentile(latencies, 0.5), 3),
            "latency_p95_s": round(percentile(latencies, 0.95), 3),
            "ttft_p50_s": round(percentile(ttfts, 0.5), 3), "ttft_p95_s": round(percentile(ttfts, 0.95), 3),
            "batches": batches, "mean_batch": round(len(records) / max(batches, 1), 2),
            "largest_batch_so_far": after["largest_batch"], "other_load": round(max(other, 0.0), 3)}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    return {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "versions": {name: importlib.metadata.version(name)
                         for name in ("transformers", "fastapi", "uvicorn", "openai")}}


def markdown(result: dict[str, Any]) -> str:
    """The results page."""
    m = result["machine"]
    lines = [f"# tunelab api under load ({result['date']})", "",
             f"Workload: `tunelab api {result['config']}` serving {MODEL} (base model, float32) with --max-batch "
             f"{result['max_batch']}; each client sends {result['requests_per_client']} streaming chat requests in a "
             f"row (the official openai client, max_tokens {result['max_tokens']}, greedy, include_usage), "
             f"16 different questions. Server start to /health: {result['startup_s']} s.", "",
             f"Machine: {m['cpu']}, {m['cpu_count']} logical CPUs, torch {m['torch']}, transformers "
             f"{m['versions']['transformers']}, fastapi {m['versions']['fastapi']}, "
             f"uvicorn {m['versions']['uvicorn']}.", "",
             "| clients | requests | requests/s | generated tokens/s | tokens/request | latency p50 s | latency p95 s "
             "| TTFT p50 s | TTFT p95 s | batches | mean batch | errors | other load |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for level in result["levels"]:
        lines.append(f"| {level['clients']} | {level['requests']} | {level['requests_per_s']} | "
                     f"{level['generated_tokens_per_s']} | {level['mean_tokens_per_request']} | "
                     f"{level['latency_p50_s']} | {level['latency_p95_s']} | {level['ttft_p50_s']} | "
                     f"{level['ttft_p95_s']} | {level['batches']} | {level['mean_batch']} | {len(level['errors'])} | "
                     f"{level['other_load']:.0%} |")
    lines += ["", "Latency: request sent to `[DONE]`; TTFT: request sent to the first chunk with content (the "
              "prompt's prefill plus any wait for a batch slot). Generated tokens/s counts the completion tokens "
              "of the usage chunks over the level's wall time. Batches: generate() calls the engine ran during the "
              "level (/health counters); a batch is fixed once it starts (no continuous batching), so a request that "
              "arrives while one runs waits for it. The clients run in this process and share the CPUs with the "
              "server. 'other load' = CPU share used by other processes during the level (above ~10% the level is "
              "disturbed). Compare levels, not machines.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    args = parse_args(argv)
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_api_") as tmp:
        process, base, startup = start_server(args, Path(tmp))
        try:
            warm = openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0, timeout=600)
            one_request(warm, QUESTIONS[0], args.max_tokens)
            results = []
            for clients in levels:
                results.append(run_level(base, process.pid, clients, args))
                print(json.dumps(results[-1]), flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    result = {"date": args.date, "config": args.config, "max_batch": args.max_batch, "max_tokens": args.max_tokens,
              "requests_per_client": args.requests, "startup_s": round(startup, 2), "machine": machine(),
              "levels": results}
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"api_{args.date}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
