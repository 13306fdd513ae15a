"""When a task's generated_predictions.jsonl can be reused: same model files, data and generation settings.

The fingerprint is written next to the predictions (predict_fingerprint.json). An unchanged fingerprint
reuses the file (and an interrupted file is completed by `predict`'s resume); a changed one starts over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Union

from tunelab.config.schema import RunConfig
from tunelab.runtime.names import split_names
from tunelab.data.registry import lookup, sha1_of
from tunelab.eval.predictions import read_predictions
from tunelab.eval.results import Answer
from tunelab.infer.predict import PREDICTIONS, prediction_settings

FINGERPRINT = "predict_fingerprint.json"
# name, size, mtime of a file; one such list per file of a folder; the path when it does not exist
Stamp = list[Union[str, int, "Stamp"]]
Fingerprint = dict[str, object]  # JSON-ready


def file_stamp(path: Path) -> Stamp:
    """Size and modification time of a file or of every file in a folder (cheap, catches retraining)."""
    if path.is_file():
        stat = path.stat()
        return [path.name, stat.st_size, int(stat.st_mtime)]
    if path.is_dir():
        return [file_stamp(child) for child in sorted(path.iterdir()) if child.is_file()]
    return [str(path)]


# Bumped when the text made from the same tokens changes: 2 = an answer cut inside a character ends before it
# (predictions from before end in U+FFFD and are made again, once).
DECODING_VERSION = 2


def prediction_fingerprint(config: RunConfig) -> Fingerprint:
    """Everything that changes a prediction: model, adapters, template, data file, limits, generation settings."""
    adapters = split_names(config.model.adapter_name_or_path)
    model = Path(config.model.model_name_or_path)
    datasets = lookup(split_names(config.data.eval_dataset), config.data.dataset_dir)
    return {
        "model": config.model.model_name_or_path,
        "model_files": file_stamp(model) if model.exists() else None,
        "adapters": {a: file_stamp(Path(a)) for a in adapters},
        "template": config.data.template,
        "default_system": config.data.default_system,
        "cutoff_len": config.data.cutoff_len,
        "max_samples": config.data.max_samples,
        "data": [sha1_of(d.path) if d.path and d.path.is_file() else file_stamp(d.path) for d in datasets],
        "generation": prediction_settings(config.infer).model_dump(),
        "seed": config.train.seed,
        "decoding": DECODING_VERSION,
    }


def reuse_or_reset(folder: Path, fingerprint: Fingerprint) -> bool:
    """True when the predictions there were made the same way; otherwise remove them so they are regenerated."""
    predictions, stamp = folder / PREDICTIONS, folder / FINGERPRINT
    if not predictions.is_file():
        return False
    try:
        same = json.loads(stamp.read_text(encoding="utf-8")) == json.loads(json.dumps(fingerprint))
    except (OSError, json.JSONDecodeError):
        same = False
    if not same:
        predictions.unlink()
    return same


def save_fingerprint(folder: Path, fingerprint: Fingerprint) -> None:
    """Record how the predictions in folder were made."""
    (folder / FINGERPRINT).write_text(json.dumps(fingerprint, indent=2, ensure_ascii=False), encoding="utf-8")


def answers_from_run(path: Path, expected: list[Answer]) -> tuple[list[Answer], list[str]]:
    """The run's answers in dataset order; rows it did not answer (too long) get an empty answer and are listed."""
    written = path.is_file() and path.read_text(encoding="utf-8").strip()
    by_id = {str(row.get("id")): row for row in read_predictions(path)} if written else {}
    answers, missing = [], []
    for want in expected:
        row = by_id.get(want.id)
        if row is None:
            missing.append(want.id)
        answers.append(Answer(id=want.id, prompt=str(row["prompt"]) if row else want.prompt, label=want.label,
                              predict=str(row["predict"]) if row else ""))
    return answers, missing
