"""The config keys the shared top bar stands for: model, template, finetuning type and the run folder."""

from __future__ import annotations

from pathlib import Path

from tunelab.config.errors import ConfigError, Problem
from tunelab.interfaces.webui.safe_paths import checked_path


def blank(value: str | None) -> str | None:
    """A form value with empty text meaning 'not set'."""
    text = (value or "").strip()
    return text or None


def model_keys(model: str | None, template: str | None, finetuning_type: str | None) -> dict[str, object]:
    """model_name_or_path, template (unset: the model's own) and finetuning_type, as flat config keys."""
    if not blank(model):
        raise ConfigError([Problem("model_name_or_path", "no model chosen; pick one in the top bar (an alias from "
                                   "`tunelab models`, a local folder or a hub id)")])
    keys: dict[str, object] = {"model_name_or_path": blank(model)}
    if blank(template):
        keys["template"] = blank(template)
    if blank(finetuning_type):
        keys["finetuning_type"] = blank(finetuning_type)
    return keys


def run_folder(run_dir: str | None, required: bool, workdir: Path) -> Path | None:
    """The run folder of the top bar (relative to the working folder, which it may not leave), checked to be a
    folder when it is given (or needed)."""
    text = blank(run_dir)
    if text is None:
        if required:
            raise ConfigError([Problem("output_dir", "no run folder chosen; pick a finished run in the top bar")])
        return None
    return existing_folder("output_dir", text, workdir, "pick a run folder that exists")


def adapter_list(run_dir: Path | None, extra: str | None, workdir: Path) -> str | None:
    """adapter_name_or_path: the run folder (when it holds an adapter) then the extra folders, comma-separated;
    every extra folder must exist inside the working folder (or be absolute)."""
    folders = [str(run_dir)] if run_dir and (run_dir / "adapter_config.json").is_file() else []
    for name in (blank(extra) or "").split(","):
        if name.strip():
            folders.append(str(existing_folder("adapter_name_or_path", name, workdir,
                                               "give adapter folders (comma-separated) that exist")))
    return ",".join(folders) or None


def existing_folder(where: str, text: str, workdir: Path, fix: str) -> Path:
    """A folder typed into the UI, by the web UI's path rule (safe_paths.checked_path), that must exist."""
    path = checked_path(where, text, workdir)
    if not path.is_dir():
        raise ConfigError([Problem(where, f"{text.strip()}: no such folder; {fix}")])
    return path
