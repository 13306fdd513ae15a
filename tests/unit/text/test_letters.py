"""Option letters listed in ranking, retrieval and multi-answer choice answers."""

from __future__ import annotations

import pytest

from tunelab.text.extract import ExtractorError, build_extractor
from tunelab.text.letters import letter_list, letter_set

PROMPT = "按与“跑步”的相关性给商品排序：\nA. 跑鞋\nB. 袜子\nC. 帽子\nD. 手套\n"


@pytest.mark.parametrize("answer, order", [
    ("A > C > B > D", "ACBD"),
    ("A, C, B, D", "ACBD"),
    ("A，C，B，D", "ACBD"),
    ("A、C、B", "ACB"),
    ("ACBD", "ACBD"),
    ("1. A\n2. C\n3. B", "ACB"),
    ("A. 跑鞋\nC. 帽子\nB. 袜子", "ACB"),
    ("1. A. 跑鞋\n2. C. 帽子", "AC"),
    ("(C) 帽子\n(A) 跑鞋", "CA"),
    ("1. 帽子\n2. 跑鞋\n3. 袜子", "CAB"),            # option texts only
    ("帽子 > 跑鞋 > 袜子", "CAB"),
    ("排序结果：C > A > B", "CAB"),
    ("The ranking is C, A and B.", "CAB"),
    ("我认为顺序是 B>A>D>C，因为跑鞋最相关", "BADC"),
    ("第1名：B\n第2名：A", "BA"),
])
def test_ordered_letters_in_the_shapes_answers_take(answer: str, order: str) -> None:
    assert letter_list(answer, PROMPT) == list(order)
    assert build_extractor("letter_list")(answer, PROMPT) == list(order)


def test_options_repeated_before_the_answer_and_explanations_after_it_do_not_count() -> None:
    assert letter_list("选项有：\nA. 跑鞋\nB. 袜子\nC. 帽子\n答案：C > A > B", PROMPT) == ["C", "A", "B"]
    assert letter_list("答案：B、A\n解析：C 和 D 与跑步无关", PROMPT) == ["B", "A"]
    assert letter_list("Answer:\nC. 帽子\nA. 跑鞋", PROMPT) == ["C", "A"]


def test_nothing_listed_is_none_and_letters_default_to_the_prompts_options() -> None:
    assert letter_list("无法判断", PROMPT) is None
    assert letter_list("I think so", PROMPT) is None
    assert letter_list("A > E > C", PROMPT) == ["A"]              # E is not an option of this prompt
    assert letter_list("A > E > C", "") == ["A", "E", "C"]        # no options listed: any capital letter
    assert build_extractor({"name": "letter_list", "letters": "ABCDE"})("A > E > C", PROMPT) == ["A", "E", "C"]


def test_letter_set_sorts_and_dedupes() -> None:
    assert letter_set("D, A and C, A", PROMPT) == ["A", "C", "D"]
    assert build_extractor("letter_set")("C. 帽子\nA. 跑鞋", PROMPT) == ["A", "C"]
    assert letter_set("不知道", PROMPT) is None


@pytest.mark.parametrize("answer", ["A, C, D", "The answer is A, C and D", "A. 跑鞋\nC. 帽子\nD. 手套",
                                    "答案：ACD", "答案是 D、A、C", "跑鞋\n帽子\n手套"])
def test_choice_with_multiple_reads_every_letter(answer: str) -> None:
    assert build_extractor({"name": "choice", "multiple": True})(answer, PROMPT) == "ACD"


def test_bad_letters_parameter() -> None:
    with pytest.raises(ExtractorError, match="letter_list letters must be capital letters"):
        build_extractor({"name": "letter_list", "letters": "abc"})
    with pytest.raises(ExtractorError, match="has no parameter multiple"):
        build_extractor({"name": "letter_set", "multiple": True})
