"""The config keys the shared top bar stands for: model, template, finetuning type and the run folder."""

from __future__ import annotations

from pathlib import Path

from tunelab.config.errors import ConfigError, Problem


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


def run_folder(run_dir: str | None, required: bool) -> Path | None:
    """The run folder of the top bar, checked to be a folder when it is given (or needed)."""
    text = blank(run_dir)
    if text is None:
        if required:
            raise ConfigError([Problem("output_dir", "no run folder chosen; pick a finished run in the top bar")])
        return None
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ConfigError([Problem("output_dir", f"{path}: no such folder; pick a run folder that exists")])
    return path


def adapter_list(run_dir: Path | None, extra: str | None) -> str | None:
    """adapter_name_or_path: the run folder (when it holds an adapter) then the extra folders, comma-separated;
    every extra folder must exist."""
    folders = [str(run_dir)] if run_dir and (run_dir / "adapter_config.json").is_file() else []
    for name in (blank(extra) or "").split(","):
        if name.strip():
            if not Path(name.strip()).expanduser().is_dir():
                raise ConfigError([Problem("adapter_name_or_path", f"{name.strip()}: no such folder; give adapter "
                                           "folders (comma-separated) that exist")])
            folders.append(name.strip())
    return ",".join(folders) or None
