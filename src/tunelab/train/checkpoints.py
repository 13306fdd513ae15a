"""Checkpoints in an output folder: which are complete, which one a run resumes from.

The Trainer writes a checkpoint's files one after the other and trainer_state.json last (before it deletes
older checkpoints), so a checkpoint is complete when its trainer_state.json parses and names its step, its
weights are there and, for resuming, its optimizer and scheduler states. A checkpoint cut short by a kill
fails one of these and is never resumed from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"^checkpoint-(\d+)$")
STATE = "trainer_state.json"
WEIGHTS = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "adapter_model.bin")
RESUME_STATE = ("optimizer.pt", "scheduler.pt")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    problem: str | None  # why it cannot be resumed from; None when complete


def inspect(path: Path, step: int) -> Checkpoint:
    """A checkpoint folder and whether a run can resume from it."""
    try:
        state = json.loads((path / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Checkpoint(path, step, f"no {STATE} (cut short while being written)")
    except (ValueError, UnicodeDecodeError):
        return Checkpoint(path, step, f"{STATE} is truncated (cut short while being written)")
    if state.get("global_step") != step:
        return Checkpoint(path, step, f"{STATE} is for step {state.get('global_step')}, not {step}")
    if not any((path / name).is_file() for name in WEIGHTS):
        return Checkpoint(path, step, "no weights file")
    deepspeed = any(child.name.startswith("global_step") for child in path.iterdir() if child.is_dir())
    missing = [name for name in RESUME_STATE if not (path / name).is_file()]
    if missing and not deepspeed:
        return Checkpoint(path, step, f"no {' or '.join(missing)} (saved with save_only_model: weights only)")
    return Checkpoint(path, step, None)


def checkpoints(output_dir: Path) -> list[Checkpoint]:
    """Every checkpoint-N folder in output_dir, oldest step first."""
    if not output_dir.is_dir():
        return []
    found = [(int(match.group(1)), child) for child in output_dir.iterdir()
             if child.is_dir() and (match := NAME.match(child.name))]
    return [inspect(path, step) for step, path in sorted(found)]


def last_complete(output_dir: Path) -> Checkpoint | None:
    """The complete checkpoint with the highest step."""
    complete = [c for c in checkpoints(output_dir) if c.problem is None]
    return complete[-1] if complete else None


def incomplete_after(output_dir: Path, step: int) -> list[Checkpoint]:
    """Checkpoints that cannot be resumed from and are newer than step (left by a run killed while saving)."""
    return [c for c in checkpoints(output_dir) if c.problem is not None and c.step > step]
