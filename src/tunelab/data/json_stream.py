"""A JSON array file read one element at a time (streaming: memory holds one read block, not the file)."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.data.errors import DataError
from tunelab.runtime import strict_json
from tunelab.runtime.strict_json import DuplicateKey

if TYPE_CHECKING:
    from pydantic import JsonValue

BLOCK = 1 << 20
WHITESPACE = " \t\n\r"


class ArrayReader:
    """Decoded text of a file, block by block, with the position of the next unread character."""

    def __init__(self, path: Path, dataset: str, block: int = BLOCK) -> None:
        self.path, self.dataset, self.block = path, dataset, block
        self.handle = path.open("rb")
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text, self.pos, self.lines_before, self.eof = "", 0, 0, False
        self.bytes_read = 0

    def more(self) -> bool:
        """Read the next block; False at the end of the file."""
        if self.eof:
            return False
        data = self.handle.read(self.block)
        self.eof = not data
        try:
            decoded = self.decoder.decode(data, final=self.eof)
        except UnicodeDecodeError as exc:
            offset = self.bytes_read + exc.start
            raise DataError(f"invalid UTF-8 at byte {offset}", dataset=self.dataset, file=str(self.path),
                            fix="save the file as UTF-8") from None
        self.bytes_read += len(data)
        self.lines_before += self.text.count("\n", 0, self.pos)
        self.text, self.pos = self.text[self.pos:] + decoded, 0
        return not self.eof or bool(decoded)

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the file), without consuming it."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def value(self, decoder: json.JSONDecoder) -> JsonValue:
        """The next JSON value; reads further blocks until it is whole."""
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
                if end < len(self.text) or self.eof:  # a number at the block's end may continue in the next
                    self.pos = end
                    return value
            except json.JSONDecodeError as exc:
                if self.eof:
                    line = self.lines_before + self.text.count("\n", 0, exc.pos) + 1
                    raise DataError(f"not valid JSON at line {line}: {exc.msg}", dataset=self.dataset,
                                    file=str(self.path), fix="fix the JSON syntax") from None
            self.more()

    def error(self, problem: str) -> DataError:
        """A syntax error at the current position."""
        line = self.lines_before + self.text.count("\n", 0, self.pos) + 1
        return DataError(f"not valid JSON at line {line}: {problem}", dataset=self.dataset, file=str(self.path),
                         fix="fix the JSON syntax")


def iter_json_array(path: Path, dataset: str, block: int = BLOCK) -> Iterator[JsonValue] | None:
    """The elements of a file holding one JSON array, lazily; None if the file is not an array (an object, or
    JSON lines under a .json name: read those whole)."""
    reader = ArrayReader(path, dataset, block)
    if reader.peek() != "[":
        reader.handle.close()
        return None
    return elements(reader)


def elements(reader: ArrayReader) -> Iterator[JsonValue]:
    """Yield the array's elements one by one; an element naming a key twice is an error for its row."""
    found: list[str] = []
    decoder = strict_json.decoder(found)
    row = 0
    with reader.handle:
        reader.pos += 1  # the opening bracket
        if reader.peek() == "]":
            return
        while True:
            if reader.peek() == "":
                raise reader.error("the file ends inside the array (missing ']')")
            value = reader.value(decoder)
            row += 1
            if found:
                hit = strict_json.find_repeated(value) or DuplicateKey(found[0], "")
                raise DataError(f"the key {hit.key!r} appears twice in one object; JSON keeps only the last value",
                                dataset=reader.dataset, file=str(reader.path), row=row, field=hit.field,
                                fix="remove or rename one of them")
            yield value
            following = reader.peek()
            reader.pos += 1
            if following == "]":
                if reader.peek() != "":
                    raise reader.error("text after the closing ']'")
                return
            if following != ",":
                raise reader.error(f"expected ',' or ']' after an element, found {following!r}")
