"""Terminal chat helpers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tunelab.config.schema import InferSection
from tunelab.interfaces.chat_cli import Session, answer, command, compare, messages_for, set_option


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


class EchoEngine:
    """Streams the number of messages it was given, word by word; can be told to be interrupted."""

    has_adapter = False

    def __init__(self) -> None:
        self.settings = InferSection()
        self.seed: int | None = None
        self.seen: list[list[dict[str, str]]] = []
        self.interrupt = False

    def stream(self, messages: list[dict[str, str]]) -> Any:
        self.seen.append(messages)
        yield "answer "
        if self.interrupt:
            raise KeyboardInterrupt
        yield f"{len(self.seen)}"


def test_repl_commands(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    engine: Any = EchoEngine()
    session = Session()
    assert command(engine, session, "/system Be brief.")
    answer(engine, session, "Hi")
    assert engine.seen[-1][0] == {"role": "system", "content": "Be brief."}
    assert session.history[-1] == {"role": "assistant", "content": "answer 1"}
    assert command(engine, session, "/retry")
    assert session.history == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "answer 2"}]
    target = tmp_path / "chat.json"
    assert command(engine, session, f"/save {target}")
    saved = json.loads(target.read_text())["messages"]
    assert saved[0]["role"] == "system" and saved[-1]["content"] == "answer 2"
    assert command(engine, session, "/clear") and session.history == []
    assert not command(engine, session, "/exit")
    assert "unknown command /nope" in (command(engine, session, "/nope") and capsys.readouterr().err)


def test_ctrl_c_stops_the_answer_not_the_session(capsys: pytest.CaptureFixture[str]) -> None:
    engine: Any = EchoEngine()
    engine.interrupt = True
    session = Session()
    answer(engine, session, "Tell me a long story")
    assert "[stopped]" in capsys.readouterr().out
    assert session.history[-1] == {"role": "assistant", "content": "answer"}


@pytest.mark.parametrize(("assignment", "message", "check"), [
    ("temperature=0.3", "temperature = 0.3", lambda e: e.settings.temperature == 0.3),
    ("do_sample=false", "do_sample = False", lambda e: e.settings.do_sample is False),
    ("seed=7", "seed = 7", lambda e: e.seed == 7),
    ("top_p=2", "top_p: input should be less than or equal to 1", lambda e: e.settings.top_p == 0.7),
    ("temprature=1", "temprature: not a generation setting", lambda e: True),
    ("seed=x", "seed: expected a whole number", lambda e: e.seed is None),
    ("temperature", "usage: /set key=value", lambda e: True),
])
def test_set_option(assignment: str, message: str, check: Any) -> None:
    engine: Any = EchoEngine()
    assert set_option(engine, assignment).startswith(message)
    assert check(engine)


def test_an_answer_cut_inside_a_character_is_shown_and_saved_without_it(
        tmp_path: Any, cjk_tokenizer: Any, tiny_llama: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The REPL with max_new_tokens cutting between the two tokens of 中: neither the screen nor /save shows U+FFFD."""
    from tests.conftest import scripted
    from tunelab.infer.chat import ChatEngine
    from tunelab.model.load import ModelBundle, ResolvedModel

    import functools

    from tunelab.infer.engine import Engine

    # the chat engine decodes with a scripted generate function instead of the model
    monkeypatch.setattr("tunelab.infer.chat.Engine", functools.partial(Engine,
                                                                       generate_fn=scripted(cjk_tokenizer, "好中文")))
    bundle = ModelBundle(tokenizer=cjk_tokenizer, model=tiny_llama, source=ResolvedModel(tmp_path, "tiny", "folder"))
    engine = ChatEngine(bundle, InferSection(do_sample=False, max_new_tokens=4))
    session = Session()
    answer(engine, session, "用中文问好")
    assert capsys.readouterr().out == "assistant> 好\n"
    assert command(engine, session, f"/save {tmp_path / 'chat.json'}")
    saved = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))["messages"]
    assert saved[-1] == {"role": "assistant", "content": "好"}
    engine.settings = InferSection(do_sample=False, max_new_tokens=5)
    assert engine.chat([{"role": "user", "content": "用中文问好"}]) == "好中"
