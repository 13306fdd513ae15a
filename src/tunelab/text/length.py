"""Length rules: how long a text is, counted the way a length-controlled prompt asks ("write 95 characters").

Pure functions of the text, shared by the `length` eval kind and (later) GRPO length rewards.

- A character is a user-perceived character (a Unicode grapheme cluster): 😀, 👍🏽 and an accented letter
  written as two code points each count once. A spreadsheet's LEN counts UTF-16 units (an emoji counts twice
  there); for Chinese, Latin letters, digits and punctuation the two agree.
- `chars_no_space` (the default for Chinese) leaves out every whitespace character: spaces, tabs, line breaks
  (\\n, \\r\\n), the full-width space U+3000 and no-break spaces, plus invisible format characters such as the
  zero-width space. It is the rule of the user story: LEN of the text with spaces and line breaks removed,
  which matches Word's character count without spaces.
- `chars` counts every character, whitespace included.
- `words` counts whitespace-separated words, except that every Chinese or Japanese character (Han, Hiragana,
  Katakana) is one word on its own, as Word counts East Asian text; runs of punctuation or emoji alone are no
  word.
- `tokens` counts the tokens of a tokenizer: build it with `token_rule(encode)`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

import regex

LengthRule = Callable[[str], int]  # text -> its length

GRAPHEME = regex.compile(r"\X")
EAST_ASIAN = r"\p{Han}\p{Hiragana}\p{Katakana}"
WORD_PIECE = regex.compile(rf"[{EAST_ASIAN}]|[^\s{EAST_ASIAN}]+")
WORDLIKE = regex.compile(rf"[{EAST_ASIAN}\p{{L}}\p{{N}}]")

RULE_NAMES = ("chars_no_space", "chars", "words", "tokens")
UNITS = {"chars_no_space": "characters without spaces and line breaks", "chars": "characters",
         "words": "words", "tokens": "tokens"}


class LengthRuleError(ValueError):
    """A rule name that does not exist, or the tokens rule without a tokenizer."""


def invisible(cluster: str) -> bool:
    """Whether a character shows no mark: whitespace or format characters (zero-width space, BOM) only."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in cluster)


def chars(text: str) -> int:
    """Every character (grapheme cluster), whitespace included."""
    return len(GRAPHEME.findall(text))


def chars_no_space(text: str) -> int:
    """Characters without spaces, line breaks and other invisible characters (the spreadsheet LEN rule)."""
    return sum(1 for cluster in GRAPHEME.findall(text) if not invisible(cluster))


def words(text: str) -> int:
    """Whitespace-separated words; each Chinese or Japanese character is a word; punctuation alone is none."""
    return sum(1 for piece in WORD_PIECE.findall(text) if WORDLIKE.search(piece))


def token_rule(encode: Callable[[str], Sequence[int]]) -> LengthRule:
    """The tokens rule for one tokenizer: encode is the tokenizer's text -> ids, without special tokens."""
    def tokens(text: str) -> int:
        return len(encode(text)) if text else 0
    return tokens


RULES: dict[str, LengthRule] = {"chars_no_space": chars_no_space, "chars": chars, "words": words}


def length_rule(name: str, encode: Callable[[str], Sequence[int]] | None = None) -> LengthRule:
    """The rule of a name; `tokens` needs the tokenizer's encode."""
    if name == "tokens":
        if encode is None:
            raise LengthRuleError("the tokens rule counts a tokenizer's tokens; give the tokenizer's encode")
        return token_rule(encode)
    if name not in RULES:
        raise LengthRuleError(f"unknown length rule {name!r}; use one of {', '.join(RULE_NAMES)}")
    return RULES[name]
