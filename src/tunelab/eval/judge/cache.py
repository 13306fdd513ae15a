"""The judge's cache: every reply appended to a JSONL file the moment it arrives, keyed by a hash of what was
asked (judge, rubric text, scale, question, answer(s), reference), so a rerun or a resumed run asks only what
it has not asked, and Ctrl-C loses nothing received."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path


def question_key(judge: str, rubric: str, scale: tuple[int, int], question: str, answer: str,
                 reference: str | None, answer_b: str | None = None) -> str:
    """A stable hash of everything that decides the judge's reply (pairwise: answer is A, answer_b is B)."""
    payload = json.dumps({"judge": judge, "rubric": rubric, "scale": list(scale), "question": question,
                          "answer": answer, "answer_b": answer_b, "reference": reference}, ensure_ascii=False,
                         sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Verdict:
    """One reply of the judge to one question: its text, what was read from it (None: unreadable), the attempt."""

    key: str
    text: str
    value: float | str | None
    attempt: int


class JudgeCache:
    """The replies received so far, by question key (the latest attempt wins); appends as replies arrive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.verdicts: dict[str, Verdict] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    verdict = Verdict(**json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    continue  # a line cut by an interrupted write: that reply is asked again
                if verdict.key not in self.verdicts or verdict.attempt >= self.verdicts[verdict.key].attempt:
                    self.verdicts[verdict.key] = verdict

    def get(self, key: str) -> Verdict | None:
        """The latest reply to a question, if any."""
        return self.verdicts.get(key)

    def add(self, verdict: Verdict) -> None:
        """Keep a reply and append it to the file at once."""
        self.verdicts[verdict.key] = verdict
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(verdict), ensure_ascii=False) + "\n")
