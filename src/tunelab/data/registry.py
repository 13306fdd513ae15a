"""dataset_info.json (LLaMA-Factory's format): named dataset entries and where their data comes from.

Keys and defaults are LLaMA-Factory 0.9.5's (data/parser.py): an entry without "columns" gets the default columns,
but an entry that gives "columns" gets None for every column it leaves out (likewise "tags"), exactly as
LLaMA-Factory's DatasetAttr.join does. "openai" formatting keeps the sharegpt tag defaults (from/value/human/gpt):
openai-style files name their tags (role/content/user/assistant/system) in the entry, as LLaMA-Factory requires.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from tunelab.data.errors import DataError
from tunelab.runtime import env, strict_json
from tunelab.runtime.strict_json import DuplicateKey
from tunelab.runtime.suggest import suggest

REGISTRY_FILE = "dataset_info.json"
RawEntry = dict[str, JsonValue]  # one dataset_info.json entry as written, before DatasetEntry checks it


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
    """Role and content keys of sharegpt (and openai) conversations; None switches a role off."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role_tag: str | None = "from"
    content_tag: str | None = "value"
    user_tag: str | None = "human"
    assistant_tag: str | None = "gpt"
    observation_tag: str | None = "observation"
    function_tag: str | None = "function_call"
    system_tag: str | None = "system"


Source = Literal["file", "hf_hub", "ms_hub", "om_hub", "script", "cloud_file"]


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
    num_samples: int | None = Field(None, ge=1)
    file_sha1: str | None = None
    columns: Columns = Columns()
    tags: Tags = Tags()

    @model_validator(mode="before")
    @classmethod
    def given_groups_replace_defaults(cls, data: object) -> object:
        """A given "columns" (or "tags") object sets the keys it leaves out to None, as LLaMA-Factory does."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, model in (("columns", Columns), ("tags", Tags)):
            if isinstance(data.get(key), dict):
                data[key] = {**dict.fromkeys(model.model_fields), **data[key]}
        return data

    def source(self, use_modelscope: bool = False, use_openmind: bool = False) -> tuple[Source, str]:
        """Where the rows come from and its name, in LLaMA-Factory's order: hubs, script_url, cloud file, file."""
        hf, ms, om = self.hf_hub_url, self.ms_hub_url, self.om_hub_url
        if ms and (use_modelscope or not hf):
            return "ms_hub", ms
        if om and (use_openmind or not hf):
            return "om_hub", om
        if hf:
            return "hf_hub", hf
        if self.script_url:
            return "script", self.script_url
        if self.cloud_file_name:
            return "cloud_file", self.cloud_file_name
        return "file", self.file_name or ""


class Dataset(BaseModel):
    """A registry entry resolved against its folder: `path` is the local file or folder (None for other sources)."""

    model_config = ConfigDict(frozen=True)
    name: str
    entry: DatasetEntry
    path: Path | None
    source: Source = "file"
    target: str = ""  # the hub id, script folder or cloud path for other sources; file_name for files
    dataset_dir: Path | None = None


def read_registry(dataset_dir: Path) -> dict[str, JsonValue]:
    """The raw dataset_info.json mapping (name -> entry, each a RawEntry once checked to be an object), with errors
    that name the file."""
    path = dataset_dir / REGISTRY_FILE
    if not path.is_file():
        raise DataError(f"no {REGISTRY_FILE} in {dataset_dir}", file=str(path),
                        fix="set dataset_dir to the folder holding it, or create one with `tunelab data register`")
    try:
        raw = strict_json.loads(path.read_text(encoding="utf-8-sig"))
    except DuplicateKey as exc:
        raise DataError(f"{exc.field} is given twice; JSON would keep only the last", file=str(path),
                        fix="keep one entry (or one key) of that name") from None
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
        return DataError(f"unknown key {key!r}{key_hint(err['loc'])}", dataset=name, file=str(path),
                         fix="remove it or correct its name")
    return DataError(f"key {key!r}: {err['msg'].lower()} (got {err.get('input')!r})", dataset=name, file=str(path))


def key_hint(loc: tuple[int | str, ...]) -> str:
    """'; did you mean X?' from the keys of the object the unknown key sits in (a column or tag at the top level
    is pointed to its group)."""
    last = str(loc[-1])
    groups = {"columns": Columns, "tags": Tags}
    if len(loc) == 1:
        for group, model in groups.items():
            if last in model.model_fields:
                return f"; it belongs inside {group!r}: \"{group}\": {{\"{last}\": ...}}"
        return suggest(last, DatasetEntry.model_fields)
    model = groups.get(str(loc[0]))
    return suggest(last, model.model_fields if model else DatasetEntry.model_fields)


def reused_column(name: str, entry: DatasetEntry, path: Path) -> DataError | None:
    """The error for a field that feeds two roles (e.g. prompt and query both 'input': every prompt would hold its
    text twice); a column may feed one role only."""
    roles: dict[str, str] = {}
    for role, column in entry.columns.model_dump().items():
        if column is None:
            continue
        if column in roles:
            first = roles[column]
            return DataError(f"columns {first} and {role} both read the field {column!r}, so its text would be used "
                             "twice", dataset=name, file=str(path), field=f"columns.{role}",
                             fix=f"map {column!r} to one role only: remove \"{role}\": \"{column}\" (or \"{first}\") "
                                 f"from the entry's columns, or register it again with --columns {role}=")
        roles[column] = role
    return None


def lookup(names: list[str], dataset_dir: str | Path, *, use_modelscope: bool | None = None,
           use_openmind: bool | None = None) -> list[Dataset]:
    """Resolve dataset names against <dataset_dir>/dataset_info.json; the hub flags default to USE_MODELSCOPE_HUB
    and USE_OPENMIND_HUB, as in LLaMA-Factory."""
    use_modelscope = env.use_modelscope_hub() if use_modelscope is None else use_modelscope
    use_openmind = env.use_openmind_hub() if use_openmind is None else use_openmind
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
        if (error := reused_column(name, entry, registry_path)) is not None:
            raise error
        source, target = entry.source(use_modelscope, use_openmind)
        path = local_path(name, entry, folder) if source == "file" else None
        found.append(Dataset(name=name, entry=entry, path=path, source=source, target=target, dataset_dir=folder))
    return found


def local_path(name: str, entry: DatasetEntry, folder: Path) -> Path:
    """The data file (or folder of files) of a local entry; a missing one is an error."""
    if entry.file_name is None:
        raise DataError("the entry has no file_name and no hub URL", dataset=name, file=str(folder / REGISTRY_FILE),
                        fix='add "file_name": "your_file.json" (or hf_hub_url, ms_hub_url, om_hub_url, script_url, '
                            'cloud_file_name)')
    path = folder / entry.file_name
    if not path.exists():
        raise DataError(f"file {path} does not exist", dataset=name, field="file_name",
                        fix=f"put the file in {folder} or correct file_name in {REGISTRY_FILE}")
    return path


def sha1_note(dataset: Dataset) -> str | None:
    """The report note when file_sha1 differs from the file's SHA-1 (LLaMA-Factory ignores the key; we tell);
    without the dataset's name, which every printer of a dataset's notes puts first."""
    expected = dataset.entry.file_sha1
    if not expected or dataset.path is None or not dataset.path.is_file():
        return None
    actual = sha1_of(dataset.path)
    if actual == expected.lower():
        return None
    return (f"file_sha1 in {REGISTRY_FILE} is {expected} but the file's is {actual}: "
            f"the file changed since it was registered; update file_sha1 (or remove it) once you have checked the file")


def sha1_of(path: Path) -> str:
    """SHA-1 of a file's bytes, as dataset_info.json records it."""
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
