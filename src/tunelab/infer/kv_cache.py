"""A KV cache with room to grow: each layer's keys and values live in a buffer longer than they are, so a decode
step writes its new column in place instead of copying the whole cache.

transformers' `DynamicLayer` appends a step with `torch.cat`, which copies every cached key and value of the
layer at every step: at 32 rows of 250 tokens on SmolLM2-135M that is 27 ms of a 175 ms float32 step on 2 CPU
cores (bench/README.md, "KV cache"). `RoomyLayer` keeps `keys`/`values` as views `store[:, :, start:end]` of a
larger store; appending writes into the store, and a copy happens only
- when the store is full: it grows by a quarter, at least `ROOM` columns, never more than its rows can still add
  (`limit_room`);
- when rows leave: `batch_select_indices` copies their rows and keeps the store's room;
- when rows join: `join` copies both sides once into a new store.
Leading columns that became padding for every row are dropped by moving `start` (`drop_leading`), without a copy.
Code that assigns `keys`/`values` directly, as transformers' own helpers do, still works: the next `update` sees
the foreign tensors and moves them into a new store. The attention reads the same values either way, so answers
do not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transformers.cache_utils import DynamicLayer

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache

ROOM = 64  # the fewest free columns a new or grown store gets


def room_for(columns: int, most: int | None = None) -> int:
    """Free columns to add to a store that must hold `columns`: a quarter more, at least ROOM, and no more than
    `most` (the most columns the rows can still add, when known)."""
    room = max(ROOM, columns // 4)
    return room if most is None else min(room, most)


class RoomyLayer(DynamicLayer):
    """A DynamicLayer whose keys and values are views of stores with free columns at the end."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key_store: torch.Tensor | None = None
        self.value_store: torch.Tensor | None = None
        self.key_view: torch.Tensor | None = None  # the keys view handed out last
        self.most_new: int | None = None  # the most columns the rows can still add (None: unknown)
        self.start = 0  # the views' first column in the stores
        self.end = 0  # one past their last column

    def views_are_mine(self) -> bool:
        """Whether keys/values are still the views this layer handed out (nobody assigned other tensors)."""
        return self.key_store is not None and self.keys is not None and self.keys is self.key_view

    def assign(self, keys: torch.Tensor, values: torch.Tensor, room: int | None = None) -> None:
        """Hold these keys and values (copied into new stores with `room` free columns, by default room_for)."""
        columns = keys.shape[-2]
        free = room_for(columns, self.most_new) if room is None else room
        key_store = keys.new_empty((*keys.shape[:2], columns + free, keys.shape[-1]))
        value_store = values.new_empty((*values.shape[:2], columns + free, values.shape[-1]))
        key_store[:, :, :columns] = keys
        value_store[:, :, :columns] = values
        self.hold(key_store, value_store, columns)

    def show(self) -> None:
        """Point keys/values at the stores' used columns."""
        assert self.key_store is not None and self.value_store is not None
        self.keys = self.key_view = self.key_store[:, :, self.start:self.end]
        self.values = self.value_store[:, :, self.start:self.end]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new columns in place (moving to larger stores when these are full)."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        adding = key_states.shape[-2]
        mine = self.views_are_mine()
        if not mine and (self.keys is None or self.keys.numel() == 0):
            self.assign(key_states, value_states)
            return self.keys, self.values
        if not mine or self.end + adding > self.key_store.shape[-2]:  # foreign tensors, or full stores
            self.assign(self.keys, self.values, room_for(self.keys.shape[-2] + adding, self.most_new) + adding)
        assert self.key_store is not None and self.value_store is not None
        self.key_store[:, :, self.end:self.end + adding] = key_states
        self.value_store[:, :, self.end:self.end + adding] = value_states
        self.end += adding
        self.show()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only these rows (one copy of the stores' rows, their free columns kept)."""
        if self.get_seq_length() == 0:
            return
        if not self.views_are_mine():
            super().batch_select_indices(indices)
            return
        assert self.key_store is not None and self.value_store is not None
        self.key_store = self.key_store[indices]
        self.value_store = self.value_store[indices]
        self.show()

    def drop_leading(self, columns: int) -> None:
        """Forget the first `columns` cached positions of every row (views of this layer's stores): no copy."""
        self.start += columns
        self.show()

    def hold(self, keys: torch.Tensor, values: torch.Tensor, columns: int) -> None:
        """Take these tensors as the stores, their first `columns` columns used (no copy)."""
        self.key_store, self.value_store = keys, values
        self.start, self.end = 0, columns
        self.show()

    def reset(self) -> None:
        """Drop the stores with the views."""
        self.key_store = self.value_store = self.key_view = None
        self.start = self.end = 0
        super().reset()


def roomy_cache(config: Any) -> DynamicCache:
    """transformers' DynamicCache for this config, its plain full-attention layers replaced by RoomyLayers (a
    model whose layers keep other state, sliding windows or linear attention, keeps transformers' layers)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer and not layer.is_initialized for layer in layers):
        cache.layers = [RoomyLayer() for _ in layers]
    return cache


def limit_room(cache: DynamicCache, most_new: int | None) -> None:
    """Tell the cache's RoomyLayers the most columns their rows can still add: no store gets more room."""
    for layer in getattr(cache, "layers", []):
        if isinstance(layer, RoomyLayer):
            layer.most_new = most_new


def stacked(top: torch.Tensor, bottom: torch.Tensor, width: int, room: int) -> torch.Tensor:
    """top's rows above bottom's, both right-aligned to `width` columns behind zeros (which the attention mask
    hides), in one new tensor with `room` free columns at the end."""
    rows = top.shape[0] + bottom.shape[0]
    out = top.new_empty((rows, top.shape[1], width + room, top.shape[-1]))
    for part, first in ((top, 0), (bottom, top.shape[0])):
        block = out[first:first + part.shape[0]]
        pad = width - part.shape[-2]
        block[:, :, :pad] = 0
        block[:, :, pad:width] = part
    return out


def join(mine: DynamicLayer, theirs: DynamicLayer, width: int) -> None:
    """Append theirs' rows below mine's, both right-aligned to `width` columns: one copy each of keys and values
    (into stores with room to grow when mine is a RoomyLayer)."""
    assert mine.keys is not None and theirs.keys is not None and mine.values is not None and theirs.values is not None
    room = room_for(width, mine.most_new) if isinstance(mine, RoomyLayer) else 0
    keys = stacked(mine.keys, theirs.keys, width, room)
    values = stacked(mine.values, theirs.values, width, room)
    if isinstance(mine, RoomyLayer):
        mine.hold(keys, values, width)
    else:
        mine.keys, mine.values = keys, values


def drop_leading(layer: DynamicLayer, columns: int) -> None:
    """Forget a layer's first `columns` cached positions (padding for every row)."""
    if isinstance(layer, RoomyLayer) and layer.views_are_mine():
        layer.drop_leading(columns)
    else:
        layer.keys, layer.values = layer.keys[:, :, columns:, :], layer.values[:, :, columns:, :]


def is_plain_layer(layer: object) -> bool:
    """A layer of full attention whose cached columns can be padded and concatenated across batches."""
    return type(layer) in (DynamicLayer, RoomyLayer)
