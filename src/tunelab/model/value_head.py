"""A causal LM with a scalar head on its last hidden states: the reward model of stage rm and the value model of
stage ppo (TRL's AutoModelForCausalLMWithValueHead, which LLaMA-Factory uses, in its saved form).

On disk a value head is `value_head.safetensors` next to the adapter or model, holding `v_head.summary.weight`
[1, hidden] and `v_head.summary.bias` [1], as LLaMA-Factory 0.9.5 writes it (`value_head.bin` is read too).
A sequence's score is the head's value at its last real token (the last position where attention_mask is 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tunelab.model.adapters import base_model

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

VALUE_HEAD_FILE = "value_head.safetensors"
LEGACY_VALUE_HEAD_FILE = "value_head.bin"
KEYS = ("v_head.summary.weight", "v_head.summary.bias")


class ValueHeadError(Exception):
    """A folder without a usable value head; the message names the folder and the fix."""


class ValueHead(torch.nn.Module):
    """Dropout, then one linear map from the hidden size to a scalar (TRL's ValueHead: `summary`)."""

    def __init__(self, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = torch.nn.Dropout(dropout) if dropout else torch.nn.Identity()
        self.summary = torch.nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., hidden] -> [...] values, computed in float32."""
        out = self.dropout(hidden).to(self.summary.weight.dtype)
        return self.summary(out).squeeze(-1).float()


class ValueHeadModel(torch.nn.Module):
    """`pretrained_model` (a causal LM, or a PeftModel over one) and `v_head`; forward gives a value per token."""

    def __init__(self, pretrained_model: PreTrainedModel | PeftModel, dropout: float = 0.1) -> None:
        super().__init__()
        self.pretrained_model = pretrained_model
        self.v_head = ValueHead(base_model(pretrained_model).config.hidden_size, dropout)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **kwargs: torch.Tensor) -> torch.Tensor:
        """[batch, length] values from the decoder's last hidden states (the output head is never run)."""
        decoder = base_model(self.pretrained_model).get_decoder()
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                         **kwargs).last_hidden_state
        return self.v_head(hidden)

    def head_state(self) -> dict[str, torch.Tensor]:
        """The value head's weights under LLaMA-Factory's key names, on the CPU, contiguous."""
        return {f"v_head.{name}": tensor.detach().cpu().contiguous()
                for name, tensor in self.v_head.state_dict().items()}

    def load_head_state(self, state: dict[str, torch.Tensor], where: Path) -> None:
        """Load head weights saved by save_value_head (or LLaMA-Factory); shapes are checked against the model."""
        missing = [key for key in KEYS if key not in state]
        if missing:
            raise ValueHeadError(f"{where}: value head without {', '.join(missing)}; it was not written by a "
                                 "reward-model run (stage: rm)")
        expected = self.v_head.summary.weight.shape
        if tuple(state[KEYS[0]].shape) != tuple(expected):
            raise ValueHeadError(f"{where}: value head weight of shape {tuple(state[KEYS[0]].shape)} does not fit "
                                 f"this model (hidden size {expected[1]}); the reward model was trained on another "
                                 "base model")
        self.v_head.load_state_dict({key.removeprefix("v_head."): state[key] for key in KEYS})


def last_token_values(values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[batch] the value at each row's last real token (right padding), as LLaMA-Factory scores sequences."""
    last = attention_mask.long().sum(dim=-1, keepdim=True) - 1
    return values.gather(-1, last.clamp(min=0)).squeeze(-1)


def save_value_head(model: ValueHeadModel, folder: Path) -> Path:
    """Write value_head.safetensors into folder (next to the adapter or model saved there)."""
    from safetensors.torch import save_file

    path = folder / VALUE_HEAD_FILE
    save_file(model.head_state(), str(path), metadata={"format": "pt"})
    return path


def has_value_head(folder: Path) -> bool:
    """True when folder holds a value head (safetensors or LLaMA-Factory's legacy .bin)."""
    return (folder / VALUE_HEAD_FILE).is_file() or (folder / LEGACY_VALUE_HEAD_FILE).is_file()


def read_value_head(folder: Path) -> dict[str, torch.Tensor]:
    """The value head weights of folder; a folder without one is an error that says what it needs."""
    path = folder / VALUE_HEAD_FILE
    if path.is_file():
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                return {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError) as exc:
            raise ValueHeadError(f"{path}: not a readable safetensors file ({exc}); train the reward model again "
                                 "or restore the file") from None
    legacy = folder / LEGACY_VALUE_HEAD_FILE
    if legacy.is_file():
        try:
            return torch.load(str(legacy), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for a corrupt or non-tensor pickle
            raise ValueHeadError(f"{legacy}: not a readable value head ({type(exc).__name__}: {exc})") from None
    raise ValueHeadError(f"{folder} has no {VALUE_HEAD_FILE}: it is not a reward model; train one with stage: rm "
                         "(its output folder holds the adapter or model and the value head)")
