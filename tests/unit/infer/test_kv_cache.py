"""RoomyLayer: the same keys and values as transformers' DynamicLayer, without copying the cache at every step."""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from tunelab.infer.batch_generate import GenRequest
from tunelab.infer.kv_cache import ROOM, RoomyLayer, drop_leading, join, room_for, roomy_cache
from tunelab.infer.rows import new_row
from tunelab.infer.running import RunningBatch


def states(rows: int, columns: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random keys and values [rows, 2 heads, columns, 4]."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, 2, columns, 4, generator=generator),
            torch.randn(rows, 2, columns, 4, generator=generator))


def filled(layer: DynamicLayer, rows: int, columns: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The random keys and values states() gives, after the layer took them as one update."""
    keys, values = states(rows, columns, seed)
    layer.update(keys, values)
    return keys, values


def test_steps_give_dynamic_layers_values_and_rarely_move() -> None:
    """A prompt then 300 one-column steps: every step returns DynamicLayer's keys and values; the stores move only
    when full (a few times), not at every step."""
    roomy, plain = RoomyLayer(), DynamicLayer()
    stores = set()
    for step in range(301):
        keys, values = states(3, 20 if step == 0 else 1, step)
        got, want = roomy.update(keys, values), plain.update(keys, values)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        stores.add(id(roomy.key_store))
    assert roomy.get_seq_length() == 320
    assert 2 <= len(stores) <= 8


def test_a_step_writes_into_the_store() -> None:
    layer = RoomyLayer()
    layer.update(*states(2, 10, 0))
    store = layer.key_store
    assert store is not None and store.shape[-2] == 10 + ROOM
    keys, _ = layer.update(*states(2, 1, 1))
    assert layer.key_store is store and keys.data_ptr() == store.data_ptr()


def test_rows_leave_with_their_room() -> None:
    layer, plain = RoomyLayer(), DynamicLayer()
    for seed, columns in enumerate((6, 1, 1)):
        layer.update(*states(4, columns, seed))
        plain.update(*states(4, columns, seed))
    room = layer.key_store.shape[-2] if layer.key_store is not None else 0
    keep = torch.tensor([3, 1])
    layer.batch_select_indices(keep)
    plain.batch_select_indices(keep)
    assert torch.equal(layer.keys, plain.keys) and torch.equal(layer.values, plain.values)
    assert layer.key_store is not None and layer.key_store.shape[-2] == room
    layer.update(*states(2, 1, 9))
    plain.update(*states(2, 1, 9))
    assert torch.equal(layer.keys, plain.keys)


def test_leading_columns_drop_without_a_copy() -> None:
    layer = RoomyLayer()
    keys, values = filled(layer, 2, 12, 0)
    store = layer.key_store
    drop_leading(layer, 5)
    assert layer.key_store is store and torch.equal(layer.keys, keys[:, :, 5:])
    new_keys, new_values = states(2, 1, 1)
    out_keys, out_values = layer.update(new_keys, new_values)
    assert torch.equal(out_keys, torch.cat([keys[:, :, 5:], new_keys], dim=2))
    assert torch.equal(out_values, torch.cat([values[:, :, 5:], new_values], dim=2))


def test_joined_rows_are_right_aligned_behind_zeros() -> None:
    top, bottom = RoomyLayer(), RoomyLayer()
    top_keys, top_values = filled(top, 2, 7, 0)
    _, bottom_values = filled(bottom, 1, 4, 1)
    join(top, bottom, 9)
    assert top.keys.shape == (3, 2, 9, 4)
    assert torch.equal(top.keys[:2, :, 2:], top_keys) and torch.equal(top.values[2:, :, 5:], bottom_values)
    assert not top.keys[:2, :, :2].any() and not top.values[2:, :, :5].any()
    assert top.key_store is not None and top.key_store.shape[-2] == 9 + room_for(9)
    step_keys, _ = states(3, 1, 2)
    assert torch.equal(top.update(step_keys, step_keys)[0][:, :, -1:], step_keys)


def test_transformers_own_layers_join_and_drop_columns_too() -> None:
    """A cache whose layers transformers made itself (lazily, as DynamicLayer) still merges rows."""
    top, bottom = DynamicLayer(), DynamicLayer()
    top_keys, _ = filled(top, 1, 3, 0)
    bottom_keys, bottom_values = filled(bottom, 2, 5, 1)
    join(top, bottom, 5)
    assert top.keys.shape == (3, 2, 5, 4) and torch.equal(top.keys[:1, :, 2:], top_keys)
    assert torch.equal(top.values[1:], bottom_values) and not top.values[:1, :, :2].any()
    drop_leading(top, 2)
    assert torch.equal(top.keys[1:], bottom_keys[:, :, 2:])


def test_tensors_assigned_from_outside_are_taken_over() -> None:
    """transformers' own helpers (crop, reorder_cache) assign keys/values: the next step starts from those."""
    layer = RoomyLayer()
    keys, values = filled(layer, 2, 8, 0)
    layer.crop(-3)
    new_keys, new_values = states(2, 1, 1)
    out_keys, out_values = layer.update(new_keys, new_values)
    assert torch.equal(out_keys, torch.cat([keys[:, :, :5], new_keys], dim=2))
    assert torch.equal(out_values, torch.cat([values[:, :, :5], new_values], dim=2))
    assert layer.views_are_mine()


def test_reset_forgets_the_stores() -> None:
    layer = RoomyLayer()
    layer.update(*states(1, 3, 0))
    layer.reset()
    assert layer.key_store is None and layer.get_seq_length() == 0
    layer.update(*states(1, 2, 1))
    assert layer.get_seq_length() == 2


def test_roomy_cache_keeps_layers_it_cannot_pad() -> None:
    from transformers import MistralConfig

    full = MistralConfig(num_hidden_layers=2, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=64, sliding_window=None)
    assert all(type(layer) is RoomyLayer for layer in roomy_cache(full).layers)
    sliding = MistralConfig(num_hidden_layers=2, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                            num_key_value_heads=1, vocab_size=64, sliding_window=4)
    assert not any(type(layer) is RoomyLayer for layer in roomy_cache(sliding).layers)


def test_decode_steps_do_not_copy_the_cache(tiny_llama: Any, tiny_tokenizer: Any) -> None:
    """The running batch's decode steps write into the cache's stores (transformers' DynamicLayer made a new
    tensor of the whole layer at every step)."""
    prompt = tiny_tokenizer("Hello there, how are you?", add_special_tokens=False)["input_ids"]
    batch = RunningBatch(tiny_llama, 0)
    with torch.inference_mode():
        batch.admit([new_row(0, GenRequest(prompt, 20)), new_row(1, GenRequest(prompt[:3], 20))])
        batch.step(None)
        assert batch.cache is not None
        stores = [layer.key_store for layer in batch.cache.layers]
        for _ in range(5):
            batch.step(None)
    assert len(batch) == 2
    assert all(layer.key_store is store for layer, store in zip(batch.cache.layers, stores))


def test_room_is_a_quarter_and_at_least_room() -> None:
    assert room_for(0) == ROOM and room_for(1000) == 250


def test_room_never_exceeds_what_the_rows_can_add(tiny_llama: Any, tiny_tokenizer: Any) -> None:
    """Rows that can add 5 more tokens get stores with at most 5 free columns (not room_for's 64), also after
    another row joins."""
    prompt = tiny_tokenizer("Hello there, how are you?", add_special_tokens=False)["input_ids"]
    batch = RunningBatch(tiny_llama, 0)
    with torch.inference_mode():
        batch.admit([new_row(0, GenRequest(prompt, 5))])
        assert batch.cache is not None
        assert all(layer.key_store.shape[-2] - layer.end <= 5 for layer in batch.cache.layers)
        batch.step(None)
        batch.admit([new_row(1, GenRequest(prompt[:4], 3))])
        assert all(layer.key_store.shape[-2] - layer.end <= 4 for layer in batch.cache.layers)
        results = {}
        while len(batch):
            results.update(batch.step(None))
    assert len(results[0].token_ids) == 5 and len(results[1].token_ids) == 3
