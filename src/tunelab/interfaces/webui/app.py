"""The web UI's Gradio app: the top bar, the six tabs from one table, the language switch, and `tunelab webui`."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.errors import ConfigError, Problem
from tunelab.interfaces.webui.strings import LANGS, Lang
from tunelab.interfaces.webui.ui import UI

if TYPE_CHECKING:
    import gradio as gr

# the tabs in the order they appear; each module exposes build(ui: UI) -> None
TAB_MODULES: tuple[tuple[str, str], ...] = (
    ("data", "tunelab.interfaces.webui.tabs.data"),
    ("train", "tunelab.interfaces.webui.tabs.train"),
    ("evaluate", "tunelab.interfaces.webui.tabs.evaluate"),
    ("chat", "tunelab.interfaces.webui.tabs.chat"),
    ("export", "tunelab.interfaces.webui.tabs.export"),
    ("runs", "tunelab.interfaces.webui.tabs.runs"),
)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
TRUE_WORDS = ("1", "true", "y", "yes")


def missing_tabs() -> list[str]:
    """The tabs whose module cannot be found (none in a whole install; a test checks it)."""
    return [name for name, module in TAB_MODULES if importlib.util.find_spec(module) is None]


def reattach_folder(ui: UI, current: str) -> str:
    """The run folder a fresh page shows: the running job's, else the newest job's, else the current value."""
    job = ui.jobs.active() or next(iter(ui.jobs.all()), None)
    if job is None:
        return current
    folder = Path(job.folder)
    return str(folder.relative_to(ui.workdir)) if folder.is_relative_to(ui.workdir) else str(folder)


def build_app(lang: Lang = "en", workdir: Path | None = None) -> tuple[gr.Blocks, UI]:
    """The Blocks app and its UI registry."""
    import gradio as gr

    from tunelab.interfaces.webui.strings import label
    from tunelab.interfaces.webui.topbar import build_topbar

    ui = UI(lang=lang, workdir=workdir or Path.cwd())
    with gr.Blocks(title=label("app.title", lang), analytics_enabled=False) as demo:
        ui.add("app.title", gr.Markdown(elem_id="app-title"))
        ui.top = build_topbar(ui)
        with gr.Tabs(elem_id="tabs"):
            for name, module in TAB_MODULES:
                with ui.add(f"app.tab.{name}", gr.Tab(elem_id=f"tab-{name}")):
                    importlib.import_module(module).build(ui)
        ui.top.lang.change(ui.relabel, inputs=ui.top.lang, outputs=ui.components(), show_progress="hidden")
        demo.load(lambda current: reattach_folder(ui, current), inputs=ui.top.run_dir, outputs=ui.top.run_dir)
        for fn, inputs, outputs in ui.load_events:
            demo.load(fn, inputs=inputs, outputs=outputs)
    return demo, ui


@dataclass(frozen=True)
class Settings:
    """Where and how the app is served."""

    host: str
    port: int
    auth: tuple[str, str] | None
    share: bool
    lang: Lang


def settings(host: str | None, port: int | None, auth: str | None, share: bool, lang: str,
             environ: Mapping[str, str]) -> Settings:
    """Flags first, then GRADIO_SERVER_NAME / GRADIO_SERVER_PORT / GRADIO_SHARE (environ), then defaults."""
    problems = []
    env_port = environ.get("port")
    if port is None and env_port is not None:
        if not env_port.isdigit():
            problems.append(Problem("GRADIO_SERVER_PORT", f"{env_port!r} is not a port number; set e.g. 7860"))
        else:
            port = int(env_port)
    port = DEFAULT_PORT if port is None else port
    if not 0 < port < 65536:
        problems.append(Problem("--port", f"{port} is not a port number (1-65535)"))
    pair = None
    if auth is not None:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            problems.append(Problem("--auth", "give USER:PASSWORD, both non-empty"))
        pair = (user, password)
    if lang not in LANGS:
        problems.append(Problem("--lang", f"{lang!r} is not one of {', '.join(LANGS)}"))
    if problems:
        raise ConfigError(problems)
    share = share or environ.get("share", "").strip().lower() in TRUE_WORDS
    return Settings(host=host or environ.get("host") or DEFAULT_HOST, port=port, auth=pair, share=share,
                    lang=lang)  # type: ignore[arg-type]


def exposure_warning(chosen: Settings) -> str | None:
    """A warning when the app listens beyond this machine (or is shared) without a password."""
    if chosen.auth is None and (chosen.share or chosen.host not in (DEFAULT_HOST, "localhost", "::1")):
        where = "a public share link" if chosen.share else chosen.host
        return (f"the web UI is served on {where} without --auth: anyone who reaches it can train and read files "
                "here; add --auth USER:PASSWORD")
    return None


def serve(chosen: Settings) -> None:
    """Build the app and serve it until interrupted."""
    from tunelab.runtime.logging import warn

    warning = exposure_warning(chosen)
    if warning:
        warn(warning)
    demo, _ = build_app(chosen.lang)
    demo.launch(server_name=chosen.host, server_port=chosen.port, auth=chosen.auth, share=chosen.share,
                inbrowser=False, quiet=False)
