"""Neat packing trains exactly as the examples one by one; plain packing lets them attend across (as in LF)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from tunelab.data.collate import BlockMaskCollator, PackedCollator
from tunelab.data.packing import pack_supervised
from tunelab.model.attention import use_packed_attention
from tunelab.train.loss import selective_loss

CUTOFF = 23  # LF's effective cutoff for a user cutoff_len of 24: rows of 24 tokens
LENGTHS = (7, 12, 5, 9, 3, 16, 6)


def examples() -> tuple[list[list[int]], list[list[int]]]:
    """Random examples with a masked prompt, but the 5-token one (packed mid-row) is trained from its first
    token (train_on_prompt): packing must not train the example before it to predict that token."""
    generator = torch.Generator().manual_seed(0)
    ids, labels = [], []
    for k, n in enumerate(LENGTHS):
        row = torch.randint(3, 90, (n,), generator=generator).tolist()
        prompt = 0 if n == 5 else 1 + k % 3
        ids.append(row)
        labels.append([-100] * prompt + row[prompt:])
    return ids, labels


def packed_rows(neat: bool) -> list[dict[str, Any]]:
    ids, labels = examples()
    columns = pack_supervised(ids, labels, CUTOFF, neat=neat, pad_token_id=0).to_dict()
    assert len(columns["input_ids"]) > 1 and all(len(row) == CUTOFF + 1 for row in columns["input_ids"])
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def loss_sum(model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over the labelled positions, and their count."""
    logits = model(**{k: v for k, v in inputs.items() if k != "labels"}).logits.float()
    labels = inputs["labels"][:, 1:]
    total = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="sum")
    return total, int((labels != -100).sum())


def one_by_one(model: Any) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
    """Token-weighted mean loss of every example run alone, its token count and the gradients."""
    ids, labels = examples()
    total, count = torch.zeros(()), 0
    for row, labs in zip(ids, labels):
        part, n = loss_sum(model, {"input_ids": torch.tensor([row]), "labels": torch.tensor([labs])})
        total, count = total + part, count + n
    loss = total / count
    loss.backward()
    return loss.detach(), count, gradients(model)


def gradients(model: Any) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return grads


def assert_same_training(loss: torch.Tensor, grads: dict[str, torch.Tensor], want_loss: torch.Tensor,
                         want_grads: dict[str, torch.Tensor]) -> None:
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-5)
    assert grads.keys() == want_grads.keys()
    for name, want in want_grads.items():
        torch.testing.assert_close(grads[name], want, rtol=1e-5, atol=1e-5, msg=name)


def test_neat_packed_batch_trains_as_the_examples_one_by_one(make_tiny_llama: Any) -> None:
    want_loss, want_count, want_grads = one_by_one(make_tiny_llama())
    model = make_tiny_llama()
    assert use_packed_attention(model)
    batch = PackedCollator(neat=True)(packed_rows(neat=True))
    assert batch["input_ids"].shape == (1, sum(LENGTHS))  # padding dropped
    total, count = loss_sum(model, batch)
    assert count == want_count
    loss = total / count
    loss.backward()
    assert_same_training(loss.detach(), gradients(model), want_loss, want_grads)


def test_trainer_loss_on_a_neat_packed_batch_equals_one_by_one(make_tiny_llama: Any) -> None:
    want_loss, want_count, want_grads = one_by_one(make_tiny_llama())
    model = make_tiny_llama()
    use_packed_attention(model)
    loss = selective_loss(model, PackedCollator(neat=True)(packed_rows(neat=True)), want_count)
    loss.backward()
    assert_same_training(loss.detach(), gradients(model), want_loss, want_grads)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_block_mask_rows_train_as_the_examples_one_by_one(make_tiny_llama: Any, implementation: str) -> None:
    want_loss, want_count, want_grads = one_by_one(make_tiny_llama())
    model = make_tiny_llama()
    model.set_attn_implementation(implementation)
    batch = BlockMaskCollator(pad_token_id=0, neat=True)(packed_rows(neat=True))
    assert batch["attention_mask"].shape == (len(batch["input_ids"]), 1, CUTOFF + 1, CUTOFF + 1)
    total, count = loss_sum(model, batch)
    assert count == want_count
    loss = total / count
    loss.backward()
    assert_same_training(loss.detach(), gradients(model), want_loss, want_grads)


def test_plain_packing_attends_across_examples(make_tiny_llama: Any) -> None:
    """Without neat packing examples see earlier ones in their row (the test above can fail), exactly as
    LLaMA-Factory runs a plain packed row: one causal sequence with position ids restarting per example."""
    want_loss, _, _ = one_by_one(make_tiny_llama())
    model = make_tiny_llama()
    use_packed_attention(model)
    rows = packed_rows(neat=False)
    total, count = loss_sum(model, PackedCollator(neat=False)(rows))
    assert abs((total / count).item() - want_loss.item()) > 1e-3
    reference = make_tiny_llama()
    lf_total, lf_count = torch.zeros(()), 0
    for row in rows:
        used = sum(row["example_lengths"])
        part, n = loss_sum(reference, {"input_ids": torch.tensor([row["input_ids"][:used]]),
                                       "position_ids": torch.tensor([row["position_ids"][:used]]),
                                       "attention_mask": torch.ones((1, used), dtype=torch.long),
                                       "labels": torch.tensor([row["labels"][:used]])})
        lf_total, lf_count = lf_total + part, lf_count + n
    assert count == lf_count
    torch.testing.assert_close(total / count, lf_total / lf_count, rtol=1e-5, atol=1e-5)
    block = BlockMaskCollator(pad_token_id=0, neat=False)(rows)
    block_total, _ = loss_sum(reference, block)
    torch.testing.assert_close(block_total / count, lf_total / lf_count, rtol=1e-5, atol=1e-5)


def test_neat_collator_masks_each_examples_first_label_and_drops_padding() -> None:
    rows = [{"input_ids": [5, 6, 7, 8, 9, 0, 0], "labels": [5, 6, 7, 8, 9, -100, -100],
             "position_ids": [0, 1, 2, 0, 1, 0, 0], "example_lengths": [3, 2]}]
    neat = PackedCollator(neat=True)(rows)
    assert neat["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert neat["labels"].tolist() == [[-100, 6, 7, -100, 9]]
    assert neat["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert neat["cu_seq_lens_q"].tolist() == [0, 3, 5] and neat["max_length_q"] == 3
    plain = PackedCollator(neat=False)(rows)
    assert plain["labels"].tolist() == [[-100, 6, 7, 8, 9]]
    assert plain["cu_seq_lens_q"].tolist() == [0, 5] and plain["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    allowed = BlockMaskCollator(pad_token_id=0)(rows)["attention_mask"][0, 0] == 0
    assert allowed.int().tolist() == [[1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0],
                                      [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0],
                                      [0, 0, 0, 0, 0, 0, 1]]
