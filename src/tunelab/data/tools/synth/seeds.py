"""Seeds (rows of a file, or topics) with stable keys, and the requests rendered from them by the prompt template."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import JsonValue

from tunelab.data.errors import DataError
from tunelab.data.tools.synth.config import PromptSection, SeedsSection
from tunelab.remote.endpoint import Message
from tunelab.runtime.suggest import suggest

RESERVED = ("index", "seed")  # template variables tunelab provides besides the seed's fields


@dataclass(frozen=True)
class Seed:
    """One seed: a key stable across runs (its content's hash), its row number as the user sees it, its fields."""

    key: str
    row: int
    fields: dict[str, JsonValue]


@dataclass(frozen=True)
class Request:
    """One output to ask for: the id (seed key and index), its seed and the rendered messages."""

    id: str
    seed: Seed
    index: int
    messages: list[Message]

    @property
    def prompt(self) -> str:
        """The user message (the instruction of a text-mode record)."""
        return self.messages[-1]["content"]


def content_key(fields: dict[str, JsonValue]) -> str:
    """12 hex digits of the SHA-1 of the fields as sorted JSON: the same seed gets the same key in every run."""
    text = json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def keyed(rows: list[dict[str, JsonValue]], numbers: list[int]) -> list[Seed]:
    """Seeds with content keys; a repeated row gets its occurrence appended (k~2), so each is still asked."""
    seen: dict[str, int] = {}
    seeds = []
    for fields, number in zip(rows, numbers):
        key = content_key(fields)
        seen[key] = seen.get(key, 0) + 1
        seeds.append(Seed(key if seen[key] == 1 else f"{key}~{seen[key]}", number, fields))
    return seeds


def load_seeds(section: SeedsSection) -> tuple[list[Seed], str]:
    """The seeds and where they come from (for messages); errors name seeds.file or seeds.columns and the fix."""
    if section.topics is not None:
        rows: list[dict[str, JsonValue]] = [{"topic": topic} for topic in section.topics]
        return keyed(rows, list(range(1, len(rows) + 1)))[: section.limit], "seeds.topics"
    from tunelab.data.tools.convert import read_table

    path = Path(str(section.file))
    if not path.exists():
        raise DataError("seeds.file: no such file", file=str(path),
                        fix="check the path (relative paths start from the folder you run tunelab in)")
    table = read_table(path, section.sheet)
    # JSON-safe (spreadsheet dates become text): the seed is written into the log and kept in each record
    rows = [json.loads(json.dumps(row, ensure_ascii=False, default=str)) for row in table.rows]
    if section.columns is not None:
        for column in section.columns:
            if column not in table.columns:
                raise DataError(f"seeds.columns names {column!r}, which the seeds lack"
                                f"{suggest(column, table.columns)}", file=str(path),
                                fix=f"the seed fields are: {', '.join(table.columns)}")
        rows = [{column: row.get(column) for column in section.columns} for row in rows]
    seeds = keyed(rows, table.numbers)
    return seeds[: section.limit] if section.limit else seeds, str(path)


class Prompter:
    """Renders the prompt (and system) templates, sandboxed and strict: a missing field is an error, never ''."""

    def __init__(self, section: PromptSection) -> None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        self.env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)
        self.section = section
        self.template = self.env.from_string(section.template)
        self.system = self.env.from_string(section.system) if section.system is not None else None

    def names(self) -> set[str]:
        """The variables the templates read that tunelab does not provide itself."""
        from jinja2 import meta

        names = set(meta.find_undeclared_variables(self.env.parse(self.section.template)))
        if self.section.system is not None:
            names |= meta.find_undeclared_variables(self.env.parse(self.section.system))
        return names - set(RESERVED)

    def check_fields(self, seed: Seed, where: str) -> None:
        """Before any request: every field the templates name is in the first seed."""
        missing = sorted(name for name in self.names() if name not in seed.fields)
        if missing:
            fields = list(seed.fields)
            hint = suggest(missing[0], fields)
            raise DataError(f"prompt.template names {', '.join(missing)}, which the seeds lack{hint}",
                            file=where, row=seed.row,
                            fix=f"the seed fields are: {', '.join(fields) or '(none)'}; use {{{{ field }}}} with one "
                                "of them (seeds.topics give {{ topic }})")

    def render(self, seed: Seed, index: int, where: str) -> Request:
        """The request for output `index` of a seed; a field missing in this row names the row."""
        from jinja2 import TemplateError, UndefinedError

        values = {**seed.fields, "index": index, "seed": seed.fields}
        try:
            messages = [{"role": "user", "content": self.template.render(values).strip()}]
            if self.system is not None:
                messages.insert(0, {"role": "system", "content": self.system.render(values).strip()})
        except UndefinedError as exc:
            raise DataError(f"prompt.template: {exc.message}", file=where, row=seed.row,
                            fix="give every seed row the fields the template names") from None
        except TemplateError as exc:
            raise DataError(f"prompt.template failed on this seed: {exc}", file=where, row=seed.row,
                            fix="fix the template or the row") from None
        return Request(f"{seed.key}-{index}", seed, index, messages)


def requests_of(seeds: list[Seed], prompt: PromptSection, n: int, where: str) -> list[Request]:
    """Every (seed, index) request in seed order; the template is checked on the first seed before anything else."""
    if not seeds:
        raise DataError("there are no seeds", file=where, fix="give a seed file with rows, or a list of topics")
    prompter = Prompter(prompt)
    prompter.check_fields(seeds[0], where)
    return [prompter.render(seed, index, where) for seed in seeds for index in range(n)]
