"""Checks of names that can be checked without loading anything: the chat template against the shipped ones, and
dataset names against <dataset_dir>/dataset_info.json when that file is there (a later run reads the same file)."""

from __future__ import annotations

from pathlib import Path

from tunelab.config.errors import Problem
from tunelab.config.schema import DataSection
from tunelab.config.templates import template_names
from tunelab.runtime import strict_json
from tunelab.runtime.names import split_names
from tunelab.runtime.suggest import suggest

REGISTRY_FILE = "dataset_info.json"


def template_check(data: DataSection) -> list[Problem]:
    """`template:` must name a shipped template (`tunelab templates` lists them)."""
    if not data.template or data.template in template_names():
        return []
    names = template_names()
    return [Problem("template", f"no template named {data.template!r}{suggest(data.template, names)}; use one of: "
                                f"{', '.join(names)}, or leave it out to use the model's own chat template")]


def registered_names(dataset_dir: str) -> list[str] | None:
    """The entry names of dataset_dir's dataset_info.json; None when there is no such file or it does not parse
    (the data layer reports that file's own problems when it reads it)."""
    path = Path(dataset_dir) / REGISTRY_FILE
    try:
        raw = strict_json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return list(raw) if isinstance(raw, dict) else None


def unknown_names(key: str, value: str | None, dataset_dir: str, known: list[str]) -> list[Problem]:
    """A problem for each name in value that is not an entry of dataset_dir's dataset_info.json."""
    problems = []
    for name in split_names(value or ""):
        if name not in known:
            listing = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
            problems.append(Problem(key, f"{name!r} is not an entry of {Path(dataset_dir) / REGISTRY_FILE}"
                                         f"{suggest(name, known)}; use one of: {listing or 'none yet'}, or add "
                                         f"it with `tunelab data register FILE --name {name}`"))
    return problems


def dataset_names_check(data: DataSection) -> list[Problem]:
    """Training reads dataset and eval_dataset: each name must be an entry of dataset_info.json (when the file is
    there)."""
    known = registered_names(data.dataset_dir)
    if known is None:
        return []
    return (unknown_names("dataset", data.dataset, data.dataset_dir, known)
            + unknown_names("eval_dataset", data.eval_dataset, data.dataset_dir, known))


def predict_names_check(data: DataSection) -> list[Problem]:
    """Prediction reads eval_dataset (default: dataset): only those names must be entries."""
    known = registered_names(data.dataset_dir)
    if known is None:
        return []
    key = "eval_dataset" if data.eval_dataset else "dataset"
    return unknown_names(key, getattr(data, key), data.dataset_dir, known)
