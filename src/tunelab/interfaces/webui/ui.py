"""What every tab builds on: the language, the shared top bar and the registry that relabels on a language switch.

A tab module creates its components through `ui.add(key, component)`, which labels them from strings.yaml in
the current language and remembers them; switching the language updates every registered component at once.
Components of config keys are added with `ui.add_key(key, component)`: their label is the key's name and their
help the schema's description (Chinese help from strings.yaml's `train.key.<key>` where it has one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.interfaces.webui.jobs import Jobs
from tunelab.interfaces.webui.strings import Lang, info, label, table

if TYPE_CHECKING:
    import gradio as gr

# components whose visible text is their value, not a label
VALUE_LABELLED = ("Button", "Markdown", "DownloadButton", "UploadButton")
CONFIG_KEY = "config:"  # registry prefix of components labelled from the config schema


@dataclass
class TopBar:
    """The shared controls every tab reads: language, model, template, method, run folder, system prompt."""

    lang: gr.Dropdown
    model: gr.Dropdown
    template: gr.Dropdown
    finetuning_type: gr.Dropdown
    run_dir: gr.Dropdown
    system: gr.Textbox


def key_texts(key: str, lang: Lang) -> tuple[str, str | None]:
    """Label and help of a config key: its name, and its schema description (or strings.yaml's zh help)."""
    from tunelab.config.schema import describe_key

    translated = table().get(f"train.key.{key}", {}).get(lang, {}).get("info")
    return key, translated or describe_key(key)


def texts(key: str, lang: Lang) -> tuple[str, str | None]:
    """Label and help of a registered key (a strings.yaml key, or CONFIG_KEY + a config key)."""
    if key.startswith(CONFIG_KEY):
        return key_texts(key.removeprefix(CONFIG_KEY), lang)
    return label(key, lang), info(key, lang)


@dataclass
class UI:
    """The language at start, the top bar (set once it is built), the registered components, the working folder
    (relative paths in the form are inside it) and the training jobs started from it."""

    lang: Lang
    top: TopBar | None = None
    registered: list[tuple[str, Any]] = field(default_factory=list)
    workdir: Path = field(default_factory=Path.cwd)
    jobs: Jobs = field(init=False)
    load_events: list[tuple[Callable[..., Any], list[Any], list[Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.jobs = Jobs(self.workdir)

    def add(self, key: str, component: Any) -> Any:
        """Label a component from strings.yaml (key) in the current language, remember it, return it."""
        text, help_text = texts(key, self.lang)
        if type(component).__name__ in VALUE_LABELLED:
            component.value = text
        else:
            component.label = text
            if hasattr(component, "info"):
                component.info = help_text
        self.registered.append((key, component))
        return component

    def add_key(self, config_key: str, component: Any) -> Any:
        """Label a component of a config key (name and schema help), remember it, return it."""
        return self.add(CONFIG_KEY + config_key, component)

    def when_loaded(self, fn: Callable[..., Any], inputs: list[Any], outputs: list[Any]) -> None:
        """Run fn each time a browser opens the page (wired by app.py with Blocks.load)."""
        self.load_events.append((fn, inputs, outputs))

    def components(self) -> list[Any]:
        """The registered components, in registration order (the outputs of a language switch)."""
        return [component for _, component in self.registered]

    def relabel(self, lang: Lang) -> list[dict[str, Any]]:
        """One gr.update per registered component with its text in the language."""
        import gradio as gr

        updates = []
        for key, component in self.registered:
            text, help_text = texts(key, lang)
            if type(component).__name__ in VALUE_LABELLED:
                updates.append(gr.update(value=text))
            else:
                updates.append(gr.update(label=text, info=help_text))
        return updates
