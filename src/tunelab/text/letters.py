"""Option letters listed in an answer, in the answer's order: the shapes ranking, retrieval and multi-answer
choice answers take.

Read from each line: a line of letters alone ("A > C > B", "A, C, B", "A C B", "ACB"), letters listed inside
a sentence with separators ("the order is B > A", "A, C and D"), a line labelled with one letter ("1. A",
"A. running shoes", "(C) socks"), or a line naming exactly one option's text as the prompt lists it
(`B. socks`). When the answer has a cue ("答案：", "排序：", "Answer:", "ranking") after which letters follow,
only what follows the last such cue is read, so options repeated before the answer do not count.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache

from tunelab.text.normalize import normalize

OPTION_LINE = re.compile(r"^\s*\(?([A-Z])\s*[.．、:：)）]\s*(.+?)\s*$", re.MULTILINE)
# Leading numbering and bullets: "1.", "2)", "(3)", "4、", "5:", "- ", "第1名：", "Top 1:", "Rank 2 -".
NUMBERING = re.compile(r"^\s*(?:[-*•·]|[(（]?\d+\s*[.)、．）]|\d+\s*[:：]|第\s*\d+\s*[名位个]?\s*[:：、.]?"
                       r"|(?i:top|rank|no\.?)\s*\d+\s*[:：.\-)]?)\s*")
CUE = re.compile(r"(?:答案|排序|排名|顺序|结果|选项|选择|(?i:final answer|answer|ranking|ranked|order))"
                 r"\s*(?:(?i:is|are|was|should be|would be)|为|是|如下|应为|应该是)?\s*[:：]?", re.MULTILINE)
# Between two listed letters: an arrow or comparison, a comma or list mark, a conjunction, or spaces.
SEPARATOR = (r"(?:\s*(?:->|=>|>|＞|→|,|，|、|;|；|/|\|)\s*(?:(?i:and|then)\s+)?|\s*,?\s+(?i:and|then|or)\s+"
             r"|\s*(?:和|及|与|以及|或)\s*|\s+)")
ALL_LETTERS = string.ascii_uppercase


@lru_cache(maxsize=64)
def patterns(letters: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The line shapes for a set of letters: letters alone, leading list, one-letter label, list in a sentence."""
    one = f"[{letters}]"
    alone = re.compile(f"[(（\\[]?({one}(?:(?:{SEPARATOR})?{one})*)[)）\\]]?\\s*[.。!！]?")
    leading = re.compile(f"[(（\\[]?({one}(?:{SEPARATOR}{one})+)(?![A-Za-z])")
    label = re.compile(f"[(（\\[]?({one})(?:\\s*[)）\\].．、:：]|\\s+(?![A-Za-z])|$)")
    inside = re.compile(f"(?<![A-Za-z])({one}(?:{SEPARATOR}{one})+)(?![A-Za-z])")
    return alone, leading, label, inside


def prompt_options(prompt: str, letters: str) -> dict[str, str]:
    """Letter -> normalised option text, for the options the prompt lists as `B. text` lines."""
    return {letter: normalize(body) for letter, body in OPTION_LINE.findall(prompt) if letter in letters}


def option_named(piece: str, options: dict[str, str]) -> str | None:
    """The letter of the option whose text a piece is (or, failing that, the one option text it contains)."""
    said = normalize(piece)
    if not said:
        return None
    equal = [letter for letter, body in options.items() if body and body == said]
    if len(equal) == 1:
        return equal[0]
    contained = [letter for letter, body in options.items() if body and body in said]
    return contained[0] if len(contained) == 1 else None


def line_letters(line: str, letters: str, options: dict[str, str]) -> list[str]:
    """The letters one line lists (empty when it lists none)."""
    alone, leading, label, inside = patterns(letters)
    body = NUMBERING.sub("", line, count=1).strip()
    if not body:
        return []
    for pattern, anchored in ((alone, "full"), (leading, "start"), (label, "start"), (inside, "search")):
        match = (pattern.fullmatch(body) if anchored == "full" else
                 pattern.match(body) if anchored == "start" else pattern.search(body))
        if match:
            return [ch for ch in match.group(1) if ch in letters]
    pieces = [p for p in re.split(r"[,，、;；|>＞→]", body) if p.strip()]
    named = [option_named(piece, options) for piece in pieces]
    return [letter for letter in named if letter]


def listed(text: str, letters: str, options: dict[str, str]) -> list[str]:
    """The distinct letters a text lists, line by line, in order of first mention."""
    found: list[str] = []
    for line in text.splitlines():
        for letter in line_letters(line, letters, options):
            if letter not in found:
                found.append(letter)
    return found


def letter_list(text: str, prompt: str = "", letters: str | None = None) -> list[str] | None:
    """The option letters an answer lists, in its order (None when it lists none).

    `letters` are the allowed ones; by default those the prompt lists as `A. text` lines, else A-Z.
    """
    text = unicodedata.normalize("NFKC", text or "")
    prompt = unicodedata.normalize("NFKC", prompt or "")
    if letters is None:
        letters = "".join(sorted(set(prompt_options(prompt, ALL_LETTERS)))) or ALL_LETTERS
    options = prompt_options(prompt, letters)
    for cue in reversed(list(CUE.finditer(text))):
        rest_of_line, _, below = text[cue.end():].partition("\n")
        # letters on the cue's own line are the answer; lines below it (an explanation) then do not count
        after = listed(rest_of_line, letters, options) or listed(below, letters, options)
        if after:
            return after
    return listed(text, letters, options) or None


def letter_set(text: str, prompt: str = "", letters: str | None = None) -> list[str] | None:
    """The option letters an answer names, sorted and each once (None when it names none)."""
    found = letter_list(text, prompt, letters)
    return sorted(found) if found else None
