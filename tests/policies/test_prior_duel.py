"""The prior duel's claims: it seldom probes or switches where the prior does worse, and follows the prior soon after it turns better."""

import numpy as np
import pytest

from memento.errors import ValidationError
from memento.policies import make_policy
from memento.policies.prior_duel import PriorDuel


def run(duel, rates, seed, region=0):
    """Feed one region's episodes: each probes as the duel says, then succeeds at the rate of the arm shown.

    `rates` is a list of (policy's rate, prior's rate) per episode. Returns per episode whether it
    probed and whether, after it, selection would follow the prior.
    """
    rng = np.random.default_rng(seed)
    probed, prefers = [], []
    duel.observe(region, float(rng.random() < rates[0][0]), False)  # the policy's own first episode
    for policy_rate, prior_rate in rates:
        probe = duel.probe(region)
        duel.observe(region, float(rng.random() < (prior_rate if probe else policy_rate)), probe)
        probed.append(probe)
        prefers.append(duel.prefers_prior(region))
    return np.array(probed), np.array(prefers)


def test_a_region_never_seen_neither_probes_nor_follows_the_prior():
    duel = PriorDuel()
    assert not duel.probe(3) and not duel.prefers_prior(3) and not duel.prefers_prior(None)


def test_where_the_prior_does_worse_it_is_probed_now_and_then_and_never_followed():
    for seed in range(5):
        probed, prefers = run(PriorDuel(seed), [(0.7, 0.2)] * 2000, seed)
        assert 0.1 < probed.mean() < 0.25, probed.mean()  # tried again, since its counts decay, but not often
        assert prefers.mean() < 0.005, f"seed {seed}: followed a worse prior {prefers.mean():.1%} of the time"


def test_after_the_prior_turns_better_selection_follows_it_within_a_few_episodes_and_leaves_it_after():
    delays = []
    for seed in range(20):
        probed, prefers = run(PriorDuel(seed), [(0.5, 0.2)] * 300 + [(0.1, 0.9)] * 60 + [(0.8, 0.2)] * 100, seed)
        after = np.flatnonzero(prefers[300:360])
        delays.append(after[0] if len(after) else 60)
        assert not prefers[-50:].any(), f"seed {seed}: still following the prior once it was worse again"
        assert probed[300:360].mean() > probed[:300].mean(), "a better prior is probed more often"
    assert np.median(delays) <= 15, delays


def delays_to_follow(confidence):
    """Per seed, the region's episodes after the change of the test above until selection follows the prior."""
    delays = []
    for seed in range(20):
        _, prefers = run(PriorDuel(seed, confidence), [(0.5, 0.2)] * 300 + [(0.1, 0.9)] * 60, seed)
        after = np.flatnonzero(prefers[300:])
        delays.append(after[0] if len(after) else 60)
    return np.array(delays)


def test_a_lower_confidence_follows_a_better_prior_sooner_and_a_close_worse_one_more_often():
    assert np.median(delays_to_follow(0.5)) < np.median(delays_to_follow(0.95))
    fooled = {}
    for confidence in (0.5, 0.95):
        # The prior's picks a little worse than the policy's: every switch to them is a mistake.
        fooled[confidence] = np.mean([run(PriorDuel(seed, confidence), [(0.5, 0.4)] * 500, seed)[1].mean()
                                      for seed in range(5)])
    assert fooled[0.95] < fooled[0.5], fooled


def test_the_policy_config_sets_the_duel_confidence_and_rejects_a_useless_one(env):
    assert make_policy("neural", env.bank, prior_confidence=0.6).monitor.duel.confidence == 0.6
    for value in (0.3, 1.0):
        with pytest.raises(ValidationError, match=rf"prior_confidence={value}.*prior_confidence must be in \[0.5, 1\)"):
            make_policy("neural", env.bank, name="other", prior_confidence=value)


@pytest.mark.parametrize("name", ["neural", "episodic"])
def test_a_copy_that_replaces_another_keeps_its_change_monitor(env, name):
    previous = make_policy(name, env.bank)
    previous.changes = 3
    fresh = make_policy(name, env.bank, name=f"{name}-copy")
    fresh.keep_watch(previous)
    assert fresh.monitor is previous.monitor and fresh.changes == 3
