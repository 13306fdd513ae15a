"""The progress printers: the training line's text, a live line on a terminal, counted tasks in logs."""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import Clock, patched_clock
from tunelab.runtime import progress
from tunelab.runtime.progress import Counter, LiveLine, TrainingFields, format_seconds


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return patched_clock(monkeypatch, progress)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (65.9, "1:05"), (3723, "1:02:03"), (-5, "0:00")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_training_fields_text() -> None:
    fields = TrainingFields(step=3, total=120, epoch=0.5, loss=None, lr=None, grad_norm=None, tokens_per_s=1234.4,
                            elapsed=3723, remaining=5)
    assert fields.text() == "step   3/120  epoch 0.50  loss -  lr -  1,234 tok/s  elapsed 1:02:03  ETA 0:05"


def test_a_live_line_is_redrawn_on_a_terminal_and_ends_its_line() -> None:
    stream = Terminal()
    line = LiveLine(stream)
    assert line.live
    line.show("step 1/2")
    line.show("step 2/2")
    line.close()
    output = stream.getvalue()
    assert "step 1/2\r" in output and output.count("\n") == 1  # redrawn in place: one line on the screen
    assert output.index("step 2/2") < output.index("\n")  # ended after the last figures


def test_a_live_line_off_a_terminal_shows_nothing_and_prints_lines() -> None:
    stream = io.StringIO()
    line = LiveLine(stream)
    line.show("step 1/2")
    line.print("step 1: eval_loss 2.0000")
    line.close()
    assert stream.getvalue() == "step 1: eval_loss 2.0000\n"


def test_a_counter_logs_every_five_seconds_and_at_the_end(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(progress, "info", said.append)
    count = Counter("  mmlu", "questions", stream=io.StringIO())
    clock.now += 2.0
    count(1, 4, "12 tokens/s")
    clock.now += 2.0
    count(2, 4)  # within 5 s of the last line
    clock.now += 4.0
    count(3, 4)
    count(4, 4)  # the end is always said
    assert said == ["  mmlu: 1/4 questions, 12 tokens/s, elapsed 2s, ETA 6s",
                    "  mmlu: 3/4 questions, elapsed 8s, ETA 3s",
                    "  mmlu: 4/4 questions, elapsed 8s, ETA 0s"]


def test_a_counter_draws_a_bar_on_a_terminal(clock: Clock) -> None:
    stream = Terminal()
    count = Counter("predict", "rows", stream=stream)
    clock.now += 3.0
    count(1, 2, "5 tokens/s")
    count(2, 2)
    output = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", stream.getvalue())  # colours and cursor moves aside
    assert "tunelab: predict: 1/2 rows, 5 tokens/s, elapsed 3s, ETA 3s" in output
    assert output.index("predict: 2/2 rows, elapsed 3s, ETA 0s") < output.index("\n")  # closed at the end


def test_a_counter_is_silent_off_the_main_process(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(progress, "info", said.append)
    monkeypatch.setattr(progress, "is_main_process", lambda: False)
    Counter("predict", "rows", stream=io.StringIO())(2, 2)
    assert said == []
