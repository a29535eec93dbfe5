"""Trying the similarity prior's picks now and then, to notice when they have become the better choice.

A change can make what a learned policy picks useless without lowering its exploring outcomes
much: in a region it had learned little about, exploration shows mostly cases that do nothing,
in the old world and in the new, so no sum of its own outcomes (`change_detection.py`) moves.
Meanwhile the prior's picks may have become the best there are (the near-duplicates whose
answers were stale are the ones recorded after the change). Only trying the prior can reveal
that.

So per region of tasks the policy's own picks and the prior's are two arms of a bandit, each
with a Beta(1 + successes, 1 + failures) posterior over discounted counts: every outcome in the
region multiplies both arms' counts by `DISCOUNT`, so they stand for about the last
1 / (1 - DISCOUNT) outcomes there and a prior that failed long ago gets tried again
(discounted Thompson sampling, Raj and Kalyani 2017). A learning episode probes, shows the
prior's picks, when a draw from the prior's posterior beats one from the policy's. Selection
without exploration follows the prior in a region while its record makes it `CONFIDENCE` sure
that the prior's picks do better; that ends by itself once the record says otherwise, so a
region mistaken for changed loses nothing of what was learned there.

The cost is the probes: learning episodes that show what the prior would, which teaches the
policy less about the cases the prior does not pick. Simulated (`tests/policies/test_prior_duel.py`):
in a region where the policy's picks succeed 70 % of the time and the prior's 20 %, 17 % of
episodes probe (27 % at 50 % against 20 %, half when the two are equal), and selection follows
the prior in under 0.3 % of them; after a change from 50 %/20 % to 10 %/90 %, selection follows
the prior after a median of 12 of the region's episodes (4 to 22 over 20 seeds). `python -m memento.evals.policy_curve` measures both
sides (see the README).
"""

from __future__ import annotations

import math

import numpy as np

DISCOUNT = 0.9
"""Factor on a region's counts per outcome there: about its last 10 outcomes count, as in the change detector's averages."""

CONFIDENCE = 0.95
"""The default of how sure a region's record must make it that the prior's picks do better before
selection follows them (`NeuralQConfig.prior_confidence`). 0.5 follows whichever arm's posterior
mean is higher: faster after a change, and more often fooled by a lucky run of probes."""


class PriorDuel:
    """Per region, discounted Thompson sampling between a policy's own picks and the similarity prior's."""

    def __init__(self, seed: int = 0, confidence: float = CONFIDENCE):
        self.rng = np.random.default_rng([seed, 7])
        self.confidence = confidence
        self.counts: dict[int, np.ndarray] = {}
        """region -> discounted [[policy successes, failures], [prior successes, failures]]."""

    def probe(self, region: int) -> bool:
        """Whether a learning episode in `region` should show the prior's picks."""
        counts = self.counts.get(region)
        if counts is None:
            return False  # nothing is known of the policy here yet: its own exploration comes first
        policy, prior = self.rng.beta(1.0 + counts[:, 0], 1.0 + counts[:, 1])
        return bool(prior > policy)

    def observe(self, region: int, reward: float, probed: bool) -> None:
        """Count one outcome in `region`, of a probe (the prior's picks) or of the policy's own."""
        counts = self.counts.setdefault(region, np.zeros((2, 2)))
        counts *= DISCOUNT
        counts[int(probed), 0 if reward >= 0.5 else 1] += 1.0

    def prefers_prior(self, region: int | None) -> bool:
        """Whether the record of `region` makes it at least `confidence` sure that the prior's picks do better.

        The chance that the prior's rate exceeds the policy's under their posteriors, by the normal
        approximation of the difference (deterministic: selecting draws nothing).
        """
        counts = None if region is None else self.counts.get(region)
        if counts is None:
            return False
        a, b = 1.0 + counts[:, 0], 1.0 + counts[:, 1]
        mean = a / (a + b)
        variance = a * b / ((a + b) ** 2 * (a + b + 1.0))
        z = (mean[1] - mean[0]) / math.sqrt(float(variance.sum()))
        return 0.5 * math.erfc(-z / math.sqrt(2.0)) >= self.confidence
