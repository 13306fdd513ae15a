"""Each preference loss against its value worked out by hand (LLaMA-Factory 0.9.5 / TRL formulas)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tunelab.config.schema import PrefSection
from tunelab.train.pref_loss import FeedbackLogps, PairLogps, RunningMean, dpo_losses, kto_kl, kto_losses


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def logsig(x: float) -> float:
    return math.log(sig(x))


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# one pair: policy chosen -10, rejected -14; reference chosen -11, rejected -12
# logits = (-10 - -14) - (-11 - -12) = 4 - 1 = 3; chosen log-ratio 1, rejected log-ratio -2
PAIR = PairLogps(chosen=t(-10.0), rejected=t(-14.0), chosen_avg=t(-2.5), ref_chosen=t(-11.0), ref_rejected=t(-12.0))


def loss_of(logps: PairLogps = PAIR, **keys: object) -> float:
    losses, _, _ = dpo_losses(PrefSection(**keys), logps, RunningMean().update)
    return float(losses.mean())


def test_sigmoid_with_label_smoothing() -> None:
    # beta 0.1: beta * logits = 0.3
    assert loss_of(pref_beta=0.1) == pytest.approx(-logsig(0.3))
    assert loss_of(pref_beta=0.1, dpo_label_smoothing=0.2) == pytest.approx(-0.8 * logsig(0.3) - 0.2 * logsig(-0.3))


def test_hinge_and_ipo() -> None:
    # hinge: relu(1 - 0.5 * 3) = 0, and with beta 0.1: 1 - 0.3 = 0.7
    assert loss_of(pref_loss="hinge", pref_beta=0.5) == pytest.approx(0.0)
    assert loss_of(pref_loss="hinge", pref_beta=0.1) == pytest.approx(0.7)
    # ipo: (3 - 1 / (2 * 0.1))^2 = (3 - 5)^2 = 4 (the inputs are means per token for ipo; the arithmetic is the same)
    assert loss_of(pref_loss="ipo", pref_beta=0.1) == pytest.approx(4.0)


def test_kto_pair() -> None:
    # chosen KL = max(1, 0) = 1, rejected KL = max(-2, 0) = 0
    # losses: 1 - sig(0.1 * (1 - 0)) and 1 - sig(0.1 * (1 - -2)); their mean
    expected = ((1 - sig(0.1)) + (1 - sig(0.3))) / 2
    assert loss_of(pref_loss="kto_pair", pref_beta=0.1) == pytest.approx(expected)


def test_orpo_and_simpo_need_no_reference() -> None:
    # means per token: chosen -0.5, rejected -1.5
    avg = PairLogps(chosen=t(-0.5), rejected=t(-1.5), chosen_avg=t(-0.5))
    log_odds = (-0.5 - -1.5) - (math.log(1 - math.exp(-0.5)) - math.log(1 - math.exp(-1.5)))
    assert loss_of(avg, pref_loss="orpo", pref_beta=0.1) == pytest.approx(0.5 + 0.1 * -logsig(log_odds))
    # simpo: -logsig(2 * (1 - 0.5 / 2)) = -logsig(1.5)
    assert loss_of(avg, pref_loss="simpo", pref_beta=2.0, simpo_gamma=0.5) == pytest.approx(-logsig(1.5))
    _, chosen_rewards, rejected_rewards = dpo_losses(PrefSection(pref_loss="simpo", pref_beta=2.0), avg)
    assert float(chosen_rewards) == pytest.approx(-1.0) and float(rejected_rewards) == pytest.approx(-3.0)


def test_pref_ftx_adds_the_chosen_mean_nll() -> None:
    # + 0.5 * -(-2.5)
    assert loss_of(pref_beta=0.1, pref_ftx=0.5) == pytest.approx(-logsig(0.3) + 1.25)


def test_bco_with_its_running_mean() -> None:
    # rewards: 0.1 * 1 and 0.1 * -2, batch mean -0.05; first update: delta = -0.05
    # bco = -logsig(0.1 - -0.05) - logsig(-(-0.2 - -0.05)); mixed (dpo + 0.5 * bco) / 1.5
    running = RunningMean()
    losses, _, _ = dpo_losses(PrefSection(pref_beta=0.1, pref_bco_weight=0.5), PAIR, running.update)
    bco = -logsig(0.15) - logsig(0.15)
    assert float(losses) == pytest.approx((-logsig(0.3) + 0.5 * bco) / 1.5)
    # a second batch with mean reward 0.15 moves the mean to (-0.05 + 0.15) / 2
    assert running.update(0.15) == pytest.approx(0.05)


def test_rewards_are_beta_times_the_log_ratios() -> None:
    _, chosen_rewards, rejected_rewards = dpo_losses(PrefSection(pref_beta=0.1), PAIR)
    assert float(chosen_rewards) == pytest.approx(0.1) and float(rejected_rewards) == pytest.approx(-0.2)


def test_kto_loss_and_kl() -> None:
    # policy KL partners -5, -7 and reference -6, -6: log-ratios 1, -1, mean 0 -> kl 0; then one with mean 0.5
    assert float(kto_kl(t(-5.0, -7.0), t(-6.0, -6.0), lambda x: x)) == 0.0
    kl = kto_kl(t(-5.0, -6.0), t(-6.0, -6.0), lambda x: x)
    assert float(kl) == pytest.approx(0.5)
    logps = FeedbackLogps(chosen=t(-3.0), rejected=t(-8.0, -9.0), kl=t(), ref_chosen=t(-4.0),
                          ref_rejected=t(-7.0, -9.0), ref_kl=t(), chosen_avg=t(-1.5))
    # chosen: 2 * (1 - sig(0.1 * (1 - 0.5))); rejected log-ratios -1, 0: 1 - sig(0.1 * (0.5 - -1)), 1 - sig(0.05)
    pref = PrefSection(pref_beta=0.1, kto_chosen_weight=2.0, kto_rejected_weight=1.0)
    loss, chosen_rewards, rejected_rewards = kto_losses(pref, logps, kl, 3)
    expected = (2 * (1 - sig(0.05)) + (1 - sig(0.15)) + (1 - sig(0.05))) / 3
    assert float(loss) == pytest.approx(expected)
    assert rejected_rewards.tolist() == pytest.approx([-0.1, 0.0])
    # pref_ftx: + 0.5 * mean(-chosen_avg) / 1 desirable example * batch of 3
    loss_ftx, _, _ = kto_losses(PrefSection(pref_beta=0.1, kto_chosen_weight=2.0, pref_ftx=0.5), logps, kl, 3)
    assert float(loss_ftx) == pytest.approx(expected + 0.5 * 1.5 * 3)


GOLDEN = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "pref_loss_golden.json").read_text())


@pytest.mark.parametrize("case", GOLDEN["dpo"], ids=lambda c: f"{c['pref_loss']}-{'-'.join(c['keys'])}")
def test_dpo_losses_equal_llamafactory(case: dict) -> None:
    """tools/lf_pref_loss_golden.py: LLaMA-Factory's own compute_preference_loss on the same log-probabilities,
    two batches in a row (BCO's running mean carries over; TRL keeps it in float32, hence rel 1e-6).

    hinge and ipo: LLaMA-Factory 0.9.5 calls TRL 0.24's dpo_loss without its new loss_type argument, which
    defaults to sigmoid, so it trains the sigmoid loss under those names. tunelab computes hinge and ipo; the
    check here is that LLaMA-Factory's values are the sigmoid ones, and the rewards agree."""
    values = {k: torch.tensor(v, dtype=torch.float64) * case["scale"] for k, v in GOLDEN["logps"].items()}
    logps = PairLogps(chosen=values["pc"], rejected=values["pr"], chosen_avg=values["pc"], ref_chosen=values["rc"],
                      ref_rejected=values["rr"])
    pref = PrefSection(pref_loss=case["pref_loss"], **case["keys"])
    as_llamafactory = pref.model_copy(update={"pref_loss": "sigmoid"}) if pref.pref_loss in ("hinge", "ipo") else pref
    running, lf_running = RunningMean(), RunningMean()
    for batch in case["batches"]:
        losses, chosen, rejected = dpo_losses(as_llamafactory, logps, lf_running.update)
        assert losses.tolist() == pytest.approx(batch["losses"], rel=1e-6)
        assert chosen.tolist() == pytest.approx(batch["chosen_rewards"], rel=1e-9)
        assert rejected.tolist() == pytest.approx(batch["rejected_rewards"], rel=1e-9)
        if as_llamafactory is not pref:
            ours = dpo_losses(pref, logps, running.update)[0]
            assert ours.tolist() != pytest.approx(batch["losses"], rel=1e-3)


def test_kto_loss_equals_llamafactory() -> None:
    values = {k: torch.tensor(v, dtype=torch.float64) for k, v in GOLDEN["logps"].items()}
    golden = GOLDEN["kto"]
    kl = kto_kl(torch.tensor(golden["kl_policy"]), torch.tensor(golden["kl_reference"]), lambda x: x)
    assert float(kl) == pytest.approx(golden["kl"], rel=1e-6)
    logps = FeedbackLogps(chosen=values["pc"][:2], rejected=values["pr"][:2], kl=t(), ref_chosen=values["rc"][:2],
                          ref_rejected=values["rr"][:2], ref_kl=t(), chosen_avg=values["pc"][:2])
    loss, chosen, rejected = kto_losses(PrefSection(**golden["keys"]), logps, kl.double(), 4)
    assert float(loss) == pytest.approx(golden["loss"], rel=1e-6)
    assert chosen.tolist() == pytest.approx(golden["chosen_rewards"], rel=1e-6)
    assert rejected.tolist() == pytest.approx(golden["rejected_rewards"], rel=1e-6)
