"""Answer extraction: a small library of named extractors that pull the answer out of generated text.

A task picks one by name and parametrises it (`extractor: {name: regex, pattern: "答案[:：](?P<answer>.+)"}`).
Every extractor returns the answer, or None when the text holds none: such rows score as wrong and
are listed in the task's report. `tunelab eval extract --extractor NAME --text ...` tries one.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias, Union

from tunelab.text.letters import OPTION_LINE, letter_list, letter_set
from tunelab.text.normalize import normalize

# What an extractor returns: a string, a list of items, or any JSON value (the json extractor); None: nothing.
JSON: TypeAlias = Union[str, int, float, bool, None, list["JSON"], dict[str, "JSON"]]
Params: TypeAlias = dict[str, object]  # an extractor's parameters as the user wrote them (checked when built)
Run: TypeAlias = Callable[[str, str], JSON]
ExtractorSpec: TypeAlias = Union[str, dict[str, object]]  # a name, or {name: ..., param: ...}


class ExtractorError(ValueError):
    """An extractor spec that cannot work (unknown name, bad parameter, regex that does not compile)."""


@dataclass(frozen=True)
class Extractor:
    """A configured extractor: call it with the generated text (and the prompt, for option texts)."""

    name: str
    params: Params
    run: Run = field(repr=False)

    def __call__(self, text: str, prompt: str = "") -> JSON:
        """The extracted answer, or None."""
        return self.run(text or "", prompt or "")


def whole_text(_params: Params) -> Run:
    """`text`: the whole answer, stripped (None when empty)."""
    return lambda text, _prompt: text.strip() or None


def first_line(_params: Params) -> Run:
    """`first_line`: the first non-empty line."""
    def run(text: str, _prompt: str) -> str | None:
        return next((line.strip() for line in text.splitlines() if line.strip()), None)
    return run


REGEX_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE}


def compile_pattern(pattern: object, flags: str) -> re.Pattern[str]:
    """Compile a user's regex; a bad one is an ExtractorError quoting re's reason."""
    if not isinstance(pattern, str) or not pattern:
        raise ExtractorError("regex needs `pattern`: a regular expression, e.g. '答案[:：]\\s*(?P<answer>.+)'")
    unknown = set(flags) - set(REGEX_FLAGS)
    if unknown:
        raise ExtractorError(f"regex flags {''.join(sorted(unknown))!r} unknown; use any of i (ignore case), "
                             "s (dot matches newline), m (multiline)")
    value = 0
    for flag in flags:
        value |= REGEX_FLAGS[flag]
    try:
        return re.compile(pattern, value)
    except re.error as exc:
        raise ExtractorError(f"regex pattern {pattern!r} does not compile: {exc}") from None


def regex(params: Params) -> Run:
    """`regex`: group `answer` (or the first group, or the whole match) of the first/last match."""
    compiled = compile_pattern(params.get("pattern"), str(params.get("flags", "")))
    occurrence = occurrence_param(params, "first")

    def run(text: str, _prompt: str) -> str | None:
        matches = list(compiled.finditer(text))
        if not matches:
            return None
        match = matches[0] if occurrence == "first" else matches[-1]
        if "answer" in compiled.groupindex:
            value = match.group("answer")
        else:
            value = match.group(1) if compiled.groups else match.group(0)
        return value.strip() if value and value.strip() else None
    return run


def occurrence_param(params: Params, default: str) -> str:
    """The `occurrence` parameter: first or last."""
    value = params.get("occurrence", default)
    if value not in ("first", "last"):
        raise ExtractorError(f"occurrence must be first or last, not {value!r}")
    return str(value)


NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def number(params: Params) -> Run:
    """`number`: the last (or first) number, thousands separators removed, full-width digits folded."""
    occurrence = occurrence_param(params, "last")

    def run(text: str, _prompt: str) -> str | None:
        found = NUMBER.findall(unicodedata.normalize("NFKC", text))
        if not found:
            return None
        value = (found[0] if occurrence == "first" else found[-1]).replace(",", "")
        return value.rstrip("0").rstrip(".") if "." in value else value
    return run


FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
JSON_PATH = re.compile(r"(?:[^.\[\]]+|\[\d+\])(?:\.[^.\[\]]+|\[\d+\])*")


def first_json(text: str) -> JSON:
    """The first JSON object or array in a text (inside ``` fences or bare), or None."""
    fenced = FENCE.search(text)
    candidates = [fenced.group(1)] if fenced else []
    candidates += [text[i:] for i, ch in enumerate(text) if ch in "[{"]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            return decoder.raw_decode(candidate.strip())[0]
        except json.JSONDecodeError:
            continue
    return None


def follow_path(value: JSON, path: str) -> JSON:
    """Walk `a.b[0].c` into parsed JSON; None where a step is missing."""
    for name, index in PATH_PART.findall(path):
        if name and isinstance(value, dict) and name in value:
            value = value[name]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return None
    return value


def json_path(params: Params) -> Run:
    """`json`: the first JSON value in the text, optionally followed along `path` (e.g. entities or a.b[0])."""
    path = params.get("path", "")
    if not isinstance(path, str) or (path and not JSON_PATH.fullmatch(path)):
        raise ExtractorError(f"json path {path!r} is not like a.b[0].c")

    def run(text: str, _prompt: str) -> JSON:
        value = first_json(text)
        return follow_path(value, path) if value is not None and path else value
    return run


NUMBERING = re.compile(r"^\s*(?:[-*•·]|\(?\d+[.)、．）]|\d+\s*[:：])\s*")


def item_list(params: Params) -> Run:
    """`list`: items split on separators (newlines, commas, 、 ; |), bullets and numbering removed."""
    separators = compile_pattern(params.get("separators", r"[\n,，、;；|]"), "")

    def run(text: str, _prompt: str) -> list[str] | None:
        items = [NUMBERING.sub("", part).strip() for part in separators.split(text)]
        items = [item for item in items if item]
        return items or None
    return run


def choice_patterns(letters: str) -> list[re.Pattern[str]]:
    """Answer phrasings, most explicit first: 答案：B, the answer is (C), 选B, option C, a bare letter."""
    one = f"[{letters}]"
    many = f"{one}(?:\\s*[,，、和及与/]?\\s*{one})*"
    return [re.compile(p) for p in (
        f"答案\\s*(?:是|为|应该是|应为|应选|选)?\\s*[:：]?\\s*[(（]?\\s*({many})",
        f"(?i:answer)\\s*(?:(?i:is|should be|would be)\\s*)?[:：]?\\s*(?:(?i:option|choice)\\s*)?[(（]?\\s*({many})(?![A-Za-z])",
        f"(?:选择?|选项)\\s*[(（]?\\s*({many})(?![A-Za-z])",
        f"(?i:option|choice)\\s*[(（]?\\s*({one})(?![A-Za-z])",
        f"^\\s*[(（]?\\s*({many})\\s*[)）]?\\s*[.。．!！]?\\s*$",
        f"^\\s*[(（]?({one})[)）.．、:：\\s]",
    )]


def letters_param(name: str, params: Params, default: str | None) -> str | None:
    """The `letters` parameter: capital letters like ABCD."""
    letters = params.get("letters", default)
    if letters is not None and not (isinstance(letters, str) and re.fullmatch(r"[A-Z]+", letters)):
        raise ExtractorError(f"{name} letters must be capital letters like ABCD, not {letters!r}")
    return letters


def choice(params: Params) -> Run:
    """`choice`: the chosen letter(s), from Chinese or English phrasings, a bare letter or an option's text."""
    letters = str(letters_param("choice", params, "ABCD"))
    multiple = bool(params.get("multiple", False))
    patterns = choice_patterns(letters)
    lone = re.compile(f"(?<![A-Za-z])([{letters}])(?![A-Za-z])")

    def pick(found: str) -> str:
        chosen = [ch for ch in found if ch in letters]
        return "".join(sorted(set(chosen))) if multiple else chosen[0]

    def run(text: str, prompt: str) -> str | None:
        text = unicodedata.normalize("NFKC", text).strip()
        if multiple:  # several letters: lines "A. text", lists "A, C and D", option texts; else the phrasings
            found = letter_set(text, prompt, letters)
            if found:
                return "".join(found)
        for pattern in patterns:
            match = pattern.search(text)
            if match:
                return pick(match.group(1))
        by_text = option_by_text(text, prompt, letters)
        if by_text:
            return by_text
        alone = set(lone.findall(text))
        return alone.pop() if len(alone) == 1 else None
    return run


def option_by_text(text: str, prompt: str, letters: str) -> str | None:
    """The letter of the one option (listed as `B. text` in the prompt) whose text the answer contains."""
    answer = normalize(text)
    options = {letter: normalize(body) for letter, body in OPTION_LINE.findall(prompt) if letter in letters}
    found = [letter for letter, body in options.items() if body and body in answer]
    return found[0] if len(found) == 1 else None


def ordered_letters(params: Params) -> Run:
    """`letter_list`: the option letters an answer lists, in its order (a ranking or a retrieved list)."""
    letters = letters_param("letter_list", params, None)
    return lambda text, prompt: letter_list(text, prompt, letters)


def several_letters(params: Params) -> Run:
    """`letter_set`: the option letters an answer names, sorted, each once."""
    letters = letters_param("letter_set", params, None)
    return lambda text, prompt: letter_set(text, prompt, letters)


EXTRACTORS: dict[str, Callable[[Params], Run]] = {
    "text": whole_text,
    "first_line": first_line,
    "regex": regex,
    "choice": choice,
    "number": number,
    "json": json_path,
    "list": item_list,
    "letter_list": ordered_letters,
    "letter_set": several_letters,
}
PARAMETERS = {"text": set(), "first_line": set(), "regex": {"pattern", "flags", "occurrence"},
              "choice": {"letters", "multiple"}, "number": {"occurrence"}, "json": {"path"},
              "list": {"separators"}, "letter_list": {"letters"}, "letter_set": {"letters"}}


def build_extractor(spec: ExtractorSpec) -> Extractor:
    """An Extractor from `name` or `{name: ..., param: ...}`; ExtractorError says what is wrong."""
    params = dict(spec) if isinstance(spec, dict) else {"name": spec}
    name = params.pop("name", None)
    if name not in EXTRACTORS:
        raise ExtractorError(f"unknown extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")
    unknown = set(params) - PARAMETERS[name]
    if unknown:
        allowed = ", ".join(sorted(PARAMETERS[name])) or "none"
        raise ExtractorError(f"extractor {name} has no parameter {', '.join(sorted(unknown))} (it takes: {allowed})")
    return Extractor(name=name, params=params, run=EXTRACTORS[name](params))
