"""What varies in a sweep: grid values (`learning_rate=1e-4,3e-4`) and search ranges (`lora_rank=int:4:64`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tunelab.runtime.override import override_value

Scalar = str | int | float | bool | None
KINDS = ("log", "float", "int", "cat")
PARAM_HELP = "write KIND:LOW:HIGH (log, float, int) or cat:A,B,C, e.g. log:1e-5:1e-3, int:4:64, cat:lora,full"
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ParamError(ValueError):
    """A grid value list or a search range that cannot be read; the message says how to write it."""


def scalar(text: str) -> Scalar:
    """One typed value as YAML reads it, with 1e-4 read as a number (YAML 1.1 reads it as text)."""
    value = override_value(text.strip())
    if isinstance(value, str) and NUMBER.match(value):
        number = float(value)
        return int(number) if number.is_integer() and not re.search(r"[.eE]", value) else number
    if isinstance(value, (dict, list)):
        raise ParamError(f"{text!r} is not a single value")
    return value


def grid_values(raw: str | list[Scalar] | Scalar) -> list[Scalar]:
    """'1e-4,3e-4' (or a YAML list) -> [0.0001, 0.0003]; every value kept once, in order."""
    if isinstance(raw, str):
        items = [scalar(part) for part in raw.split(",")]
    elif isinstance(raw, list):
        items = [scalar(v) if isinstance(v, str) else v for v in raw]
    else:
        items = [raw]
    if any(isinstance(v, (dict, list)) for v in items):
        raise ParamError("grid values must be single values (numbers, words, true/false)")
    if not items:
        raise ParamError("give at least one value, e.g. 1e-4,3e-4")
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class ParamSpec:
    """A search range: log/float/int between low and high, or cat among choices."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Scalar, ...] = ()

    def values(self) -> list[Scalar]:
        """Every value a grid over this spec visits (cat choices, or every int of an int range)."""
        if self.kind == "cat":
            return list(self.choices)
        if self.kind == "int" and self.low is not None and self.high is not None:
            return list(range(int(self.low), int(self.high) + 1))
        raise ParamError(f"{self.kind} ranges have no finite list of values; a grid needs cat or int ranges")


def parse_param(text: str) -> ParamSpec:
    """'log:1e-5:1e-3' | 'int:4:64' | 'float:0:0.1' | 'cat:lora,full' -> ParamSpec."""
    kind, sep, rest = str(text).partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise ParamError(f"{text!r}: unknown range kind {kind!r}; {PARAM_HELP}")
    if kind == "cat":
        return ParamSpec("cat", choices=tuple(grid_values(rest)))
    bounds = rest.split(":")
    if len(bounds) != 2:
        raise ParamError(f"{text!r}: {kind} ranges need LOW:HIGH; {PARAM_HELP}")
    low, high = (scalar(b) for b in bounds)
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in (low, high)):
        raise ParamError(f"{text!r}: LOW and HIGH must be numbers; {PARAM_HELP}")
    if low >= high:
        raise ParamError(f"{text!r}: LOW must be below HIGH")
    if kind == "log" and low <= 0:
        raise ParamError(f"{text!r}: a log range needs LOW > 0")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ParamError(f"{text!r}: int ranges need whole numbers")
    return ParamSpec(kind, float(low), float(high))


def split_assignment(text: str, flag: str) -> tuple[str, str]:
    """'key=rest' -> (key, rest); anything else is a ParamError naming the flag."""
    key, sep, rest = text.partition("=")
    if not sep or not key.strip() or not rest.strip():
        raise ParamError(f"{flag} {text!r}: write KEY=VALUES, e.g. {flag} learning_rate=1e-4,3e-4")
    return key.strip(), rest.strip()
