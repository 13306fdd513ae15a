"""Reading a judge's reply: the score on the scale (`评分：8`, `[[8]]`, `8/10`, `Score: 8.5`, `Rating: **7**`, full-width
digits, 八分) or the pairwise verdict (`[[A]]`, `[[B]]`, `[[C]]` for a tie, `A更好`, `平局`).

A reply is read in order of how deliberate the form is: the bracket form a rubric asks for, then a score keyword
at the start of a line (the last such line: a final verdict), then one anywhere, then "N/max" or "N out of max",
then a reply that is only a number. A range ("7-8"), a value off the scale and replies naming two different
verdicts are not guessed at: they come back None and the row is asked again, then reported.
"""

from __future__ import annotations

import re
import unicodedata

NUMBER = r"(-?\d+(?:\.\d+)?|[零一二两三四五六七八九十]{1,2})"
RANGE_AFTER = re.compile(r"\s*(?:-|–|—|~|～|到|至)\s*\d")
CHINESE_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
DECORATION = r"[\s*#>_`\-•]*"  # markdown around a verdict line: bullets, bold, headings
KEYWORDS = (r"(?:final\s+score|overall\s+score|overall\s+rating|score|rating|grade|评分|得分|打分|分数|总分|最终得分"
            r"|综合评分|最终评分|评分结果)")
KEYWORD_TAIL = r"(?:\s*(?:of|is|为|是|应为|给出|：|:|=)\s*)*\**\s*\[?\s*"
BRACKETS = re.compile(r"\[\[\s*" + NUMBER + r"\s*(?:/\s*\d+\s*)?\]\]")
LINE_KEYWORD = re.compile(r"(?im)^" + DECORATION + KEYWORDS + r"\**" + KEYWORD_TAIL + NUMBER)
ANY_KEYWORD = re.compile(r"(?i)" + KEYWORDS + r"\**" + KEYWORD_TAIL + NUMBER)
GIVE = re.compile(r"(?:打|给出?|给予|评为|评)\s*了?\s*" + NUMBER + r"\s*分")
OUT_OF = re.compile(r"(?i)" + NUMBER + r"\s*\**\s*(?:/|out\s+of|分\s*/|分（满分|分\(满分|（满分|\(满分)\s*(\d+)")
ALONE = re.compile(r"^\s*\**\s*" + NUMBER + r"\s*(?:分|points?)?\s*\**\s*[。.!！]?\s*$")
LAST_LINE = re.compile(r"(?m)^\s*\**\s*" + NUMBER + r"\s*分\s*\**\s*[。.!！]?\s*$")


def normalized(text: str) -> str:
    """Full-width digits and punctuation as ASCII (NFKC), so `８`, `［［8］］` and `：` read like the rest."""
    return unicodedata.normalize("NFKC", text)


def number(token: str) -> float | None:
    """A matched number: digits, or a Chinese numeral up to 十九 (一 to 九, 十, 十X, X十)."""
    if re.fullmatch(r"-?\d+(?:\.\d+)?", token):
        return float(token)
    if len(token) == 1:
        return 10.0 if token == "十" else float(CHINESE_DIGITS[token])
    first, second = token
    if first == "十" and second in CHINESE_DIGITS:
        return 10.0 + CHINESE_DIGITS[second]
    if second == "十" and first in CHINESE_DIGITS:
        return 10.0 * CHINESE_DIGITS[first]
    return None


def read_match(text: str, match: re.Match[str], low: float, high: float) -> float | None:
    """The match's number when it is on the scale and not the start of a range."""
    if RANGE_AFTER.match(text, match.end(1)):
        return None
    value = number(match.group(1))
    return value if value is not None and low <= value <= high else None


def last_value(pattern: re.Pattern[str], text: str, low: float, high: float) -> tuple[bool, float | None]:
    """(whether the pattern occurs, the value of its last occurrence or None when that one is unusable)."""
    matches = list(pattern.finditer(text))
    if not matches:
        return False, None
    return True, read_match(text, matches[-1], low, high)


def parse_score(reply: str, low: float, high: float) -> float | None:
    """The score a judge gave on the scale low..high, or None when the reply does not say one clearly."""
    text = normalized(reply)
    for pattern in (BRACKETS, LINE_KEYWORD, ANY_KEYWORD, GIVE):
        found, value = last_value(pattern, text, low, high)
        if found:
            return value
    outs = [m for m in OUT_OF.finditer(text) if float(m.group(2)) == high]
    if outs:
        return read_match(text, outs[-1], low, high)
    for pattern in (ALONE, LAST_LINE):
        found, value = last_value(pattern, text, low, high)
        if found:
            return value
    return None


VERDICT_BRACKETS = re.compile(r"\[\[\s*([ABC])\s*\]\]", re.I)
VERDICT_FORMS = (
    (re.compile(r"(?i)(?:verdict|winner|better\s+(?:answer|response)|胜者|获胜者|结论|判定|裁决|更好的(?:是|回答是|答案是)"
                r"|更优的(?:是|回答是|答案是))\**\s*(?:is|为|是|:|：)?\s*\**\s*(?:答案|回答|assistant|answer|response)?"
                r"\s*\(?([ABC])(?![A-Za-z])"), None),
    (re.compile(r"(?i)(?:答案|回答|assistant|answer|response)\s*\(?([AB])\)?\s*(?:更好|更优|胜出|获胜|较好|更佳|is\s+better|wins)"),
     None),
    (re.compile(r"(?i)(平局|打平|不相上下|难分高下|两者相当|一样好|\btie\b|equally\s+good)"), "C"),
)


def parse_verdict(reply: str) -> str | None:
    """A for the first answer, B for the second, C for a tie; None when the reply does not say, or says two."""
    text = normalized(reply)
    brackets = VERDICT_BRACKETS.findall(text)
    if brackets:
        return brackets[-1].upper()
    said = set()
    for pattern, fixed in VERDICT_FORMS:
        said |= {fixed or found.upper() for found in pattern.findall(text)}
    return said.pop() if len(said) == 1 else None
