"""PPO's arithmetic against values worked out by hand (TRL 0.9's formulas, which LLaMA-Factory 0.9.5 runs)."""

from __future__ import annotations

import math

import pytest
import torch

from tunelab.train.ppo import core
from tunelab.train.ppo.core import Moments, PpoHyper


def test_masked_whiten_uses_only_masked_positions() -> None:
    values = torch.tensor([[1.0, 2.0, 99.0], [3.0, 99.0, 99.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    # masked values 1, 2, 3: mean 2, unbiased variance ((1 + 0 + 1) / 3) * 3 / 2 = 1
    out = core.masked_whiten(values, mask)
    assert out[0, 0].item() == pytest.approx(-1.0, abs=1e-6) and out[1, 0].item() == pytest.approx(1.0, abs=1e-6)
    kept_mean = core.masked_whiten(values, mask, shift_mean=False)
    assert kept_mean[0, 1].item() == pytest.approx(2.0, abs=1e-6)  # 0 whitened, plus the mean 2


def test_whitening_one_token_is_an_error_that_says_what_to_raise() -> None:
    with pytest.raises(ValueError, match="per_device_train_batch_size"):
        core.masked_var(torch.tensor([[1.0]]), torch.tensor([[1.0]]))


def test_adaptive_kl_controller_moves_by_the_clipped_error() -> None:
    # KL 12 against target 6: error 1 clipped to 0.2; 256 samples of a 10000 horizon
    assert core.adaptive_kl(0.2, 12.0, 6.0, 10000, 256) == pytest.approx(0.2 * (1 + 0.2 * 256 / 10000))
    # KL 6.6: error 0.1, not clipped
    assert core.adaptive_kl(0.2, 6.6, 6.0, 10000, 100) == pytest.approx(0.2 * (1 + 0.1 * 100 / 10000))
    # KL 0: error -1 clipped to -0.2
    assert core.adaptive_kl(0.5, 0.0, 6.0, 10000, 8) == pytest.approx(0.5 * (1 - 0.2 * 8 / 10000))


def test_running_moments_merge_batches_like_one_stream() -> None:
    first = core.update_moments(Moments(), torch.tensor([1.0, 2.0, 3.0]))
    assert first.mean == pytest.approx(2.0) and first.std == pytest.approx(1.0)  # sample std of 1, 2, 3
    assert core.normalise_scores(torch.tensor([1.0, 3.0]), first).tolist() == pytest.approx([-1.0, 1.0], abs=1e-5)
    second = core.update_moments(first, torch.tensor([5.0]))
    # 1, 2, 3, 5: mean 11/4; squared deviations 3.0625 + 0.5625 + 0.0625 + 5.0625 = 8.75, sample var 8.75 / 3
    assert second.mean == pytest.approx(2.75) and second.std == pytest.approx(math.sqrt(8.75 / 3))


def test_kl_rewards_penalise_each_token_and_add_the_score_at_the_last() -> None:
    logprobs = torch.tensor([[-1.0, -2.0, 0.0], [-1.0, -1.0, -1.0]])
    ref = torch.tensor([[-1.5, -1.0, 0.0], [-2.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rewards, kl = core.kl_rewards(torch.tensor([1.0, 2.0]), logprobs, ref, mask, kl_coef=0.5)
    # row 0: kl (0.5, -1); rewards -0.5 x kl = (-0.25, 0.5), score 1 added at its last token (index 1)
    # row 1: kl (1, 0, 0); rewards (-0.5, 0, 0), score 2 added at index 2
    assert kl.tolist() == [[0.5, -1.0, 0.0], [1.0, 0.0, 0.0]]
    assert rewards.tolist() == [[-0.25, 1.5, 0.0], [-0.5, 0.0, 2.0]]


def test_gae_advantages_and_returns() -> None:
    values = torch.tensor([[0.5, 1.0, 2.0], [1.0, 1.0, 9.0]])
    rewards = torch.tensor([[0.0, 1.0, 3.0], [0.0, 2.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    advantages, returns = core.gae(values, rewards, mask, PpoHyper(), whiten_rewards=False)
    # row 0 (gamma 1, lambda 0.95): t2: delta 3 - 2 = 1, A 1; t1: delta 1 + 2 - 1 = 2, A 2 + 0.95 = 2.95;
    #   t0: delta 0 + 1 - 0.5 = 0.5, A 0.5 + 0.95 x 2.95 = 3.3025
    # row 1 (t2 masked: value and reward 0): t1: delta 2 + 0 - 1 = 1, A 1; t0: delta 0 + 1 - 1 = 0, A 0.95
    raw = [3.3025, 2.95, 1.0, 0.95, 1.0]
    assert returns[0].tolist() == pytest.approx([3.3025 + 0.5, 2.95 + 1.0, 1.0 + 2.0])
    assert returns[1, :2].tolist() == pytest.approx([0.95 + 1.0, 1.0 + 1.0])
    mean = sum(raw) / 5
    std = math.sqrt(sum((a - mean) ** 2 for a in raw) / 4)
    expected = [(a - mean) / std for a in raw]
    got = advantages[0].tolist() + advantages[1, :2].tolist()
    assert got == pytest.approx(expected, abs=1e-5)


def test_whitened_rewards_keep_their_mean() -> None:
    values = torch.zeros(1, 3)
    rewards = torch.tensor([[0.0, 0.0, 6.0]])
    mask = torch.ones(1, 3)
    _, returns = core.gae(values, rewards, mask, PpoHyper(gamma=1.0, lam=1.0), whiten_rewards=True)
    # mean 2, unbiased variance (4 + 4 + 16) / 2 = 12: whitened (-2, -2, 4) / sqrt(12), plus the mean 2 back;
    # with lambda 1 and zero values the returns are the sums from each token on
    w = [2 - 2 / math.sqrt(12), 2 - 2 / math.sqrt(12), 2 + 4 / math.sqrt(12)]
    assert returns[0].tolist() == pytest.approx([w[0] + w[1] + w[2], w[1] + w[2], w[2]], abs=1e-5)
    _, plain = core.gae(values, rewards, mask, PpoHyper(gamma=1.0, lam=1.0), whiten_rewards=False)
    assert plain[0].tolist() == pytest.approx([6.0, 6.0, 6.0])


def test_clipped_policy_and_value_losses() -> None:
    mask = torch.ones(1, 1)
    loss = core.ppo_loss(old_logprobs=torch.zeros(1, 1), old_values=torch.tensor([[0.5]]),
                         logprobs=torch.tensor([[math.log(1.5)]]), vpreds=torch.tensor([[1.0]]), mask=mask,
                         advantages=torch.ones(1, 1), returns=torch.tensor([[2.0]]), hyper=PpoHyper())
    # ratio 1.5, advantage 1: max(-1.5, -clip(1.5, 0.8, 1.2)) = -1.2 (clipped)
    # value 1.0 clipped to 0.5 +- 0.2 = 0.7: 0.5 x max((1 - 2)^2, (0.7 - 2)^2) = 0.5 x 1.69 = 0.845
    assert loss.policy == pytest.approx(-1.2) and loss.value == pytest.approx(0.845)
    assert float(loss.total) == pytest.approx(-1.2 + 0.1 * 0.845) and loss.clipfrac == 1.0


def test_a_runaway_ratio_skips_the_mini_batch() -> None:
    mask = torch.ones(1, 1)
    logprobs = torch.tensor([[math.log(20.0)]], requires_grad=True)
    loss = core.ppo_loss(torch.zeros(1, 1), torch.zeros(1, 1), logprobs, torch.zeros(1, 1), mask, torch.ones(1, 1),
                         torch.zeros(1, 1), PpoHyper())
    assert float(loss.total.detach()) == 0.0 and loss.ratio == pytest.approx(20.0)
    loss.total.backward()
    assert float(logprobs.grad.abs().sum()) == 0.0
