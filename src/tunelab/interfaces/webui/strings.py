"""The web UI's en/zh strings, read from strings.yaml (data, not code)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")


@cache
def table() -> dict[str, dict[str, dict[str, str]]]:
    """The whole strings file: key -> language -> {label, info?}."""
    text = resources.files("tunelab.interfaces.webui").joinpath("strings.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def entry(key: str, lang: Lang) -> dict[str, str]:
    """The label (and info, when there is one) of a key in a language; a missing key is a KeyError naming it."""
    try:
        return table()[key][lang]
    except KeyError:
        raise KeyError(f"webui strings.yaml has no {lang!r} entry for {key!r}; add it") from None


def label(key: str, lang: Lang) -> str:
    """The label of a key in a language."""
    return entry(key, lang)["label"]


def info(key: str, lang: Lang) -> str | None:
    """The help text of a key in a language, if it has one."""
    return entry(key, lang).get("info")
