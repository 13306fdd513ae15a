"""Whether a generated answer has the expected layout, which of its fields are filled, and why it fails.

A layout is a regular expression with named groups (the whole answer one item, or a number of items in a row
with only whitespace between them) or a JSON schema (checked with the `jsonschema` package, when installed).
Pure text: the generation kind's `format` metric uses it, and a GRPO format reward can.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeAlias, Union

JSONValue: TypeAlias = Union[str, int, float, bool, None, list["JSONValue"], dict[str, "JSONValue"]]
SchemaSpec: TypeAlias = Union[Mapping[str, object], str]  # a schema, or the path of a .json file holding one
FENCED = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)
SHOWN = 40  # characters of stray text quoted in a reason


class LayoutError(ValueError):
    """A layout that cannot be used: a regex that does not compile, a schema that cannot be read."""


@dataclass(frozen=True)
class Verdict:
    """One answer's check: whether it has the layout, why not, and whether each field is filled."""

    ok: bool
    why: str
    fields: dict[str, bool]


class Layout(Protocol):
    """What the format metric asks of a layout."""

    @property
    def fields(self) -> tuple[str, ...]:
        """The field names (the regex's named groups, the schema's properties)."""

    def check(self, text: str) -> Verdict:
        """The verdict on one answer."""


def filled(value: object) -> bool:
    """A field counts when it holds something other than blanks, null or an empty list or object."""
    if isinstance(value, str):
        return bool(value.strip())
    return value not in (None, [], {})


def shown(text: str) -> str:
    """Stray text quoted briefly in a reason."""
    return repr(text.strip()[:SHOWN] + ("..." if len(text.strip()) > SHOWN else ""))


@dataclass(frozen=True)
class RegexLayout:
    """The answer is one match of the pattern (or `items` matches in a row), every named group filled."""

    pattern: re.Pattern[str]
    items: int | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        """The named groups, in the pattern's order."""
        return tuple(self.pattern.groupindex)

    def item_fields(self, matches: list[re.Match[str]]) -> dict[str, bool]:
        """Each group filled in every match (False when there is none)."""
        return {name: bool(matches) and all(filled(m.group(name)) for m in matches) for name in self.fields}

    def check(self, text: str) -> Verdict:
        """Whole-answer match, or `items` matches separated by whitespace only."""
        text = text.strip()
        if not text:
            return Verdict(False, "empty answer", {name: False for name in self.fields})
        if self.items is None:
            return self.check_one(text)
        return self.check_items(text)

    def check_one(self, text: str) -> Verdict:
        """The whole answer is one item."""
        whole = self.pattern.fullmatch(text)
        if whole is None:
            part = self.pattern.search(text)
            if part is None:
                return Verdict(False, "does not match format_regex", self.item_fields([]))
            stray = text[:part.start()] if part.start() else text[part.end():]
            where = "before" if part.start() else "after"
            return Verdict(False, f"text {where} the layout: {shown(stray)}", self.item_fields([part]))
        return self.verdict([whole])

    def check_items(self, text: str) -> Verdict:
        """`items` matches in a row, nothing but whitespace around them."""
        matches = list(self.pattern.finditer(text))
        if not matches:
            return Verdict(False, f"no item matches format_regex ({self.items} expected)", self.item_fields([]))
        edges = [0] + [e for m in matches for e in (m.start(), m.end())] + [len(text)]
        for index, (start, end) in enumerate(zip(edges[::2], edges[1::2])):
            if text[start:end].strip():
                where = ("before item 1" if index == 0 else f"after item {index}" if index == len(matches)
                         else f"between items {index} and {index + 1}")
                return Verdict(False, f"text {where}: {shown(text[start:end])}", self.item_fields(matches))
        if len(matches) != self.items:
            return Verdict(False, f"{len(matches)} items, {self.items} expected", self.item_fields(matches))
        return self.verdict(matches)

    def verdict(self, matches: list[re.Match[str]]) -> Verdict:
        """The layout matched: every named group of every item must be filled."""
        for number, match in enumerate(matches, start=1):
            empty = [name for name in self.fields if not filled(match.group(name))]
            if empty:
                where = f"item {number}: " if self.items is not None else ""
                return Verdict(False, f"{where}{', '.join(empty)} empty", self.item_fields(matches))
        return Verdict(True, "", self.item_fields(matches))


def regex_layout(pattern: str, items: int | None = None) -> RegexLayout:
    """A regex layout; LayoutError when the pattern does not compile or names no group."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise LayoutError(f"format_regex {pattern!r} does not compile: {exc}") from None
    if not compiled.groupindex:
        raise LayoutError(f"format_regex {pattern!r} names no field; name each part, e.g. "
                          "'(?P<question>.+)\\nA\\. (?P<a>.+)' (inline flags like (?s) allowed)")
    return RegexLayout(compiled, items)


class Validator(Protocol):
    """The part of a jsonschema validator used here."""

    def iter_errors(self, instance: object) -> object:
        """The validation errors of a value."""


@dataclass(frozen=True)
class SchemaLayout:
    """The answer is JSON (optionally in a ``` fence, nothing else) valid against the schema."""

    schema: Mapping[str, object]
    validator: Validator

    @property
    def fields(self) -> tuple[str, ...]:
        """The properties of the object, or of each item when the schema describes a list."""
        return tuple(properties(self.schema))

    def field_values(self, value: JSONValue) -> dict[str, bool]:
        """Each field filled (in every item, for a list)."""
        records = value if isinstance(value, list) else [value]
        return {name: bool(records) and all(isinstance(r, dict) and filled(r.get(name)) for r in records)
                for name in self.fields}

    def check(self, text: str) -> Verdict:
        """Parse the answer as JSON and validate it; the most relevant schema error is the reason."""
        from jsonschema.exceptions import best_match

        text = text.strip()
        fenced = FENCED.fullmatch(text)
        if not text:
            return Verdict(False, "empty answer", {name: False for name in self.fields})
        try:
            value = json.loads(fenced.group(1) if fenced else text)
        except json.JSONDecodeError as exc:
            return Verdict(False, f"not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})",
                           {name: False for name in self.fields})
        error = best_match(self.validator.iter_errors(value))
        if error is not None:
            return Verdict(False, f"{error.json_path}: {error.message}", self.field_values(value))
        return Verdict(True, "", self.field_values(value))


def properties(schema: Mapping[str, object]) -> list[str]:
    """The property names of an object schema, or of its `items` when it describes a list."""
    items = schema.get("items")
    if schema.get("type") == "array" and isinstance(items, Mapping):
        schema = items
    found = schema.get("properties")
    return list(found) if isinstance(found, Mapping) else []


def read_schema(spec: SchemaSpec) -> Mapping[str, object]:
    """The schema itself, or read from a .json file."""
    if not isinstance(spec, str):
        return spec
    path = Path(spec)
    if not path.is_file():
        raise LayoutError(f"format_schema: {spec} does not exist; give a JSON schema file or the schema itself")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LayoutError(f"format_schema: {spec} is not JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise LayoutError(f"format_schema: {spec} holds {type(loaded).__name__}, not a schema object")
    return loaded


def schema_layout(spec: SchemaSpec) -> SchemaLayout:
    """A schema layout; LayoutError when jsonschema is missing or the schema cannot be read or is invalid."""
    try:
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for
    except ImportError:
        raise LayoutError("format_schema needs the jsonschema package, which is not installed: "
                          "pip install jsonschema (or use format_regex)") from None
    schema = read_schema(spec)
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise LayoutError(f"format_schema is not a valid JSON schema: {exc.message} at {exc.json_path}") from None
    return SchemaLayout(schema, cls(schema))
