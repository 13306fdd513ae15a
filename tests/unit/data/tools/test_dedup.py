"""Normalisation levels and grouping of `tunelab data dedup`."""

from __future__ import annotations

from pathlib import Path

from tunelab.data.tools.dedup import find_duplicates, kept_rows, normalize


def test_normalize_levels() -> None:
    assert normalize("ＨＥＬＬＯ　 World", "none") == "ＨＥＬＬＯ　 World"
    assert normalize("ＨＥＬＬＯ　 World", "whitespace") == "hello world"
    assert normalize("你好，世界！「测试」…", "punct") == normalize("你好,世界!测试", "punct") == "你好世界测试"


def test_groups_keep_the_first_row_and_label_exact_ones() -> None:
    rows = [{"q": "a", "n": 1}, {"q": "A!", "n": 2}, {"q": "b"}, {"q": "a", "n": 3}]
    report = find_duplicates(rows, Path("x.json"))
    assert [(g.rows, g.kind) for g in report.groups] == [([1, 2, 4], "normalised")]
    assert kept_rows(rows, report) == [{"q": "a", "n": 1}, {"q": "b"}]
    exact = find_duplicates(rows, Path("x.json"), ["q"], "none")
    assert [(g.rows, g.kind) for g in exact.groups] == [([1, 4], "exact")]


def test_conversations_are_compared_by_their_text() -> None:
    turn = [{"from": "human", "value": "你好！"}, {"from": "gpt", "value": "Hi"}]
    other = [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "hi"}]
    report = find_duplicates([{"conversations": turn}, {"conversations": other}], Path("x.json"))
    assert report.groups[0].rows == [1, 2] and report.groups[0].preview == "human | 你好！ | gpt | Hi"
