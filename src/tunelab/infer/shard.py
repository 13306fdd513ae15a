"""Prediction on several processes: each answers its share of the rows, and one file comes out in input order.

`predict_parallel` writes the resolved config next to the predictions and starts torchrun with
`python -m tunelab.infer.shard_worker CONFIG`: every worker loads the model, takes every world_size-th batch of the
length-sorted rows still unanswered (so each gets long and short prompts alike, and every row the batch mates it
has in one process) and appends its answers to its own hidden shard file. When all of them have finished, the shards are merged with the answers already there into
generated_predictions.jsonl, in the order of the dataset rows, and their reports into predict_report.json. A killed
run leaves its shards behind; the next run, on any number of processes, merges them first and answers only the
rest. No process group is needed: the workers share nothing but the files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tunelab.config.schema import SECTIONS, RunConfig
from tunelab.runtime import env, paths
from tunelab.runtime.atomic import write_text_atomic
from tunelab.runtime.logging import info

SHARD_CONFIG = ".predict_shards.yaml"


def partial_path(path: Path) -> Path:
    """The hidden file a single-process run appends to (renamed over `path` when every row is answered)."""
    return path.parent / f".{path.name}.partial"


def resume_file(path: Path) -> Path:
    """The file a run appends its answers to: a hidden sibling of the predictions file, renamed over it when every
    row is answered, so a file under the final name is always whole. It starts from an unfinished run's file, else
    from the finished file (new rows added), and ends at its last whole line (an interruption may tear one)."""
    partial = partial_path(path)
    if not partial.exists() and path.is_file():
        shutil.copyfile(path, partial)
    if partial.is_file():
        data = partial.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) != len(data):
            partial.write_bytes(whole)
    return partial


def answer_files(path: Path) -> tuple[Path, Path]:
    """(the file of the answers already there, the file this process appends to): in a single process both are
    resume_file's, with a killed parallel run's shards gathered into it; worker `rank` appends to its shard."""
    if env.world_size() == 1:
        partial = resume_file(path)
        gather_shards(path, partial)
        return partial, partial
    return partial_path(path), shard_path(path, env.process_rank())


def share(ids: Sequence[str], batch_size: int) -> set[str]:
    """The rows (ids, longest prompts first) this process answers: all of them, or in a worker every world-th batch
    from its rank. Whole batches, so each row meets the same batch mates as in one process: in bfloat16 a greedy
    answer can depend on them (shapes change the rounding)."""
    batches = [ids[start:start + batch_size] for start in range(0, len(ids), batch_size)]
    return {row for batch in batches[env.process_rank()::env.world_size()] for row in batch}


def finish(path: Path, partial: Path, order: Sequence[str], report: Mapping[str, object]) -> None:
    """The end of a run: a single process writes the predictions in row order and its report; a worker writes its
    report for predict_parallel, which merges the shards once every worker has finished."""
    out_dir = path.parent
    if env.world_size() > 1:
        write_text_atomic(shard_report_path(out_dir, env.process_rank()), json.dumps(report, ensure_ascii=False))
        return
    finish_in_order(path, partial, order)
    write_text_atomic(out_dir / paths.PREDICT_REPORT, json.dumps(report, indent=2, ensure_ascii=False))


def shard_path(path: Path, rank: int) -> Path:
    """The hidden file worker `rank` appends its answers to."""
    return path.parent / f".{path.name}.shard{rank}.partial"


def shard_report_path(out_dir: Path, rank: int) -> Path:
    """Worker `rank`'s report, merged into predict_report.json at the end."""
    return out_dir / f".{paths.PREDICT_REPORT}.shard{rank}"


def whole_lines(file: Path) -> list[str]:
    """The complete lines of a file an interruption may have torn (its last line may lack its newline)."""
    data = file.read_text(encoding="utf-8")
    return data[: data.rfind("\n") + 1].splitlines()


def line_id(line: str) -> str | None:
    """The row id of a predictions line (None for a line that is not one)."""
    try:
        value = json.loads(line)["id"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def gather_shards(path: Path, partial: Path) -> None:
    """Append the shard files' answers that `partial` lacks to it, then delete the shards (an interrupted gather is
    safe to repeat: answers already in `partial` are not added twice)."""
    shards = sorted(path.parent.glob(f".{path.name}.shard*.partial"))
    if not shards:
        return
    seen = {line_id(line) for line in whole_lines(partial)} if partial.is_file() else set()
    with partial.open("a", encoding="utf-8") as handle:
        for shard in shards:
            for line in whole_lines(shard):
                row = line_id(line)
                if row is not None and row not in seen:
                    seen.add(row)
                    handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    for shard in shards:
        shard.unlink()


def finish_in_order(path: Path, partial: Path, order: Sequence[str]) -> None:
    """Write the answers of `partial` to `path` in the dataset's row order (one line per id) and drop `partial`."""
    rank = {row: index for index, row in enumerate(order)}
    lines: dict[str, str] = {}
    for line in whole_lines(partial) if partial.is_file() else []:
        row = line_id(line)
        if row is not None:
            lines.setdefault(row, line)
    ordered = sorted(lines, key=lambda row: rank.get(row, len(rank)))
    write_text_atomic(path, "".join(lines[row] + "\n" for row in ordered))
    partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class ParallelReport:
    """What a parallel run did, from its merged predict_report.json."""

    written: int
    resumed: int
    generated_tokens: int
    too_long: list[dict[str, str | int]]
    processes: int


def merged_report(out_dir: Path, world: int) -> tuple[dict[str, object], ParallelReport]:
    """The workers' reports as one (the JSON and its figures): rows, resumed and too_long from rank 0 (every worker
    sees all rows), written and generated tokens summed, seconds of the slowest."""
    reports = [json.loads(shard_report_path(out_dir, rank).read_text(encoding="utf-8")) for rank in range(world)]
    written = sum(int(r["written"]) for r in reports)
    tokens = sum(int(r["generated_tokens"]) for r in reports)
    seconds = max(float(r["seconds"]) for r in reports)
    merged = {**reports[0], "written": written, "generated_tokens": tokens, "seconds": round(seconds, 2),
              "generated_tokens_per_s": round(tokens / seconds, 1) if seconds else 0.0, "processes": world}
    return merged, ParallelReport(written=written, resumed=int(reports[0]["resumed"]), generated_tokens=tokens,
                                  too_long=list(reports[0]["too_long"]), processes=world)


def config_yaml(config: RunConfig) -> str:
    """The config as flat YAML of the keys it sets: defaults stay unset, since some keys mean more when set (a
    do_sample the config sets itself overrides prediction's greedy default)."""
    import yaml

    flat: dict[str, object] = {}
    for name in SECTIONS:
        flat.update(getattr(config, name).model_dump(exclude_unset=True))
    return yaml.safe_dump(flat, allow_unicode=True, sort_keys=False)


def worker_command(config_file: Path, processes: int, prompts_only: bool,
                   python: str = sys.executable) -> list[str]:
    """torchrun on this machine (a free port of its own) running the shard workers."""
    return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "tunelab.infer.shard_worker", str(config_file), *(["--prompts-only"] if prompts_only else [])]


def worker_environment(processes: int) -> dict[str, str]:
    """The workers' environment: each its share of the CPU cores as threads (an OMP_NUM_THREADS set is kept)."""
    environ = dict(env.variables())
    if "OMP_NUM_THREADS" not in environ and not env.cuda_available():
        environ["OMP_NUM_THREADS"] = str(max(1, env.cpu_cores() // processes))
    return environ


def predict_parallel(config: RunConfig, processes: int, prompts_only: bool = False) -> ParallelReport:
    """Answer every eval row on `processes` worker processes; returns the merged report (predict_report.json)."""
    from tunelab.data.gather import load_prompts, load_records
    from tunelab.model.errors import ModelError

    out_dir = Path(config.train.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / paths.PREDICTIONS
    data = config.data.model_copy(update={"dataset": config.data.eval_dataset or config.data.dataset})
    records = load_prompts(data)[0] if prompts_only else load_records(data)[0]
    order = [f"{record.dataset}:{record.row}" for record in records]
    partial = resume_file(path)
    gather_shards(path, partial)
    for rank in range(processes):
        shard_report_path(out_dir, rank).unlink(missing_ok=True)
    config_file = out_dir / SHARD_CONFIG
    config_file.write_text(config_yaml(config), encoding="utf-8")
    environ = worker_environment(processes)
    threads = environ.get("OMP_NUM_THREADS")
    info(f"predicting on {processes} processes" + (f", {threads} CPU thread(s) each" if threads else ""))
    code = subprocess.run(worker_command(config_file, processes, prompts_only), env=environ).returncode
    gather_shards(path, partial)  # what the workers wrote, whole or not: a rerun starts from it
    if code != 0:
        raise ModelError(f"a prediction worker failed (exit code {code}); the answers written so far are kept in "
                         f"{partial}: run the same command again to answer the rest")
    finish_in_order(path, partial, order)
    report, figures = merged_report(out_dir, processes)
    write_text_atomic(out_dir / paths.PREDICT_REPORT, json.dumps(report, indent=2, ensure_ascii=False))
    for rank in range(processes):
        shard_report_path(out_dir, rank).unlink(missing_ok=True)
    config_file.unlink(missing_ok=True)
    return figures


def worker_device(use_cpu: bool) -> str:
    """Where a worker decodes: GPU LOCAL_RANK when GPUs are visible (and use_cpu is not set), else the CPU."""
    return f"cuda:{env.local_rank()}" if not use_cpu and env.cuda_available() else "cpu"
