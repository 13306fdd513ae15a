"""JSON parsing that refuses an object naming the same key twice (the json module keeps the last value silently).

Every reader of user JSON (data files, dataset_info.json, API request bodies) parses through `loads` or hands
`decoder()` to its own loop; a repeated key raises `DuplicateKey` with the path of the object that repeats it, so
the caller can name the file, row and field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import JsonValue


class DuplicateKey(ValueError):
    """An object names `key` twice; `path` leads from the parsed value to that object ([2].messages[0])."""

    def __init__(self, key: str, path: str) -> None:
        self.key, self.path = key, path
        super().__init__(f"the key {key!r} appears twice in one object" + (f" (at {path})" if path else ""))

    @property
    def field(self) -> str:
        """Where the repeated key is, as a field name: messages[0].content."""
        return f"{self.path}.{self.key}" if self.path else self.key


class Repeated(dict):  # type: ignore[type-arg]
    """An object that named a key twice (marked while parsing, found afterwards by `find_repeated`)."""

    repeated: str = ""


PairsHook = Callable[[list[tuple[str, "JsonValue"]]], dict[str, "JsonValue"]]


def pairs_hook(found: list[str]) -> PairsHook:
    """An object_pairs_hook that marks objects with a repeated key and notes each such key in found."""
    def hook(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
        obj: dict[str, JsonValue] = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        marked = Repeated(pairs)
        marked.repeated = key
        found.append(key)
        return marked
    return hook


def find_repeated(value: object, path: str = "") -> DuplicateKey | None:
    """The first object (depth first, in document order) that was marked as repeating a key."""
    if isinstance(value, Repeated):
        return DuplicateKey(value.repeated, path)
    items = (value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        sub = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        hit = find_repeated(item, sub)
        if hit is not None:
            return hit
    return None


def decoder(found: list[str]) -> json.JSONDecoder:
    """A JSONDecoder (for raw_decode loops) that marks repeated keys and notes them in found."""
    return json.JSONDecoder(object_pairs_hook=pairs_hook(found))


def loads(text: str | bytes) -> JsonValue:
    """json.loads, but an object with a repeated key raises DuplicateKey (json.JSONDecodeError as usual);
    nesting too deep for the parser is a JSONDecodeError too, not a RecursionError."""
    found: list[str] = []
    try:
        value = json.loads(text, object_pairs_hook=pairs_hook(found))
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text if isinstance(text, str) else "", 0) from None
    check(value, found)
    return value


def check(value: object, found: list[str]) -> None:
    """Raise DuplicateKey when parsing value noted a repeated key."""
    if found:
        hit = find_repeated(value)
        raise hit if hit is not None else DuplicateKey(found[0], "")
