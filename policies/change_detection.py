"""Noticing that cases which used to help stopped helping: a Bernoulli CUSUM per case.

A tool or site changes, an answer goes stale, and a case that led to successes now leads to
failures. `ChangeDetector.observe` takes each outcome of a step that showed some cases and adds
to each case's sum the log-likelihood ratio of the outcome under "the case's success rate fell
to `drop` times what it was" against "it is what it was":

    S_c <- max(0, S_c + log P(r | p1) / P(r | p0)),   p1 = drop * p0

with p0 the case's recent success rate when shown (a moving average over about its last 10
shows, capped at `REFERENCE_CAP`). A success lowers the sum, a failure raises it by more the
likelier success was, and the sum drifts down while p0 holds; `observe` reports a change once
a sum passes `threshold`. The reference is the case's own recent record, not a network's
prediction: an overconfident network raised false alarms.

Simulated at the defaults (threshold 4.5, drop 0.4; `tests/policies/test_change_detection.py`):
1 to 2 false alarms per 3000 shows of a case that succeeds 50 % or 70 % of the time, 0.2 at
90 %, and a median of 13 shows to notice a drop from 70 % to 15 %. A drop from 50 % is mostly missed: the moving average follows it down
before the sum crosses. Sums and averages live in memory only and restart at zero.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

MIN_SHOWN = 5
"""A case's outcomes are watched once it has been shown this often."""

REFERENCE_CAP = 0.8
"""Never take a case's success rate as surer than this: after a streak of successes the moving
average nears 1, and two failures of a 90 % case would look like a change (simulated: about 8
false alarms per 3000 shows of a 90 % case with a cap of 0.98, 0.2 with 0.8)."""

RECENT_RATE_STEP = 0.1
"""Step of the moving average of a case's rewards (about its last 10 shows)."""


class ChangeDetector:
    """Per-case CUSUM sums of evidence that outcomes fell below the case's recent record."""

    def __init__(self, threshold: float, drop: float):
        self.threshold = threshold
        self.drop = drop
        self.sums: dict[str, float] = {}
        self.recent: dict[str, float] = {}
        """case id -> moving average of the rewards it was shown with."""

    def observe(self, case_ids: Iterable[str], reward: float, stats: Mapping[str, tuple[int, float]]) -> bool:
        """Count one outcome of a step that showed `case_ids`; True if a case's sum passed the threshold.

        `stats` maps a case id to (times shown, sum of rewards) before this step.
        """
        crossed = False
        for case_id in case_ids:
            shown, total = stats.get(case_id, (0, 0.0))
            recent = self.recent.get(case_id, (total + 1) / (shown + 2))
            self.recent[case_id] = recent + RECENT_RATE_STEP * (reward - recent)
            if shown < MIN_SHOWN:
                continue
            p0 = min(max(recent, 0.02), REFERENCE_CAP)
            p1 = p0 * self.drop
            step = math.log(p1 / p0) if reward >= 0.5 else math.log((1 - p1) / (1 - p0))
            self.sums[case_id] = max(0.0, self.sums.get(case_id, 0.0) + step)
            crossed |= self.sums[case_id] > self.threshold
        return crossed

    def reset(self, case_ids: Iterable[str]) -> None:
        """Start these cases afresh (after the policy forgot what it knew about them)."""
        for case_id in case_ids:
            self.sums.pop(case_id, None)
            self.recent.pop(case_id, None)
