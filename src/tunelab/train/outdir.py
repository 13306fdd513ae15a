"""What a run does with its output_dir: start fresh, resume the same run from its last complete checkpoint,
or refuse to mix with a different run. Deciding reads only; every process decides the same, and only the
main process changes files."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tunelab.config.schema import BackendSection, ExportSection, RunConfig
from tunelab.runtime import paths
from tunelab.train import checkpoints

# files that mark a folder as holding a run, and the other files a run writes (replaced on overwrite)
RUN_MARKS = (paths.CONFIG, paths.LOG, paths.METRICS, paths.SUMMARY, "adapter_model.safetensors",
             "adapter_config.json", "model.safetensors", "model.safetensors.index.json", "trainer_state.json",
             "training_args.bin")
RUN_FILES = RUN_MARKS + (paths.LOSS_PNG, paths.EVAL_LOSS_PNG, paths.DATA_REPORT, paths.TENSORBOARD, "README.md",
                         "config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                         "special_tokens_map.json", "generation_config.json", "all_results.json",
                         "eval_results.json", "pissa_init")
# keys that may change between attempts of one run (where it is, how it is watched, launched or saved; not
# what it learns)
SAME_RUN_IGNORES = frozenset({
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "plot_loss", "report_to", "logging_steps", "save_total_limit",
    "dataloader_num_workers", "preprocessing_num_workers", "ddp_timeout", "overwrite_cache", "tokenized_path",
    "per_device_eval_batch_size", "nproc_per_node", "nnodes", "node_rank", "master_addr", "master_port",
    "include_num_input_tokens_seen", "include_effective_tokens_per_second", "eval_tasks", "eval_models",
    "max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "do_predict",
    "predict_with_generate", "infer_dtype"}) | frozenset(ExportSection.model_fields) | frozenset(
    BackendSection.model_fields)  # export: after training; the backend: how it is asked afterwards


class RunError(Exception):
    """A run that cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class Start:
    """How the run starts: from scratch or from a checkpoint, what to clear first, and what to tell the user."""

    resume: Path | None = None
    clear: bool = False  # remove the earlier files of this output_dir first
    note: str | None = None


def comparable(values: dict[str, Any]) -> dict[str, Any]:
    """Config values as YAML reads them back, without the keys that may change between attempts."""
    dumped = yaml.safe_load(yaml.safe_dump({k: v for k, v in values.items() if k not in SAME_RUN_IGNORES}))
    return dumped or {}


def config_changes(output_dir: Path, config: RunConfig) -> list[str] | None:
    """'key: old -> new' for each setting that differs from the run saved in output_dir (None: no saved config)."""
    from tunelab.config.errors import ConfigError
    from tunelab.config.load import read_yaml

    saved_path = output_dir / paths.CONFIG
    if not saved_path.is_file():
        return None
    try:
        saved = comparable(read_yaml(saved_path))
    except ConfigError:
        return None
    current = comparable(config.flat())
    return [f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in sorted(set(saved) | set(current))
            if saved.get(key) != current.get(key)]


def run_marks(output_dir: Path) -> list[str]:
    if not output_dir.is_dir():
        return []
    marks = [name for name in RUN_MARKS if (output_dir / name).exists()]
    return marks + [c.path.name for c in checkpoints.checkpoints(output_dir)]


def explicit_resume(value: bool | str | None) -> Path | None:
    if isinstance(value, str) and value.strip().lower() not in ("true", "false", ""):
        return Path(value).expanduser()
    return None


def wants_last(value: bool | str | None) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def checked_checkpoint(path: Path) -> Path:
    match = checkpoints.NAME.match(path.name)
    if not path.is_dir() or not match:
        raise RunError(f"resume_from_checkpoint: {path} is not a checkpoint-N folder; give one (or true for the last "
                       "complete checkpoint of output_dir)")
    found = checkpoints.inspect(path, int(match.group(1)))
    if found.problem:
        raise RunError(f"resume_from_checkpoint: {path} cannot be resumed from: {found.problem}; give another "
                       "checkpoint (or true for the last complete one)")
    return path


def plan_start(config: RunConfig) -> Start:
    """Decide how this run uses its output_dir (reads only)."""
    output_dir = Path(config.train.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise RunError(f"output_dir: {output_dir} is a file; give a folder path")
    requested = config.train.resume_from_checkpoint
    if explicit_resume(requested) is not None:
        refuse_other_run(output_dir, config)
        path = checked_checkpoint(explicit_resume(requested))
        return Start(resume=path, note=f"resuming from {path} (resume_from_checkpoint)")
    if wants_last(requested):
        refuse_other_run(output_dir, config)
        last = checkpoints.last_complete(output_dir)
        if last is None:
            raise RunError(f"resume_from_checkpoint: true, but {output_dir} holds no complete checkpoint; remove "
                           "resume_from_checkpoint to start from scratch")
        return Start(resume=last.path, note=f"resuming from {last.path} (resume_from_checkpoint: true)")
    marks = run_marks(output_dir)
    if config.train.overwrite_output_dir:
        return Start(clear=bool(marks), note=f"overwrite_output_dir: replacing the run in {output_dir}" if marks else None)
    if not marks:
        return Start()
    refuse_other_run(output_dir, config)
    if (output_dir / paths.METRICS).exists():
        raise RunError(f"output_dir: {output_dir} holds a finished run of this config ({paths.METRICS}); set "
                       "overwrite_output_dir: true to train it again, or choose another output_dir")
    last = checkpoints.last_complete(output_dir)
    if last is None:
        return Start(clear=True, note=f"{output_dir} holds an unfinished attempt of this run without a complete "
                                      "checkpoint: starting again from step 0")
    return Start(resume=last.path, note=f"resuming from {last.path}: {output_dir} holds an unfinished run of this "
                                         "config (set overwrite_output_dir: true to start over)")


def refuse_other_run(output_dir: Path, config: RunConfig) -> None:
    """Stop when output_dir holds a run of different settings (or of unknown settings)."""
    marks = run_marks(output_dir)
    if not marks:
        return
    changes = config_changes(output_dir, config)
    fix = "set overwrite_output_dir: true to replace it (its files are deleted), or choose another output_dir"
    if changes is None:
        raise RunError(f"output_dir: {output_dir} already holds a run ({', '.join(marks[:4])}) whose settings are "
                       f"unknown ({paths.CONFIG} missing or unreadable); {fix}")
    if changes:
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        raise RunError(f"output_dir: {output_dir} holds a different run ({shown}); {fix}")


def prepare(config: RunConfig, start: Start, main: bool) -> list[str]:
    """Make output_dir ready for the start decided (main process only); returns what was done, for the console."""
    output_dir = Path(config.train.output_dir)
    done: list[str] = []
    if not main:
        return done
    if start.clear:
        for name in RUN_FILES:
            remove(output_dir / name)
        for checkpoint in checkpoints.checkpoints(output_dir):
            remove(checkpoint.path)
    if start.resume is not None and start.resume.parent.resolve() == output_dir.resolve():
        step = int(checkpoints.NAME.match(start.resume.name).group(1))
        for broken in checkpoints.incomplete_after(output_dir, step):
            remove(broken.path)
            done.append(f"removed {broken.path.name}: {broken.problem}")
        kept = truncate_log(output_dir / paths.LOG, step)
        if kept is not None:
            done.append(f"{paths.LOG}: kept the {kept} records up to step {step}")
    output_dir.mkdir(parents=True, exist_ok=True)
    return done


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def truncate_log(log: Path, step: int) -> int | None:
    """Drop the step-log records written after the checkpoint a run resumes from (they are trained again)."""
    if not log.is_file():
        return None
    kept = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        if record.get("step", 0) <= step:
            kept.append(json.dumps(record))
    log.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return len(kept)
