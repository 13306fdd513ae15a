"""dataset_info.json (LLaMA-Factory's format): named dataset entries and where their files are."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tunelab.data.errors import DataError
from tunelab.runtime.suggest import suggest

REGISTRY_FILE = "dataset_info.json"


class Columns(BaseModel):
    """Which column of the file holds each part of a record (LLaMA-Factory's defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    prompt: str | None = "instruction"
    query: str | None = "input"
    response: str | None = "output"
    history: str | None = None
    system: str | None = None
    tools: str | None = None
    messages: str | None = "conversations"
    images: str | None = None
    videos: str | None = None
    audios: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    kto_tag: str | None = None


class Tags(BaseModel):
    """Role and content keys of sharegpt conversations."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"


class DatasetEntry(BaseModel):
    """One entry of dataset_info.json; every key LLaMA-Factory accepts, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_name: str | None = None
    hf_hub_url: str | None = None
    ms_hub_url: str | None = None
    om_hub_url: str | None = None
    script_url: str | None = None
    cloud_file_name: str | None = None
    formatting: Literal["alpaca", "sharegpt", "openai"] = "alpaca"
    ranking: bool = False
    subset: str | None = None
    split: str = "train"
    folder: str | None = None
    num_samples: int | None = None
    file_sha1: str | None = None
    columns: Columns = Columns()
    tags: Tags = Tags()


class Dataset(BaseModel):
    """A registry entry resolved against its folder."""

    model_config = ConfigDict(frozen=True)
    name: str
    entry: DatasetEntry
    path: Path | None


def read_registry(dataset_dir: Path) -> dict[str, dict]:
    """The raw dataset_info.json mapping, with errors that name the file."""
    path = dataset_dir / REGISTRY_FILE
    if not path.is_file():
        raise DataError(f"no {REGISTRY_FILE} in {dataset_dir}", file=str(path),
                        fix="set dataset_dir to the folder holding it, or create one with `tunelab data register`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", file=str(path), fix="save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=str(path),
                        fix="fix the JSON syntax") from None
    if not isinstance(raw, dict):
        raise DataError("must be a JSON object of dataset names to entries", file=str(path))
    return raw


def entry_error(name: str, path: Path, exc: ValidationError) -> DataError:
    """A readable error for the first bad key of a registry entry."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        known = list(DatasetEntry.model_fields) + list(Columns.model_fields) + list(Tags.model_fields)
        last = str(err["loc"][-1])
        return DataError(f"unknown key {key!r}{suggest(last, known)}", dataset=name, file=str(path),
                         fix="remove it or correct its name")
    return DataError(f"key {key!r}: {err['msg'].lower()} (got {err.get('input')!r})", dataset=name, file=str(path))


def lookup(names: list[str], dataset_dir: str | Path) -> list[Dataset]:
    """Resolve dataset names against <dataset_dir>/dataset_info.json."""
    folder = Path(dataset_dir)
    raw = read_registry(folder)
    registry_path = folder / REGISTRY_FILE
    found = []
    for name in names:
        if name not in raw:
            raise DataError(f"no entry named {name!r} in {registry_path}{suggest(name, raw)}",
                            fix=f"add it (tunelab data register FILE --name {name}) or use one of: "
                                f"{', '.join(sorted(raw)) or 'none yet'}")
        if not isinstance(raw[name], dict):
            raise DataError(f"the entry must be an object with file_name etc., got {type(raw[name]).__name__}",
                            dataset=name, file=str(registry_path), fix='write it as {"file_name": "data.json"}')
        try:
            entry = DatasetEntry(**raw[name])
        except ValidationError as exc:
            raise entry_error(name, registry_path, exc) from None
        found.append(Dataset(name=name, entry=entry, path=local_path(name, entry, folder)))
    return found


def local_path(name: str, entry: DatasetEntry, folder: Path) -> Path | None:
    """The data file of a local entry (None for hub entries); a missing file is an error."""
    if entry.file_name is None:
        if not any((entry.hf_hub_url, entry.ms_hub_url, entry.om_hub_url, entry.script_url)):
            raise DataError("the entry has no file_name and no hub URL", dataset=name, file=str(folder / REGISTRY_FILE),
                            fix='add "file_name": "your_file.json"')
        return None
    path = folder / entry.file_name
    if not path.exists():
        raise DataError(f"file {path} does not exist", dataset=name, field="file_name",
                        fix=f"put the file in {folder} or correct file_name in {REGISTRY_FILE}")
    return path


def sha1_of(path: Path) -> str:
    """SHA-1 of a file's bytes, as dataset_info.json records it."""
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
