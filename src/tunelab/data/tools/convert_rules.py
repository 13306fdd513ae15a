"""The row rules of `tunelab data convert`: fixed and templated fields, regex extraction into named fields, and
row filters. Parsing checks the flags alone; `check_names` then checks every name against the table's columns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tunelab.data.errors import DataError
from tunelab.runtime.suggest import suggest

FILLABLE = ("instruction", "input", "output", "system")  # history is [question, answer] pairs, never one text
ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}
# '{{' and '}}' are literal braces; '{name}' a placeholder; any other brace is unbalanced
BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
OPERATORS = ("!=", "!~", "=", "~")
CONDITION = re.compile(r"(?P<name>.*?)(?P<op>!=|!~|=|~)(?P<value>.*)", re.DOTALL)
WHERE_SYNTAX = "COLUMN=VALUE, COLUMN!=VALUE, COLUMN~REGEX or COLUMN!~REGEX"


@dataclass(frozen=True)
class Template:
    """A field built from text with {name} placeholders for columns and extracted fields."""

    field: str
    text: str

    def names(self) -> list[str]:
        """The placeholder names, in order of appearance."""
        return [match[1] for match in BRACES.finditer(self.text) if match[1] is not None]

    def render(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by its value and '{{' '}}' by single braces."""
        return BRACES.sub(lambda m: values[m[1]] if m[1] is not None else m[0][0], self.text)


@dataclass(frozen=True)
class Extraction:
    """A regular expression searched in one column; its named groups become fields."""

    column: str
    pattern: re.Pattern[str]

    def fields(self) -> list[str]:
        """The named groups, in pattern order."""
        return list(self.pattern.groupindex)

    def apply(self, text: str) -> dict[str, str] | None:
        """The named groups' text (stripped; '' for a group that took no part); None when the pattern is missing."""
        match = self.pattern.search(text)
        if match is None:
            return None
        return {name: (value or "").strip() for name, value in match.groupdict().items()}


@dataclass(frozen=True)
class Condition:
    """One --where test on a column or an extracted field."""

    name: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = None

    def holds(self, text: str) -> bool:
        """Whether the cell text passes: = and != compare stripped text, ~ and !~ search the regex."""
        if self.op in ("=", "!="):
            return (text.strip() == self.value) == (self.op == "=")
        assert self.pattern is not None  # set by parse_condition for ~ and !~
        return (self.pattern.search(text) is not None) == (self.op == "~")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.pattern.pattern if self.pattern else self.value}"


@dataclass(frozen=True)
class Rules:
    """Everything convert does besides mapping columns; empty rules change nothing."""

    fixed: dict[str, str] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    extractions: list[Extraction] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    keep_unmatched: bool = False

    def provided(self) -> set[str]:
        """The fields given by --set and --template."""
        return set(self.fixed) | set(self.templates)

    def extracted(self) -> list[str]:
        """Every extracted field name, in flag order."""
        return [name for extraction in self.extractions for name in extraction.fields()]


def unescape(text: str) -> str:
    r"""'\n', '\t' and '\\' as a line break, a tab and a backslash (what a shell leaves in "..."); others kept."""
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m[1], m[0]), text, flags=re.DOTALL)


def split_item(item: str, flag: str, example: str) -> tuple[str, str]:
    """'KEY=TEXT' split at the first '='; the text may hold '=' and commas."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise DataError(f"{flag} {item!r} is not KEY=TEXT", fix=f"write e.g. {flag} {example}")
    return key.strip(), value


def fill_key(key: str, flag: str, seen: Iterable[str]) -> str:
    """A field --set or --template may fill: known, and given once."""
    if key not in FILLABLE:
        raise DataError(f"{flag} names an unknown field {key!r}{suggest(key, FILLABLE)}",
                        fix=f"use one of: {', '.join(FILLABLE)}")
    if key in seen:
        raise DataError(f"{flag} gives {key} twice", fix="give each field once")
    return key


def parse_fixed(items: list[str]) -> dict[str, str]:
    """--set FIELD=TEXT values -> {field: text}, escapes applied."""
    fixed: dict[str, str] = {}
    for item in items:
        key, value = split_item(item, "--set", 'instruction="请根据阅读文本出题"')
        fixed[fill_key(key, "--set", fixed)] = unescape(value)
    return fixed


def parse_templates(items: list[str]) -> dict[str, Template]:
    """--template FIELD=TEXT values -> {field: Template}; unbalanced or empty braces are an error."""
    templates: dict[str, Template] = {}
    for item in items:
        key, value = split_item(item, "--template", 'output="{题目}\\n{答案}"')
        template = Template(fill_key(key, "--template", templates), unescape(value))
        for match in BRACES.finditer(template.text):
            if match[0] in "{}" or (match[1] is not None and not match[1].strip()):
                raise DataError(f"--template {key}: {'unbalanced' if match[1] is None else 'empty'} "
                                f"{match[0]!r} at character {match.start() + 1}",
                                fix="name a column or an extracted field as {NAME}; write {{ and }} for braces")
        templates[key] = template
    return templates


def compile_regex(text: str, where: str) -> re.Pattern[str]:
    """A pattern in which '.' also matches line breaks (cells span lines); a bad one names the flag and position."""
    try:
        return re.compile(text, re.DOTALL)
    except re.error as exc:
        at = f" at character {exc.pos + 1}" if exc.pos is not None else ""
        raise DataError(f"{where}: not a valid regular expression: {exc.msg}{at} of {text!r}",
                        fix="correct the pattern (Python re syntax; named parts are written (?P<name>...))") from None


def parse_extractions(items: list[str]) -> list[Extraction]:
    """--extract COLUMN=REGEX values; each pattern needs a named group, and a name is used once."""
    extractions: list[Extraction] = []
    seen: set[str] = set()
    for item in items:
        column, text = split_item(item, "--extract", "选项='(?P<question>.+?)A[.．、](?P<a>.+?)B[.．、]...'")
        extraction = Extraction(column, compile_regex(text, f"--extract {column}"))
        if not extraction.fields():
            raise DataError(f"--extract {column}: the pattern has no named group",
                            fix="name each part you want as (?P<name>...)")
        repeated = seen.intersection(extraction.fields())
        if repeated:
            raise DataError(f"--extract {column}: the group name {sorted(repeated)[0]!r} is used twice",
                            fix="give each named group its own name")
        seen.update(extraction.fields())
        extractions.append(extraction)
    return extractions


def parse_condition(item: str) -> Condition:
    """One --where: the first operator (!=, !~, =, ~) splits the column from the value."""
    found = CONDITION.fullmatch(item)
    if found is None or not found["name"].strip():
        raise DataError(f"--where {item!r} is not a condition", fix=f"write {WHERE_SYNTAX}, e.g. --where 题型=选择题")
    name, op, value = found["name"].strip(), found["op"], found["value"]
    if op in ("~", "!~"):
        return Condition(name, op, value, compile_regex(value, f"--where {item}"))
    return Condition(name, op, value.strip())


def parse_rules(fixed: list[str], templates: list[str], extractions: list[str], conditions: list[str],
                keep_unmatched: bool = False) -> Rules:
    """The rules from the flags' values (each flag may be repeated)."""
    return Rules(parse_fixed(fixed), parse_templates(templates), parse_extractions(extractions),
                 [parse_condition(item) for item in conditions], keep_unmatched)


def unknown_name(name: str, used_as: str, columns: list[str], extracted: list[str], where: str,
                 fix: str) -> DataError:
    """'NAME' is neither a column nor an extracted field: list both and suggest the closest."""
    stripped = [c for c in columns if c.strip() == name.strip()]
    hint = f"; did you mean {stripped[0]!r}?" if stripped else suggest(name, columns + extracted)
    fields = f"; the extracted fields are: {', '.join(extracted)}" if extracted else ""
    return DataError(f"{used_as} names no column {name!r}; the columns are: {', '.join(columns)}{fields}{hint}",
                     file=where, fix=fix)


def check_names(rules: Rules, mapping: Mapping[str, str], columns: list[str], where: str) -> None:
    """Every column, placeholder and condition names a column or an extracted field; group names are new."""
    extracted = rules.extracted()
    for extraction in rules.extractions:
        if extraction.column not in columns:
            raise unknown_name(extraction.column, f"--extract {extraction.column}=...", columns, [], where,
                               "correct the column name before '='")
        clash = [name for name in extraction.fields() if name in columns]
        if clash:
            raise DataError(f"--extract {extraction.column}: the group name {clash[0]!r} is also a column",
                            file=where, fix="give the group another name")
    known = set(columns) | set(extracted)
    for key, column in mapping.items():
        if column not in known:
            raise unknown_name(column, f"--map {key}={column}", columns, extracted, where, "correct the --map")
    for template in rules.templates.values():
        for name in template.names():
            if name not in known:
                raise unknown_name(name, f"--template {template.field}: placeholder {{{name}}}", columns, extracted,
                                   where, "correct the placeholder")
    for condition in rules.conditions:
        if condition.name not in known:
            raise unknown_name(condition.name, f"--where {condition}", columns, extracted, where,
                               "correct the name before the operator")
