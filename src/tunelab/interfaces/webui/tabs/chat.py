"""The Chat tab: load/unload the top bar's model and run (and more adapters), stream answers through the engine,
generation settings, and side-by-side base vs tuned answers (chat_session.py holds the model)."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from tunelab.config.schema import InferSection
from tunelab.interfaces.webui.chat_session import ChatSession, LoadForm, Message, settings_from
from tunelab.interfaces.webui.cli_capture import output_text
from tunelab.interfaces.webui.strings import Lang, label
from tunelab.interfaces.webui.ui import UI

Shown = tuple[list[Message], list[Message], str, str]  # tuned chat, base chat, status, input box


def defaults() -> InferSection:
    """The schema's generation defaults."""
    return InferSection()


def send(session: ChatSession, lang: Lang, prompt: str, tuned: list[Message], base: list[Message],
         side_by_side: bool, system: str | None, settings: InferSection | str) -> Iterator[Shown]:
    """Stream an answer (or base then tuned answers) to the prompt; problems go to the status line."""
    if not prompt.strip():
        yield tuned, base, label("chat.empty_prompt", lang), prompt
        return
    if session.engine is None:
        yield tuned, base, label("chat.no_model", lang), prompt
        return
    if isinstance(settings, str):
        yield tuned, base, settings, prompt
        return
    session.engine.settings = settings
    if side_by_side and not session.has_adapter:
        yield tuned, base, label("chat.no_adapter", lang), prompt
        return
    status = label("chat.answering", lang)
    pairs = (session.stream_pair(base, tuned, prompt, system) if side_by_side
             else ((base, answer) for answer in session.stream(tuned, prompt, system)))
    last = (base, tuned)
    for last in pairs:
        yield last[1], last[0], status, ""
    yield last[1], last[0], session.loaded, ""


def build(ui: UI) -> None:
    """The Chat tab's components and events (inside its gr.Tab)."""
    top = ui.top
    assert top is not None, "the top bar is built before the tabs"
    session = ChatSession()
    start = defaults()
    with gr.Row():
        adapters = ui.add("chat.adapters", gr.Textbox(scale=3))
        load = ui.add("chat.load", gr.Button(variant="primary", elem_id="chat-load", scale=1))
        unload = ui.add("chat.unload", gr.Button(elem_id="chat-unload", scale=1))
    status = ui.add("chat.status", gr.Textbox(interactive=False, elem_id="chat-status"))
    with gr.Accordion(open=False) as settings_panel:
        ui.add("chat.settings", settings_panel)
        with gr.Row():
            max_new = ui.add("chat.max_new_tokens", gr.Slider(1, 4096, value=start.max_new_tokens, step=1))
            temperature = ui.add("chat.temperature", gr.Slider(0.01, 2.0, value=start.temperature, step=0.01))
            top_p = ui.add("chat.top_p", gr.Slider(0.01, 1.0, value=start.top_p, step=0.01))
            do_sample = ui.add("chat.do_sample", gr.Checkbox(value=start.do_sample))
    side = ui.add("chat.side_by_side", gr.Checkbox(value=False))
    with gr.Row():
        base_chat = ui.add("chat.base_output", gr.Chatbot(visible=False, elem_id="chat-output-base"))
        tuned_chat = ui.add("chat.output", gr.Chatbot(elem_id="chat-output"))
    with gr.Row():
        prompt = ui.add("chat.input", gr.Textbox(elem_id="chat-input", scale=5))
        send_button = ui.add("chat.send", gr.Button(variant="primary", elem_id="chat-send", scale=1))
        clear = ui.add("chat.clear", gr.Button(scale=1))
    settings_inputs = [max_new, temperature, top_p, do_sample]

    def on_load(model: str, template: str | None, method: str | None, run_dir: str | None, extra: str | None,
                new: float, temp: float, p: float, sample: bool) -> str:
        chosen = settings_from(start, new, temp, p, sample)
        if isinstance(chosen, str):
            return chosen
        return output_text(session.load(LoadForm(model, template, method, run_dir, extra, ui.workdir), chosen)).strip()

    def on_send(lang: Lang, text: str, tuned: list[Message], base: list[Message], both: bool, system: str | None,
                new: float, temp: float, p: float, sample: bool) -> Iterator[Shown]:
        current = session.engine.settings if session.engine else start
        yield from send(session, lang, text, tuned, base, both, system, settings_from(current, new, temp, p, sample))

    load.click(on_load, [top.model, top.template, top.finetuning_type, top.run_dir, adapters] + settings_inputs,
               [status])
    unload.click(lambda: session.unload(), [], [status])
    chat_inputs = [top.lang, prompt, tuned_chat, base_chat, side, top.system] + settings_inputs
    chat_outputs = [tuned_chat, base_chat, status, prompt]
    send_button.click(on_send, chat_inputs, chat_outputs)
    prompt.submit(on_send, chat_inputs, chat_outputs)
    clear.click(lambda: ([], []), [], [tuned_chat, base_chat])
    side.change(lambda both: gr.update(visible=both), [side], [base_chat])
