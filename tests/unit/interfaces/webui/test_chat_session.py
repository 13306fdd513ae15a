"""The Chat tab's logic: load/unload from the top bar's values, streamed answers through ChatEngine, the
generation settings, side by side base vs tuned, and the CLI's error text for a bad model or folder."""

from __future__ import annotations

from pathlib import Path

from tests.unit.interfaces.webui.tab_helpers import blocks_with, lora_run  # noqa: F401 - the fixture
from tunelab.config.schema import InferSection
from tunelab.interfaces.webui.chat_session import ChatSession, LoadForm, settings_from
from tunelab.interfaces.webui.strings import LANGS, entry, label
from tunelab.interfaces.webui.tabs import chat as chat_tab

GREEDY = InferSection(do_sample=False, max_new_tokens=6)


def test_settings_from_the_form_and_their_problems() -> None:
    chosen = settings_from(InferSection(top_k=7), 32, 0.5, 0.9, False)
    assert isinstance(chosen, InferSection)
    assert (chosen.max_new_tokens, chosen.temperature, chosen.top_p, chosen.do_sample, chosen.top_k) == \
        (32, 0.5, 0.9, False, 7)
    assert settings_from(InferSection(), 0, 0.5, 0.9, True) == "max_new_tokens: input should be greater than 0 (got 0)"


def test_load_stream_and_unload_a_bare_model(tiny_model_dir: Path) -> None:
    session = ChatSession()
    done = session.load(LoadForm(str(tiny_model_dir), None, "lora", None), GREEDY)
    assert done.ok, done.text()
    assert done.out == f"loaded {tiny_model_dir}\n" and not session.has_adapter
    shown = list(session.stream([], "Hello there", None))
    assert shown[0][:1] == [{"role": "user", "content": "Hello there"}]
    final = shown[-1]
    assert session.engine is not None
    assert final[-1] == {"role": "assistant",
                         "content": session.engine.chat([{"role": "user", "content": "Hello there"}])}
    again = list(session.stream(final, "Who are you?", "Be brief."))[-1]
    assert [m["role"] for m in again] == ["user", "assistant", "user", "assistant"]
    assert session.unload() == "unloaded" and session.engine is None
    assert session.unload() == "no model loaded"


def test_side_by_side_answers_with_and_without_the_adapter(tiny_model_dir: Path, lora_run: Path) -> None:  # noqa: F811
    session = ChatSession()
    done = session.load(LoadForm(str(tiny_model_dir), None, "lora", str(lora_run)), GREEDY)
    assert done.ok, done.text()
    assert session.has_adapter and session.loaded == f"{tiny_model_dir} + {lora_run}"
    base, tuned = list(session.stream_pair([], [], "Who are you?", None))[-1]
    engine = session.engine
    assert engine is not None
    messages = [{"role": "user", "content": "Who are you?"}]
    with engine.without_adapter():
        assert base[-1]["content"] == engine.chat(messages)
    assert tuned[-1]["content"] == engine.chat(messages)
    assert base[-1]["content"] != tuned[-1]["content"]


def test_more_adapters_are_loaded_together(tiny_model_dir: Path, lora_run: Path) -> None:  # noqa: F811
    session = ChatSession()
    done = session.load(LoadForm(str(tiny_model_dir), None, "lora", str(lora_run), str(lora_run)), GREEDY)
    assert done.ok, done.text()
    assert session.loaded == f"{tiny_model_dir} + {lora_run},{lora_run}"


def test_load_errors_are_the_cli_text(tiny_model_dir: Path, tmp_path: Path) -> None:
    session = ChatSession()
    missing = session.load(LoadForm(str(tiny_model_dir), None, "lora", str(tmp_path / "nope")), GREEDY)
    assert missing.code == 2
    assert missing.err == ("tunelab: the config has 1 problem\n  output_dir: "
                           f"{tmp_path / 'nope'}: no such folder; pick a run folder that exists\n")
    no_model = session.load(LoadForm("", None, "lora", None), GREEDY)
    assert "model_name_or_path: no model chosen" in no_model.err
    bad_adapter = session.load(LoadForm(str(tiny_model_dir), None, "lora", None, str(tmp_path / "x")), GREEDY)
    assert "adapter_name_or_path: " in bad_adapter.err and "no such folder" in bad_adapter.err
    assert session.engine is None


def test_send_without_a_model_or_adapter_says_what_to_do(tiny_model_dir: Path) -> None:
    session = ChatSession()
    out = list(chat_tab.send(session, "zh", "hi", [], [], False, None, GREEDY))
    assert out == [([], [], label("chat.no_model", "zh"), "hi")]
    session.load(LoadForm(str(tiny_model_dir), None, "lora", None), GREEDY)
    out = list(chat_tab.send(session, "en", "hi", [], [], True, None, GREEDY))
    assert out[-1][2] == label("chat.no_adapter", "en")
    out = list(chat_tab.send(session, "en", "hi", [], [], False, None, "top_p: bad"))
    assert out[-1][2] == "top_p: bad"
    out = list(chat_tab.send(session, "en", "hi", [], [], False, "Be brief.", GREEDY))
    tuned, base, status, box = out[-1]
    assert tuned[0] == {"role": "user", "content": "hi"} and base == [] and status == session.loaded and box == ""


def test_the_tab_has_the_browser_test_ids_and_its_strings() -> None:
    blocks, ui = blocks_with(chat_tab.build)
    ids = {block.elem_id for block in blocks.blocks.values()}
    assert {"chat-input", "chat-send", "chat-output", "chat-load", "chat-status"} <= ids
    keys = [key for key, _ in ui.registered]
    assert all(key.startswith("chat.") for key in keys)
    used = keys + ["chat.no_model", "chat.no_adapter", "chat.empty_prompt", "chat.answering"]
    assert all(entry(key, lang)["label"] for key in used for lang in LANGS)
