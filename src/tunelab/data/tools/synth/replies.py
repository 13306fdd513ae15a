"""A reply -> records (text, one JSON object, or a JSON list of pairs), the output checks (truncation, schema,
regex) and normalisation (strip, full-width punctuation). A rejected reply says why, grouped by a short kind."""

from __future__ import annotations

import json
import re

from tunelab.data.tools.synth.config import ChecksSection, NormalizeSection, ReplySection
from tunelab.text.layout import FENCED, Layout, schema_layout

Record = dict[str, str]  # instruction, input, output
# full-width ASCII forms U+FF01..U+FF5E -> U+0021..U+007E, the ideographic space and full stop, the Chinese comma
HALFWIDTH = {**{code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}, 0x3000: " ", 0x3002: ".", 0x3001: ","}
FULLWIDTH = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；", "(": "（", ")": "）"}
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
NEXT_TO_CJK = re.compile(rf"(?<=[{CJK}])([,?!:;()])|([,?!:;()])(?=[{CJK}])")


class Rejection(Exception):
    """Why a reply gives no record: a short kind (how the report groups them) and the detail."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


def unify_punctuation(text: str, how: str) -> str:
    """halfwidth: full-width forms to ASCII; fullwidth: ASCII punctuation next to Chinese characters to full width."""
    if how == "halfwidth":
        return text.translate(HALFWIDTH)
    if how == "fullwidth":
        return NEXT_TO_CJK.sub(lambda m: FULLWIDTH[m.group(1) or m.group(2)], text)
    return text


def normalize_record(record: Record, section: NormalizeSection) -> Record:
    """Each field stripped and its punctuation unified, as the section asks."""
    out = {}
    for key, value in record.items():
        value = unify_punctuation(value, section.punctuation)
        out[key] = value.strip() if section.strip else value
    return out


def json_value(text: str) -> object:
    """The reply as JSON: the whole text, a ```json fence, or the outermost {...} / [...] span in it."""
    stripped = text.strip()
    fenced = FENCED.search(stripped)
    candidates = [stripped] + ([fenced.group(1)] if fenced else [])
    for opening, closing in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opening), stripped.rfind(closing)
        if 0 <= start < end:
            candidates.append(stripped[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise Rejection("not JSON", f"no JSON value in the reply (starts {stripped[:60]!r})")


def mapped(item: object, fields: dict[str, str], where: str) -> Record:
    """One JSON object -> a record through the field map; instruction and output must be non-empty text."""
    if not isinstance(item, dict):
        raise Rejection("not an object", f"{where} is a {type(item).__name__}, not a JSON object")
    record = {}
    for target, source in fields.items():
        value = item.get(source)
        if value is None and target == "input":
            value = ""
        if value is None:
            raise Rejection("missing field", f"{where} has no key {source!r} (for {target}); keys: "
                                             f"{', '.join(map(str, item)) or '(none)'}")
        record[target] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    record.setdefault("input", "")
    return record


def parse(text: str, prompt: str, section: ReplySection) -> list[Record]:
    """The records a reply gives in the configured mode."""
    if section.mode == "text":
        return [{"instruction": prompt, "input": "", "output": text}]
    value = json_value(text)
    if section.mode == "json":
        return [mapped(value, section.fields, "the reply")]
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), list):
        value = next(iter(value.values()))  # {"pairs": [...]}: the one list inside
    if not isinstance(value, list) or not value:
        raise Rejection("not a list", "pairs mode needs a non-empty JSON list of objects")
    return [mapped(item, section.fields, f"item {number}") for number, item in enumerate(value, start=1)]


class Checker:
    """Parses, normalises and checks one reply; Rejection with the reason when it gives no usable record."""

    def __init__(self, reply: ReplySection, checks: ChecksSection, normalize: NormalizeSection) -> None:
        self.reply, self.checks, self.normalize = reply, checks, normalize
        self.schema: Layout | None = schema_layout(checks.json_schema) if checks.json_schema is not None else None
        self.regex = re.compile(checks.regex) if checks.regex is not None else None

    def records(self, text: str, finish_reason: str | None, prompt: str) -> list[Record]:
        """The accepted records of a reply (normalised), or Rejection."""
        if self.checks.reject_truncated and finish_reason == "length":
            raise Rejection("truncated", "the reply was cut off by generation.max_tokens; raise it or set "
                                         "checks.reject_truncated: false")
        if self.schema is not None:
            verdict = self.schema.check(text)
            if not verdict.ok:
                raise Rejection("schema", verdict.why)
        records = [normalize_record(record, self.normalize) for record in parse(text, prompt, self.reply)]
        for record in records:
            for key in ("instruction", "output"):
                if not record[key].strip():
                    raise Rejection(f"empty {key}", f"the {key} is empty")
            if self.regex is not None and not self.regex.search(record["output"]):
                raise Rejection("regex", f"the output does not match checks.regex {self.regex.pattern!r}")
        return records
