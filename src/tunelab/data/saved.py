"""`tokenized_path`: save the tokenized train/eval sets once, reuse them on later runs, and refuse stale ones.

The folder is a `datasets.DatasetDict` saved with `save_to_disk` (keys `train`, `validation` or
`validation_NAME`, as LLaMA-Factory saves it) plus `tunelab_data.json`: the fingerprint of everything that
shaped the tokens (data files by size and modification time, registry entries, tokenizer, chat template, data
keys, stage, seed) and the data report. A later run with a different fingerprint stops and names what changed,
instead of silently training on old tokens. A folder saved by LLaMA-Factory (no tunelab_data.json) is loaded as
it is, with a note in the report.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.config.schema import DataSection
from tunelab.data import registry
from tunelab.data.bundle import DataBundle, EvalSet, Packing
from tunelab.data.errors import DataError
from tunelab.data.report import DataReport
from tunelab.data.tokenizer import Tokenizer
from tunelab.runtime.atomic import atomic_folder
from tunelab.runtime.names import split_names

if TYPE_CHECKING:
    from datasets import Dataset

Fingerprint = dict[str, Any]  # JSON values: what shaped the tokens

META = "tunelab_data.json"
FORMAT = 1
# data keys that do not change the tokens (or are checked elsewhere)
NEUTRAL_KEYS = {"tokenized_path", "preprocessing_num_workers", "overwrite_cache", "streaming", "buffer_size",
                "disable_shuffling"}


def digest(text: str) -> str:
    """A short sha1 of some text."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def file_stamp(path: Path) -> dict[str, list[int]]:
    """A data file (or every file of a folder) by size and modification time."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p): [p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.exists()}


def fingerprint(data: DataSection, tokenizer: Tokenizer, seed: int, stage: str) -> Fingerprint:
    """Everything that shaped the tokens, as a JSON-ready dict (compared key by key on reuse)."""
    names = split_names(data.dataset) + split_names(data.eval_dataset)
    entries, files = {}, {}
    for entry in registry.lookup(names, data.dataset_dir):
        entries[entry.name] = entry.entry.model_dump(exclude_none=True)
        if entry.path is not None:
            files.update(file_stamp(entry.path))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    keys = {k: v for k, v in data.model_dump().items() if k not in NEUTRAL_KEYS}
    return {"format": FORMAT, "stage": stage, "seed": seed, "data_keys": keys, "registry": entries, "files": files,
            "tokenizer": digest(vocab), "special_tokens": {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id,
                                                           "pad": tokenizer.pad_token_id},
            "chat_template": digest(str(getattr(tokenizer, "chat_template", None)))}


def changes(saved: Fingerprint, current: Fingerprint) -> list[str]:
    """What differs between two fingerprints, in words."""
    out = []
    for key in sorted(set(saved) | set(current)):
        before, now = saved.get(key), current.get(key)
        if before == now:
            continue
        if isinstance(before, dict) and isinstance(now, dict) and key in ("data_keys", "registry", "files"):
            for sub in sorted(set(before) | set(now)):
                if before.get(sub) != now.get(sub):
                    out.append(f"{key}.{sub}: {describe(before.get(sub))} -> {describe(now.get(sub))}")
        else:
            out.append(f"{key}: {describe(before)} -> {describe(now)}")
    return out


def describe(value: object) -> str:
    """A value, shortened for an error message."""
    text = "(none)" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def has_saved(path: Path) -> bool:
    """A folder that holds something (LLaMA-Factory's has_tokenized_data)."""
    return path.is_dir() and any(path.iterdir())


def load(folder: str, current: Fingerprint, data: DataSection,
         columns: tuple[str, ...] = ("input_ids", "labels")) -> tuple[Dataset, EvalSet, DataReport, Packing] | None:
    """(train, eval, report, packing) from a saved folder, or None when there is nothing saved yet; columns: those
    of the stage's example kind, which a folder saved by LLaMA-Factory must have."""
    from datasets import DatasetDict, load_from_disk

    path = Path(folder)
    if not has_saved(path):
        return None
    try:
        loaded = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"tokenized_path {path} is not a saved dataset ({exc})", field="tokenized_path",
                        fix="point tokenized_path to an empty or new folder, or to one a previous run saved") from None
    parts = dict(loaded) if isinstance(loaded, DatasetDict) else {"train": loaded}
    if "train" not in parts:
        raise DataError(f"tokenized_path {path} has no train split (it has: {', '.join(parts)})",
                        field="tokenized_path", fix="point tokenized_path to a folder a training run saved")
    meta_path = path / META
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        differences = changes(meta["fingerprint"], current)
        if differences:
            raise DataError(f"tokenized_path {path} was made from other data or settings: " + "; ".join(differences[:8])
                            + ("; ..." if len(differences) > 8 else ""), field="tokenized_path",
                            fix="delete the folder to tokenize again, or set tokenized_path to a new folder")
        report, packing = DataReport.from_dict(meta["report"]), meta["packing"]
    else:
        parts, packing = from_llamafactory(parts, columns)
        report = DataReport(train_examples=len(parts["train"]), notes=[
            f"tokenized data loaded from {path} without a tunelab fingerprint (saved by LLaMA-Factory?): used as "
            "it is, not checked against the dataset files or data keys"])
    report.tokenized_path = {"loaded_from": str(path)}
    if data.streaming:
        report.notes.append("streaming is not needed with tokenized_path: the saved data is read from disk as "
                            "training needs it")
    evals = {name: part for name, part in parts.items() if name.startswith("validation")}
    report.eval_examples = sum(len(part) for part in evals.values())
    evaluation = evals.get("validation") if list(evals) in ([], ["validation"]) else \
        {name.removeprefix("validation_"): part for name, part in evals.items()}
    return parts["train"], evaluation, report, packing


def from_llamafactory(parts: dict[str, Dataset],
                      columns: tuple[str, ...] = ("input_ids", "labels")) -> tuple[dict[str, Dataset], Packing]:
    """LLaMA-Factory's saved rows: neat-packed rows mark examples in attention_mask (1, 2, ...); tunelab's
    collators read example_lengths, so they are derived from it."""
    train = parts["train"]
    missing = [c for c in columns if c not in train.column_names]
    if missing:
        raise DataError(f"the saved data has no {', '.join(missing)} column (columns: {', '.join(train.column_names)})",
                        field="tokenized_path", fix="save the data again with a sft or pt run")
    neat = "attention_mask" in train.column_names and len(train) and max(train[0]["attention_mask"]) > 1
    if not neat:
        return parts, "none"
    return {name: part.map(example_lengths, batched=False) for name, part in parts.items()}, "neat"


def example_lengths(row: dict[str, list[int]]) -> dict[str, list[int]]:
    """Lengths of the examples of a neat-packed row from its attention_mask (1-based example index, 0 = pad)."""
    lengths: list[int] = []
    for mark in row["attention_mask"]:
        if mark == 0:
            continue
        if mark > len(lengths):
            lengths.append(0)
        lengths[mark - 1] += 1
    return {"example_lengths": lengths}


def save(folder: str, bundle: DataBundle, current: Fingerprint) -> None:
    """Save train and eval sets with their fingerprint and report."""
    from datasets import DatasetDict

    path = Path(folder)
    if has_saved(path):  # overwrite_cache: replace a saved dataset, never a folder of other files
        if not ((path / META).exists() or (path / "dataset_dict.json").exists()):
            raise DataError(f"tokenized_path {path} holds other files, not saved tokens", field="tokenized_path",
                            fix="point tokenized_path to an empty or new folder")
        shutil.rmtree(path)
    parts = {"train": bundle.train}
    if isinstance(bundle.eval, dict):
        parts.update({f"validation_{name}": part for name, part in bundle.eval.items()})
    elif bundle.eval is not None:
        parts["validation"] = bundle.eval
    bundle.report.tokenized_path = {"saved_to": str(path)}
    meta = {"fingerprint": current, "packing": bundle.packing, "report": bundle.report.to_dict()}
    with atomic_folder(path) as stage:  # a save cut short leaves no folder that looks saved
        DatasetDict(parts).save_to_disk(str(stage))
        (stage / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
