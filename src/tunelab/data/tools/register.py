"""`tunelab data register`: check a data file against its entry, then add or update it in dataset_info.json."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from pydantic import JsonValue, ValidationError

from tunelab.data.convert import convert_row
from tunelab.data.errors import DataError
from tunelab.data.examples import Feedback, Pair, Supervised, TextExample
from tunelab.data.kinds import stages_of
from tunelab.data.read import Row
from tunelab.data.registry import (REGISTRY_FILE, Columns, DatasetEntry, RawEntry, Tags, entry_error, read_registry,
                                   reused_column, sha1_of)
from tunelab.data.tools.files import listing, load_rows
from tunelab.runtime.atomic import write_text_atomic
from tunelab.runtime.suggest import suggest

FORMATTINGS = ("alpaca", "sharegpt", "openai")
# LLaMA-Factory reads OpenAI-style messages with these tags; written into the entry so any reader agrees
OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
               "system_tag": "system"}
EMPTY_ANSWER = "the response is empty"  # the conversion's kind for a row whose answer is empty
SETTINGS = ("formatting", "columns", "tags", "ranking")  # what split's parts take over from their source's entry
OPTIONAL_FIELDS = {"alpaca": ("system", "history"), "sharegpt": ("system", "tools"), "openai": ("system", "tools")}


@dataclass
class Registration:
    """The outcome of one register call."""

    name: str
    registry: Path
    entry: RawEntry
    previous: RawEntry | None
    hints: list[str]
    inferred: dict[str, str] = field(default_factory=dict)  # columns register added from the file's fields

    @property
    def status(self) -> str:
        """'added', 'unchanged' or 'updated (was: ...)' with the keys that changed."""
        if self.previous is None:
            return "added"
        changed = [key for key in dict.fromkeys([*self.previous, *self.entry])
                   if self.previous.get(key) != self.entry.get(key)]
        if not changed:
            return "unchanged (same file, same settings, same sha1)"
        was = ", ".join(f"{key}={json.dumps(self.previous.get(key), ensure_ascii=False)}" for key in changed)
        return f"updated (was: {was})"


def relative_name(file: Path, folder: Path) -> str:
    """file_name as dataset_info.json stores it: relative to the registry's folder, with forward slashes."""
    return Path(os.path.relpath(file.resolve(), folder.resolve())).as_posix()


def build_entry(file_name: str, old: RawEntry | None, formatting: str | None, columns: dict[str, str] | None,
                tags: dict[str, str] | None, ranking: bool | None, fields: dict[str, None]) -> RawEntry:
    """The new entry: the old one's settings unless given again; defaults (alpaca, no ranking) left out."""
    entry = {key: value for key, value in (old or {}).items() if key not in ("file_name", "file_sha1")}
    entry = {"file_name": file_name, **entry}
    if formatting is not None:
        entry["formatting"] = formatting
    if ranking is not None:
        entry["ranking"] = ranking
    fmt = entry.get("formatting", "alpaca")
    if fmt == "openai" and "columns" not in entry:
        columns = {"messages": "messages", **(columns or {})}
    if fmt == "openai" and "tags" not in entry:
        tags = {**OPENAI_TAGS, **(tags or {})}
    # a given "columns" (or "tags") object sets every key it leaves out to None (LLaMA-Factory's rule), so the
    # format's defaults are written out with it: those whose fields the file has, and messages always
    if columns:
        base = entry.get("columns")
        if not isinstance(base, dict):
            base = default_columns(fmt, fields, taken=set(columns.values()))
        # a field the user maps now leaves the role it had before (a column feeds one role only)
        kept = {key: value for key, value in base.items() if key in columns or value not in columns.values()}
        entry["columns"] = without_empty({**kept, **columns})
    if tags:
        entry["tags"] = without_empty({**entry.get("tags", Tags().model_dump()), **tags})
    for key, default in (("formatting", "alpaca"), ("ranking", False)):
        if entry.get(key) == default:
            entry.pop(key)
    return entry


def inferred_columns(entry: RawEntry, old: RawEntry | None, columns: dict[str, str] | None) -> dict[str, str]:
    """The columns of the new entry that neither the user nor the old entry named: register's own defaults."""
    written = entry.get("columns")
    if not columns or not isinstance(written, dict) or (old is not None and isinstance(old.get("columns"), dict)):
        return {}
    return {key: str(value) for key, value in written.items() if key not in columns and value}


def without_empty(group: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """A columns or tags object without the keys given as KEY= (how a user removes one)."""
    return {key: value for key, value in group.items() if value != ""}


def default_columns(formatting: str, fields: dict[str, None], taken: set[str] | None = None) -> dict[str, str]:
    """The default columns of a format, as a "columns" object must spell them out; a field in taken (one the user
    mapped to another role) is never added, since a column feeds one role only."""
    taken = taken or set()
    if formatting != "alpaca":
        return {} if "conversations" in taken else {"messages": "conversations"}
    defaults = Columns()
    return {key: value for key in ("prompt", "query", "response")
            if (value := getattr(defaults, key)) in fields and value not in taken}


class RowProblems:
    """Rows that fail a check, grouped by problem, rendered as one error message."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}

    def add(self, problem: str, row: int) -> None:
        """Note that this row has this problem."""
        self.rows.setdefault(problem, []).append(row)

    def raise_if_any(self, file: Path, fix: str) -> None:
        """One DataError listing every problem with its rows."""
        if self.rows:
            text = "; ".join(f"{problem} (rows {listing(rows, 10)})" for problem, rows in self.rows.items())
            raise DataError(text, file=str(file), fix=fix)


def check_alpaca(rows: list[Row], entry: DatasetEntry, file: Path) -> None:
    """The response column (or chosen/rejected for ranking) is in every row."""
    cols = entry.columns
    needed = [c for c in ((cols.chosen, cols.rejected) if entry.ranking else (cols.response,)) if c]
    if entry.ranking and not (cols.chosen and cols.rejected):
        raise DataError("a ranking entry needs chosen and rejected columns", file=str(file),
                        fix="add --columns chosen=COL,rejected=COL")
    problems = RowProblems()
    for number, row in enumerate(rows, start=1):
        for column in needed:
            if column not in row:
                problems.add(f"no field {column!r}{suggest(column, row)}", number)
    problems.raise_if_any(file, "map the right field with --columns response=FIELD (alpaca) or fix those rows")


def check_messages(rows: list[Row], entry: DatasetEntry, file: Path) -> None:
    """The messages column holds lists of {role_tag, content_tag} with known roles."""
    column, tags = entry.columns.messages, entry.tags
    roles = {tags.user_tag, tags.assistant_tag, tags.observation_tag, tags.function_tag, tags.system_tag} - {None}
    if not column:
        raise DataError("the entry names no messages column", file=str(file), fix="add --columns messages=FIELD")
    problems = RowProblems()
    for number, row in enumerate(rows, start=1):
        turns = row.get(column)
        if not isinstance(turns, list):
            found = "no field" if column not in row else f"a {type(turns).__name__} in field"
            problems.add(f"{found} {column!r} (a list of messages){suggest(column, row)}", number)
            continue
        for turn in turns:
            if not isinstance(turn, dict) or tags.role_tag not in turn or tags.content_tag not in turn:
                keys = ", ".join(turn) if isinstance(turn, dict) else type(turn).__name__
                problems.add(f"a message without {tags.role_tag!r} and {tags.content_tag!r} keys (has: {keys})",
                             number)
                break
            if turn[tags.role_tag] not in roles:
                problems.add(f"role {turn[tags.role_tag]!r} is not one of the tags ({', '.join(sorted(roles))})",
                             number)
                break
    problems.raise_if_any(file, "set --columns messages=FIELD and --tags role_tag=...,content_tag=...,user_tag=...,"
                                "assistant_tag=... to match the file")


def check_rows_as_training(rows: list[Row], entry: DatasetEntry, name: str, file: Path,
                           keep_empty: bool = False) -> None:
    """Every row goes through the conversion a run does for the entry's kind (ranking: pairs with a missing, empty or
    identical side; KTO: a kto_tag that is not a boolean; otherwise supervised rows, or texts for an entry without
    a response column), so a file that passes register also converts in training. keep_empty: rows whose answer is
    empty were kept on purpose (`data convert --keep-empty`, prompts to answer) and are let through."""
    supervised = entry.formatting != "alpaca" or entry.columns.response is not None
    example = (Pair if entry.ranking else Feedback if entry.columns.kto_tag is not None
               else Supervised if supervised else TextExample)
    stage = stages_of(example)[0]
    problems = RowProblems()
    for number, row in enumerate(rows, start=1):
        try:
            convert_row(row, entry, name, number, None, stage, drop_media=True)
        except DataError as exc:
            if not (keep_empty and exc.kind == EMPTY_ANSWER):
                problems.add(f"{exc.field}: {exc.kind}" if exc.field else exc.kind, number)
    problems.raise_if_any(file, f"fix those rows (`tunelab data validate` on a stage {stage} config shows each with "
                                "its fix); nothing was registered")


def check_given_columns(rows: list[Row], given: dict[str, str], file: Path) -> None:
    """Columns the entry names must exist in at least one row."""
    seen = dict.fromkeys(key for row in rows for key in row)
    for key, column in given.items():
        if column not in seen:
            raise DataError(f"columns {key}={column}: no row has a field {column!r}{suggest(column, seen)}",
                            file=str(file), fix=f"correct it with --columns {key}=FIELD (or remove it: --columns "
                                                f"{key}=); the fields are: {', '.join(seen)}")


def unused_fields(rows: list[Row], entry: DatasetEntry, formatting: str) -> list[str]:
    """Hints for fields such as 'system' that the file has but the entry does not read."""
    used = {value for value in entry.columns.model_dump().values() if value}
    first = rows[0]
    return [f"rows have a {name!r} field the entry does not use; add --columns {name}={name} to train with it"
            for name in OPTIONAL_FIELDS[formatting] if name in first and name not in used]


def validate(file: Path, rows: list[Row], entry: RawEntry, name: str, registry: Path,
             keep_empty: bool = False) -> list[str]:
    """Check the rows fit the entry; returns hints about unused fields."""
    try:
        typed = DatasetEntry(**entry)
    except ValidationError as exc:
        raise entry_error(name, registry, exc) from None
    if (error := reused_column(name, typed, registry)) is not None:
        raise error
    written = {key: value for key, value in entry.get("columns", {}).items() if value}
    check_given_columns(rows, written, file)
    if typed.formatting == "alpaca":
        check_alpaca(rows, typed, file)
    else:
        check_messages(rows, typed, file)
    check_rows_as_training(rows, typed, name, file, keep_empty)
    return unused_fields(rows, typed, typed.formatting)


def register(file: Path, name: str, *, formatting: str | None = None, columns: dict[str, str] | None = None,
             tags: dict[str, str] | None = None, ranking: bool | None = None, dataset_dir: Path | None = None,
             force: bool = False, fresh: bool = False, settings: RawEntry | None = None,
             keep_empty: bool = False) -> Registration:
    """Validate the file, then add or update the entry NAME in DATASET_DIR/dataset_info.json; settings not given
    are kept from the existing entry of the same file, unless fresh; settings (another entry) replaces its
    formatting, columns, tags and ranking as they stand (split's parts copy their source's)."""
    if not file.is_file():
        raise DataError("file not found", file=str(file), fix="check the path")
    folder = dataset_dir if dataset_dir is not None else file.parent
    registry = folder / REGISTRY_FILE
    raw = read_registry(folder) if registry.is_file() else {}
    previous = raw.get(name)
    if previous is not None and not isinstance(previous, dict):
        raise DataError(f"the entry {name!r} is not an object", file=str(registry), fix="fix or remove it by hand")
    file_name = relative_name(file, folder)
    old = None if fresh else previous
    if previous is not None and not same_file(previous, folder, file):
        if not force:
            raise DataError(f"the name {name!r} is already used for {previous.get('file_name') or 'a hub dataset'}",
                            file=str(registry),
                            fix=f"choose another --name, or pass --force to point it at {file_name}")
        old = None  # a different file: start from a fresh entry, but keep the entry's place in the file
    if settings is not None:
        old = {**{key: value for key, value in (old or {}).items() if key not in SETTINGS},
               **{key: value for key, value in settings.items() if key in SETTINGS}}
    rows = load_rows(file)
    fields = dict.fromkeys(key for row in rows for key in row)
    entry = build_entry(file_name, old, formatting, columns, tags, ranking, fields)
    inferred = inferred_columns(entry, old, columns)
    hints = validate(file, rows, entry, name, registry, keep_empty)
    entry["file_sha1"] = sha1_of(file)
    raw[name] = entry
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(registry, json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    return Registration(name, registry, entry, previous, hints, inferred)


def same_file(old: RawEntry, folder: Path, file: Path) -> bool:
    """Whether an existing entry points at this file."""
    file_name = old.get("file_name")
    return isinstance(file_name, str) and (folder / file_name).resolve() == file.resolve()


def describe(result: Registration) -> list[str]:
    """The lines register prints."""
    lines = [f"{result.name}: {result.status} in {result.registry}"]
    if result.inferred:
        mapped = ", ".join(f"{key}={value}" for key, value in result.inferred.items())
        lines.append(f"note: columns inferred from the file's fields: {mapped}; remove any you do not want with "
                     f"--columns KEY= (e.g. --columns {next(iter(result.inferred))}=)")
    return lines + [f"note: {hint}" for hint in result.hints]


def column_keys() -> tuple[str, ...]:
    """The keys --columns accepts."""
    return tuple(Columns.model_fields)


def tag_keys() -> tuple[str, ...]:
    """The keys --tags accepts."""
    return tuple(Tags.model_fields)
