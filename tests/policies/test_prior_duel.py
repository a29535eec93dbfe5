"""The prior duel's claims: it seldom probes or switches where the prior does worse, and follows the prior soon after it turns better."""

import numpy as np

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
