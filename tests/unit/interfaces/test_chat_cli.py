"""Terminal chat helpers."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.interfaces.chat_cli import compare, messages_for


def test_messages_for() -> None:
    assert messages_for("Hi", None) == [{"role": "user", "content": "Hi"}]
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert messages_for("Hi", "Be brief.", history) == [{"role": "system", "content": "Be brief."}] + history + [
        {"role": "user", "content": "Hi"}]


class NoAdapterEngine:
    has_adapter = False


def test_compare_needs_prompts_and_an_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    engine: Any = NoAdapterEngine()
    assert compare(engine, [], None) == 2
    assert "give at least one --prompt" in capsys.readouterr().err
    assert compare(engine, ["Hi"], None) == 1
    assert "no adapter to compare with (train first, or set adapter_name_or_path)" in capsys.readouterr().err
