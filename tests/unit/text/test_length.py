"""Length rules on Chinese, English, mixed text, emoji, full-width punctuation and empty text."""

from __future__ import annotations

import pytest

from tunelab.text.length import LengthRuleError, chars, chars_no_space, length_rule, token_rule, words


@pytest.mark.parametrize(("text", "all_chars", "no_space", "word_count"), [
    ("春节快乐，万事如意！", 10, 10, 8),  # full-width punctuation counts as characters, not as words
    ("春节 快乐\n万事\u3000如意", 11, 8, 8),  # space, line break and the full-width space U+3000 left out
    ("Hello, world!  How are you?", 27, 22, 5),
    ("新年好 Happy new year 2025!", 24, 20, 7),  # 3 Han characters + 4 words
    ("😀👍🏽e\u0301", 3, 3, 1),  # an emoji, an emoji with its skin tone, e + combining accent: one each
    ("👨\u200d👩\u200d👧 家", 3, 2, 1),  # a family emoji joined by ZWJ is one character
    ("——！", 3, 3, 0),  # punctuation alone is no word
    ("\u200b \r\n\t\xa0", 5, 0, 0),  # zero-width space, space, CRLF (one), tab, no-break space: all invisible
    ("", 0, 0, 0),
])
def test_rules(text: str, all_chars: int, no_space: int, word_count: int) -> None:
    assert (chars(text), chars_no_space(text), words(text)) == (all_chars, no_space, word_count)


def test_spreadsheet_rule_matches_len_without_spaces_and_line_breaks() -> None:
    text = "祝大家春节快乐，\n阖家幸福 万事如意。\r\n新春大吉！"
    assert chars_no_space(text) == len(text.replace(" ", "").replace("\r", "").replace("\n", ""))


def test_japanese_counts_one_word_per_kana() -> None:
    assert words("こんにちは world") == 6


def test_tokens_rule_counts_the_encoders_ids() -> None:
    rule = token_rule(lambda text: text.split())
    assert rule("a b c") == 3 and rule("") == 0
    assert length_rule("tokens", lambda text: list(text))("abcd") == 4


def test_rule_lookup_and_errors() -> None:
    assert length_rule("chars_no_space") is chars_no_space
    with pytest.raises(LengthRuleError, match="give the tokenizer's encode"):
        length_rule("tokens")
    with pytest.raises(LengthRuleError, match="unknown length rule 'char'; use one of chars_no_space"):
        length_rule("char")
