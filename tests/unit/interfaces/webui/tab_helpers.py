"""What the tab tests share: a stand-in for the app's top bar (app.py builds the real one) and a LoRA run folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from tunelab.interfaces.webui.strings import Lang
from tunelab.interfaces.webui.ui import UI, TopBar


def blocks_with(build: Callable[[UI], None], lang: Lang = "en", model: str = "tiny", run_dir: str = "") \
        -> tuple[gr.Blocks, UI]:
    """A Blocks holding a fake top bar and one tab built by `build`."""
    ui = UI(lang=lang)
    with gr.Blocks() as blocks:
        ui.top = TopBar(lang=gr.Dropdown(choices=["en", "zh"], value=lang), model=gr.Dropdown(choices=[model],
                        value=model, allow_custom_value=True), template=gr.Dropdown(choices=[""], value=""),
                        finetuning_type=gr.Dropdown(choices=["lora", "freeze", "full"], value="lora"),
                        run_dir=gr.Dropdown(choices=[run_dir], value=run_dir, allow_custom_value=True),
                        system=gr.Textbox(value=""))
        with gr.Tab("tab"):
            build(ui)
    return blocks, ui


@pytest.fixture
def lora_run(tiny_model_dir: Path, tiny_tokenizer: Any, tmp_path: Path) -> Path:
    """A LoRA run folder over tiny_model_dir with a random, non-zero adapter (so tuned answers differ)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "run"
    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                           init_lora_weights=False))
    peft.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder
