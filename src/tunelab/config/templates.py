"""The names of tunelab's shipped chat templates (templates/*.jinja): what `template:` may name, checked by the
config before anything loads and used by data/chat_template.py to install one."""

from __future__ import annotations

from importlib import resources


def template_names() -> list[str]:
    """Names of the shipped templates."""
    files = resources.files("tunelab.templates").iterdir()
    return sorted(f.name[:-6] for f in files if f.name.endswith(".jinja") and not f.name.startswith("_"))
