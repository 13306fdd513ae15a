"""One trial: `tunelab train` on the YAML the sweep writes into the trial folder, then `tunelab eval` when the config
has eval_tasks, each in its own process (argument lists, never a shell); the objective read from what they wrote."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tunelab.runtime import env, paths
from tunelab.runtime.processes import tunelab_argv

TRIAL_YAML = "trial.yaml"
EVAL_YAML = "eval.yaml"
TRIAL_LOG = "trial.log"
EVAL_DIR = "eval"
POLL_S = 1.0
BEAT_S = 5.0  # how often a running trial tells the ledger its worker is alive (well inside ledger.GRACE_S)
ADAPTER_TYPES = ("lora",)
INTERRUPT_CODES = (130, -2, -15, 143)  # ended by SIGINT or SIGTERM: the sweep is stopping, not the trial failing

# called with (step, eval loss) for every eval loss logged during training; True stops the trial (pruned)
Reporter = Callable[[int, float], bool]


@dataclass(frozen=True)
class Outcome:
    """How a trial ended: complete (with the objective), pruned, failed (with the error) or interrupted."""

    state: str
    value: float | None = None
    error: str | None = None
    seconds: float = 0.0


class Interrupted(Exception):
    """The sweep is stopping (Ctrl-C, SIGTERM): the trial's process was ended and the trial is to be resumed."""


def write_yaml(path: Path, flat: dict[str, object]) -> None:
    """A flat config as YAML, keys in the order given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(flat, sort_keys=False, allow_unicode=True), encoding="utf-8")


def eval_flat(flat: dict[str, object], folder: Path) -> dict[str, object]:
    """The eval config of a trained trial: its model (adapter or whole model) scored into <trial>/eval."""
    out = dict(flat)
    if out.get("finetuning_type", "lora") in ADAPTER_TYPES:
        out["adapter_name_or_path"] = str(folder)
    else:
        out["model_name_or_path"] = str(folder)
        out.pop("adapter_name_or_path", None)
    out["output_dir"] = str(folder / EVAL_DIR)
    return out


def child_env(device: str | None) -> dict[str, str]:
    """The environment of a trial's processes: this one's, plain console output, and the trial's device."""
    variables = {**env.variables(), "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    if device is not None:
        variables["CUDA_VISIBLE_DEVICES"] = device
    return variables


def last_error(log: Path) -> str:
    """What the failed command said: its last 'tunelab:' message (with the lines under it), else the log's tail."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.is_file() else []
    starts = [i for i, line in enumerate(lines) if line.startswith("tunelab:") and (
        "error" in line or "problem" in line or "interrupted" in line)]
    picked = lines[starts[-1]:] if starts else lines[-6:]
    text = "\n".join(line.rstrip() for line in picked if line.strip())
    return text.removeprefix("tunelab: error: ").removeprefix("tunelab: ")[:2000] or "no output"


def headline(error: str) -> str:
    """The first line of an error, for tables and the console (the whole of it is in trial.log and the JSON)."""
    return error.strip().splitlines()[0][:200] if error.strip() else error


class LogReader:
    """The eval losses a running trial appends to run.jsonl, read as they arrive."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key, self.offset, self.seen = path, key, 0, 0

    def new_losses(self) -> list[tuple[int, float]]:
        """(step, loss) of the records written since the last call (a half-written last line waits)."""
        if not self.path.is_file():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        found = []
        for line in chunk[:end].decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get(self.key), (int, float)):
                found.append((int(record.get("step", 0)), float(record[self.key])))
        return found


def run_command(argv: list[str], log: Path, device: str | None, stop: threading.Event,
                watch: Callable[[], bool] | None = None, started: Callable[[int], None] | None = None) -> int | None:
    """Run one tunelab command, its output appended to the trial log; None when `watch` asked to stop it (pruned).
    Raises Interrupted when the sweep stops."""
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"\n$ {' '.join(argv)}\n")
        handle.flush()
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=child_env(device))
        try:
            if started is not None:
                started(process.pid)
            while process.poll() is None:
                if stop.wait(POLL_S):
                    raise Interrupted()
                if watch is not None and watch():
                    end(process)
                    return None
            if stop.is_set() or process.returncode in INTERRUPT_CODES:  # Ctrl-C reached the child first
                raise Interrupted()
            return process.returncode
        finally:
            end(process)


def end(process: subprocess.Popen) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def objective(folder: Path, metric: str) -> float:
    """The objective from a finished trial's files: an eval loss from run_summary.json, or TASK:METRIC from the
    eval report. A missing figure is a ValueError naming the file."""
    task, sep, name = metric.partition(":")
    if not sep:
        summary = json.loads((folder / paths.SUMMARY).read_text(encoding="utf-8"))
        value = summary.get("final_eval", {}).get(metric)
        if value is None:
            raise ValueError(f"{metric} is not in {folder / paths.SUMMARY} (was there an eval set?)")
        return float(value)
    report = folder / EVAL_DIR / "eval_results.json"
    results = json.loads(report.read_text(encoding="utf-8"))["results"]
    metrics = next(iter(results.values())).get(task, {}).get("metrics", {})
    if name not in metrics:
        raise ValueError(f"{task}:{name} is not in {report}; the task's metrics are {', '.join(metrics) or 'none'}")
    return float(metrics[name])


@dataclass
class TrialRun:
    """Everything one trial needs: its folder, configs, objective, device and the sweep's stop signal."""

    folder: Path
    flat: dict[str, object]
    metric: str
    device: str | None
    stop: threading.Event
    reporter: Reporter | None = None
    heartbeat: Callable[[], None] | None = None
    started: Callable[[int], None] | None = None  # told each command's process id

    def run(self) -> Outcome:
        """Train (unless a finished run is there already), evaluate, read the objective."""
        started = time.time()
        log = self.folder / TRIAL_LOG
        write_yaml(self.folder / TRIAL_YAML, self.flat)
        if not (self.folder / paths.METRICS).is_file():  # a run finished before the sweep was killed is kept
            code = run_command(tunelab_argv("train", str(self.folder / TRIAL_YAML)), log, self.device, self.stop,
                               self.watch(prune=True), self.started)
            if code is None:
                return Outcome("pruned", seconds=time.time() - started)
            if code != 0:
                return Outcome("failed", error=last_error(log), seconds=time.time() - started)
        if self.flat.get("eval_tasks"):
            write_yaml(self.folder / EVAL_YAML, eval_flat(self.flat, self.folder))
            code = run_command(tunelab_argv("eval", str(self.folder / EVAL_YAML)), log, self.device, self.stop,
                               self.watch(prune=False), self.started)
            if code != 0:
                return Outcome("failed", error="eval: " + last_error(log), seconds=time.time() - started)
        try:
            value = objective(self.folder, self.metric)
        except (OSError, ValueError, KeyError, StopIteration) as exc:
            return Outcome("failed", error=f"objective: {exc}", seconds=time.time() - started)
        return Outcome("complete", value=value, seconds=time.time() - started)

    def watch(self, prune: bool = True) -> Callable[[], bool]:
        """The check made every second while training: heartbeat, and pruning from new eval losses."""
        reader = LogReader(self.folder / paths.LOG, self.metric if self.metric.startswith("eval_") else "eval_loss")
        last_beat = [0.0]

        def check() -> bool:
            if self.heartbeat is not None and time.time() - last_beat[0] > BEAT_S:
                self.heartbeat()
                last_beat[0] = time.time()
            if self.reporter is None or not prune:
                return False
            return any(self.reporter(step, loss) for step, loss in reader.new_losses())

        return check
