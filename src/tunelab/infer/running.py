"""The running batch: rows decoded together, which new rows can join between two steps and finished rows leave.

A new row is prefilled on its own (with the other newcomers of the same moment), then merged into the running
rows: the shorter side's cached keys and values and its attention mask are left-padded to the longer side's
width, and the rows are concatenated. Position ids stay per row, so a row's tokens see exactly the positions
and keys they would see alone; greedy rows give the tokens they give alone. A row that finishes leaves at once
(its cache rows are dropped), and leading columns that became padding for every remaining row are trimmed.
The cache is `kv_cache.py`'s: a decode step writes its keys and values in place, with no copy of the cache.

Rows may ask for different LoRA adapters (GenRequest.adapter): a PEFT model runs them in one forward with
PEFT's mixed-batch `adapter_names` ("__base__" for the base alone).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tunelab.infer.protocols import CausalLM
from tunelab.infer.rows import GenRequest, GenResult, OnToken, Row, choose, finish

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache

BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch


def model_device(model: CausalLM) -> torch.device:
    """Where the model's weights are."""
    return next(model.parameters()).device


def forward_kwargs(model: CausalLM) -> dict[str, int]:
    """logits_to_keep=1 where the (PEFT-wrapped or plain) model's forward takes it: no logits for the prompt."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(base.forward).parameters else {}


def loaded_adapters(model: CausalLM) -> list[str]:
    """Names of the LoRA adapters loaded on a PEFT model (none on a plain model)."""
    return list(getattr(model, "peft_config", {}) or {})


def active_adapters(model: CausalLM) -> list[str]:
    """The adapters a PEFT model answers with when no row names one."""
    active = getattr(model, "active_adapters", None)
    return list(active) if isinstance(active, (list, tuple)) else []


def adapter_problem(model: CausalLM, adapter: str | None) -> str | None:
    """Why a row cannot use this adapter on this model (None: it can)."""
    if not adapter:
        return None
    loaded = loaded_adapters(model)
    if adapter in loaded:
        return None
    have = f"the loaded adapters are {', '.join(loaded)}" if loaded else "the model has no adapters loaded"
    return f"adapter '{adapter}' is not loaded; {have}"


def adapter_key(model: CausalLM, adapter: str | None) -> str | None:
    """The PEFT adapter name a row runs with (None: the model as loaded, several active adapters together)."""
    if adapter == "":
        return BASE
    if adapter is None:
        active = active_adapters(model)
        return active[0] if len(active) == 1 else None
    return adapter


def left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """tensor with zeros added in front along dim up to width."""
    import torch.nn.functional as F

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim % tensor.dim()) + [missing, 0]
    return F.pad(tensor, pad)


def seen_tokens(rows: list[Row], vocab: int, device: torch.device) -> torch.Tensor:
    """[rows, vocab] bool: the tokens of each row's prompt and output so far (for the repetition penalty)."""
    import torch

    seen = torch.zeros(len(rows), vocab, dtype=torch.bool, device=device)
    index = [(i, t) for i, r in enumerate(rows) for t in (*r.request.input_ids, *r.tokens)]
    if index:
        rows_of, tokens_of = zip(*index)
        seen[torch.tensor(rows_of, device=device), torch.tensor(tokens_of, device=device)] = True
    return seen


def most_new_tokens(rows: list[Row]) -> int:
    """The most tokens any of the rows can still add to the cache."""
    return max((r.request.max_new_tokens - len(r.tokens) for r in rows), default=0)


class RunningBatch:
    """The rows being decoded together, with their KV cache, mask, positions and next-token logits."""

    def __init__(self, model: CausalLM, pad_id: int) -> None:
        self.model = model
        self.pad_id = pad_id
        self.device = model_device(model)
        self.extra = forward_kwargs(model)
        self.rows: list[Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [rows, cached positions]: 1 for real tokens, 0 for left padding
        self.positions: torch.Tensor | None = None  # [rows, 1]: the position of each row's last token
        self.seen: torch.Tensor | None = None  # [rows, vocab] only while a row has a repetition penalty
        self.logits: torch.Tensor | None = None  # [rows, vocab]: each row's next-token logits
        self.adapter_names: list[str] | None = None  # PEFT's per-row adapters when they differ
        self.mergeable = True  # the model's cache layers can be left-padded and concatenated

    def __len__(self) -> int:
        return len(self.rows)

    def accepts(self, request: GenRequest, joining: Sequence[GenRequest] = ()) -> bool:
        """Whether a row for this request can join now, with the others joining at once (a cache that cannot
        merge, or an adapter mix PEFT cannot name, waits for the running rows to end)."""
        others = [r.request for r in self.rows] + list(joining)
        if not others or not loaded_adapters(self.model):
            return not self.rows or self.mergeable
        if self.rows and not self.mergeable:
            return False
        key = adapter_key(self.model, request.adapter)
        keys = {adapter_key(self.model, r.adapter) for r in others}
        # rows of several active adapters at once have no PEFT name: they share a batch only with each other
        return keys == {key} if None in keys | {key} else True

    def admit(self, rows: list[Row]) -> None:
        """Prefill new rows and add them to the running ones (their first token is chosen at the next step)."""
        if not rows:
            return
        part = RunningBatch(self.model, self.pad_id)
        part.prefill(rows)
        if not self.rows:
            self.take(part)
        else:
            self.merge(part)
        self.adapter_names = self.names()

    def take(self, part: RunningBatch) -> None:
        """Become part (the running batch was empty)."""
        self.rows, self.cache, self.mask, self.positions = part.rows, part.cache, part.mask, part.positions
        self.seen, self.logits, self.mergeable = part.seen, part.logits, part.mergeable

    def names(self) -> list[str] | None:
        """PEFT adapter_names for the rows, or None when every row runs the model as loaded."""
        wanted = [r.request.adapter for r in self.rows]
        if all(a is None for a in wanted) or not loaded_adapters(self.model):
            return None
        names = [adapter_key(self.model, a) for a in wanted]
        if len(set(names)) == 1 and names[0] is not None and names[0] in active_adapters(self.model):
            return None  # all rows on the active adapter: the plain (fused) forward
        return [n if n is not None else BASE for n in names]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """One forward of ids over the cache; the last position's logits per row, in float32."""
        extra: dict[str, object] = dict(self.extra)
        if self.adapter_names is not None:
            extra["adapter_names"] = self.adapter_names
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=self.positions,
                         past_key_values=self.cache, use_cache=True, **extra)
        self.cache = out.past_key_values
        return out.logits[:, -1, :].float()

    def prefill(self, rows: list[Row]) -> None:
        """One forward over the rows' left-padded prompts."""
        import torch

        from tunelab.infer.kv_cache import is_plain_layer, limit_room, roomy_cache

        longest = max(len(row.request.input_ids) for row in rows)
        ids = torch.tensor([[self.pad_id] * (longest - len(r.request.input_ids)) + r.request.input_ids
                            for r in rows], device=self.device)
        mask = torch.tensor([[0] * (longest - len(r.request.input_ids)) + [1] * len(r.request.input_ids)
                             for r in rows], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        config = (self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model).config
        self.rows, self.mask, self.positions = rows, mask, positions
        self.cache = roomy_cache(config)
        limit_room(self.cache, most_new_tokens(rows))
        # sliding-window or linear-attention layers keep state we cannot pad: such batches admit only when empty
        self.mergeable = all(is_plain_layer(layer) for layer in getattr(self.cache, "layers", [None]))
        self.adapter_names = self.names()
        self.logits = self.forward(ids)
        self.positions = positions[:, -1:]
        if any(r.request.repetition_penalty != 1.0 for r in rows):
            self.seen = seen_tokens(rows, self.logits.shape[-1], self.device)

    def merge(self, part: RunningBatch) -> None:
        """Append part's rows: both sides' caches and masks left-padded to one width, then concatenated."""
        import torch

        from tunelab.infer.kv_cache import join, limit_room

        assert self.mask is not None and part.mask is not None and self.cache is not None and part.cache is not None
        width = max(self.mask.shape[1], part.mask.shape[1])
        limit_room(self.cache, most_new_tokens(self.rows + part.rows))
        self.mask = torch.cat([left_pad(self.mask, width, 1), left_pad(part.mask, width, 1)])
        for mine, theirs in zip(self.cache.layers, part.cache.layers):
            join(mine, theirs, width)
        self.positions = torch.cat([self.positions, part.positions])
        assert self.logits is not None and part.logits is not None
        vocab = self.logits.shape[-1]
        if self.seen is not None or part.seen is not None:
            mine_seen = self.seen if self.seen is not None else seen_tokens(self.rows, vocab, self.device)
            theirs_seen = part.seen if part.seen is not None else seen_tokens(part.rows, vocab, self.device)
            self.seen = torch.cat([mine_seen, theirs_seen])
        self.logits = torch.cat([self.logits, part.logits])
        self.rows = self.rows + part.rows

    def step(self, on_token: OnToken | None) -> list[tuple[int, GenResult]]:
        """Choose every row's next token, let finished rows leave, run the rest one token on; (key, result) of the
        rows that finished."""
        import torch

        assert self.logits is not None
        tokens = choose(self.logits, self.rows, self.seen)
        done: list[tuple[int, GenResult]] = []
        keep: list[int] = []
        for i, (row, token) in enumerate(zip(self.rows, tokens)):
            result = finish(row, token, on_token)
            if result is None:
                keep.append(i)
            else:
                done.append((row.index, result))
        if len(keep) < len(self.rows):
            self.select(keep)
        if self.rows:
            assert self.mask is not None and self.positions is not None
            self.mask = torch.cat([self.mask, self.mask.new_ones(len(keep), 1)], dim=-1)
            self.positions = self.positions + 1
            self.logits = self.forward(torch.tensor([tokens[i] for i in keep], device=self.device).unsqueeze(-1))
        return done

    def select(self, keep: list[int]) -> None:
        """Keep only these rows: cache, mask, positions, seen tokens; then trim shared padding."""
        import torch

        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.clear()
            return
        assert self.cache is not None and self.mask is not None and self.positions is not None
        index = torch.tensor(keep, device=self.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        self.positions = self.positions[index]
        if self.seen is not None:
            self.seen = self.seen[index] if any(r.request.repetition_penalty != 1.0 for r in self.rows) else None
        self.adapter_names = self.names()
        self.trim_padding()

    def clear(self) -> None:
        """Forget every row and the cache (after the last row left, or a failed step)."""
        self.rows, self.cache, self.mask, self.positions, self.seen, self.logits = [], None, None, None, None, None
        self.adapter_names = None

    def trim_padding(self) -> None:
        """Drop leading cache columns that are padding for every remaining row (a long row may have left)."""
        from tunelab.infer.kv_cache import drop_leading

        assert self.mask is not None and self.cache is not None
        if not self.mergeable:
            return
        width = int(self.mask.any(dim=0).int().argmax().item())
        if width == 0:
            return
        self.mask = self.mask[:, width:]
        for layer in self.cache.layers:
            if layer.is_initialized and layer.keys.numel():
                drop_leading(layer, width)
