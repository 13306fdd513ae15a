"""sequence_logps: the sum of labelled tokens' log-probabilities per row, equal to the full-logits computation."""

from __future__ import annotations

import torch

from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.train.logps import sequence_logps


def test_sums_and_counts_match_the_full_logits(tiny_llama: torch.nn.Module) -> None:
    torch.manual_seed(0)
    ids = torch.randint(3, 60, (3, 9))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    labels = ids.clone()
    labels[:, :4] = IGNORE_INDEX
    labels[2, 6:] = IGNORE_INDEX
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    sums, counts = sequence_logps(tiny_llama, batch)
    with torch.no_grad():
        logits = tiny_llama(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    picked = logits.log_softmax(-1).gather(2, targets.clamp(min=0)[..., None])[..., 0]
    assert counts.tolist() == keep.sum(1).tolist() == [5, 5, 2]
    torch.testing.assert_close(sums, (picked * keep).sum(1), atol=1e-4, rtol=1e-4)


def test_the_gradient_path_gives_the_same_values_and_the_full_logits_gradient(tiny_llama: torch.nn.Module) -> None:
    from tunelab.train.logps import labelled_logps, per_row_sums

    torch.manual_seed(1)
    ids = torch.randint(3, 60, (2, 8))
    labels = ids.clone()
    labels[:, :3] = IGNORE_INDEX
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    per_token, rows = labelled_logps(tiny_llama, batch)
    sums = per_row_sums(per_token, rows, 2)
    torch.testing.assert_close(sums.detach(), sequence_logps(tiny_llama, batch)[0])
    sums.sum().backward()
    ours = tiny_llama.lm_head.weight.grad.clone()
    tiny_llama.zero_grad()
    logits = tiny_llama(input_ids=ids).logits[:, :-1].float()
    picked = logits.log_softmax(-1).gather(2, labels[:, 1:].clamp(min=0)[..., None])[..., 0]
    (picked * (labels[:, 1:] != IGNORE_INDEX)).sum().backward()
    torch.testing.assert_close(ours, tiny_llama.lm_head.weight.grad, atol=1e-5, rtol=1e-4)
