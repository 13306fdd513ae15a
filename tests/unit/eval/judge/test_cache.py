"""The judge cache: keys change with everything that decides the reply; the file is read back, latest attempt
first, a cut last line ignored."""

from __future__ import annotations

import json
from pathlib import Path

from tunelab.eval.judge.cache import JudgeCache, Verdict, question_key

BASE = {"judge": "http://h/v1#m", "rubric": "rate {{ answer }}", "scale": (1, 10), "question": "q", "answer": "a",
        "reference": None}


def test_every_part_of_the_question_changes_the_key() -> None:
    key = question_key(**BASE)  # type: ignore[arg-type]
    assert key == question_key(**BASE)  # type: ignore[arg-type]
    changes = {"judge": "local:other", "rubric": "grade {{ answer }}", "scale": (1, 5), "question": "q2",
               "answer": "a2", "reference": "ref"}
    keys = {question_key(**{**BASE, name: value}) for name, value in changes.items()}  # type: ignore[arg-type]
    assert key not in keys and len(keys) == len(changes)
    assert question_key(**BASE, answer_b="b") != key  # type: ignore[arg-type]


def test_replies_are_appended_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "judge_cache" / "t.jsonl"
    cache = JudgeCache(path)
    cache.add(Verdict("k1", "hmm", None, 1))
    cache.add(Verdict("k1", "[[7]]", 7.0, 2))
    cache.add(Verdict("k2", "[[A]]", "A", 1))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "k3", "text": "cut')  # an interrupted write
    again = JudgeCache(path)
    assert again.get("k1") == Verdict("k1", "[[7]]", 7.0, 2)
    assert again.get("k2") is not None and again.get("k2").value == "A"  # type: ignore[union-attr]
    assert again.get("k3") is None
    assert len(path.read_text(encoding="utf-8").splitlines()) == 4
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["attempt"] == 1
