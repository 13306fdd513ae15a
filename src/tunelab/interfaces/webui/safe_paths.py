"""Paths typed into the web UI, checked before anything is written or started.

A relative path must stay inside the working folder (the folder `tunelab webui` was started in): `../` cannot
walk out of it. An absolute path is taken as the user typed it. Paths that must already exist are checked too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tunelab.config.errors import ConfigError, Problem

# config keys that hold folders or files; those in MUST_EXIST are read, the others may be created
PATH_KEYS: tuple[str, ...] = ("adapter_name_or_path", "cache_dir", "dataset_dir", "tokenized_path", "media_dir",
                              "output_dir", "export_dir")
MUST_EXIST: tuple[str, ...] = ("adapter_name_or_path", "dataset_dir", "media_dir")
T = TypeVar("T")


def checked_path(where: str, text: str, workdir: Path, must_exist: bool = False) -> Path:
    """The path `text` (relative to workdir), or a ConfigError naming `where` when it escapes or is missing."""
    text = text.strip()
    if not text or "\x00" in text:
        raise ConfigError([Problem(where, "give a path")])
    path = Path(text).expanduser()
    if not path.is_absolute():
        root = workdir.resolve()
        resolved = (root / path).resolve()
        if not resolved.is_relative_to(root):
            raise ConfigError([Problem(where, f"{text} leads outside the working folder {root}; give a path inside "
                                       "it, or an absolute path")])
        path = resolved
    if must_exist and not path.exists():
        raise ConfigError([Problem(where, f"{text} does not exist; give an existing path")])
    return path


def collect(problems: list[Problem], check: Callable[[], T]) -> T | None:
    """check()'s value, or None with its ConfigError's problems added to `problems` (to report them together)."""
    try:
        return check()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def looks_like_path(text: str) -> bool:
    """Whether a model name is meant as a local path (not an alias or a hub id like org/name)."""
    return text.startswith(("/", "./", "../", "~")) or ".." in Path(text).parts or text.endswith(".gguf")


def check_config_paths(flat: dict[str, object], workdir: Path) -> None:
    """Check every path key of a flat config; all problems are reported together."""
    problems: list[Problem] = []
    for key in PATH_KEYS:
        value = flat.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        parts = value.split(",") if key == "adapter_name_or_path" else [value]
        for part in parts:
            collect(problems, lambda: checked_path(key, part, workdir, must_exist=key in MUST_EXIST))
    model = flat.get("model_name_or_path")
    if isinstance(model, str) and looks_like_path(model):
        collect(problems, lambda: checked_path("model_name_or_path", model, workdir, must_exist=True))
    resume = flat.get("resume_from_checkpoint")
    if isinstance(resume, str) and resume.strip().lower() not in ("true", "false", ""):
        collect(problems, lambda: checked_path("resume_from_checkpoint", resume, workdir, must_exist=True))
    if problems:
        raise ConfigError(problems)
