"""Noticing that cases which used to help stopped helping: a Bernoulli CUSUM per case and per region, and a test.

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
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from memento.policies.prior_duel import CONFIDENCE as PRIOR_CONFIDENCE, PriorDuel

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
        self.started: dict[str, int] = {}
        """case id -> the clock of the step that began its sum's current rise from zero (CUSUM's change-point estimate)."""

    def observe(self, case_ids: Iterable[str], reward: float, stats: Mapping[str, tuple[int, float]],
                clock: int = 0) -> bool:
        """Count one outcome of a step that showed `case_ids`; True if a case's sum passed the threshold.

        `stats` maps a case id to (times shown, sum of rewards) before this step; `clock` orders
        the steps (the policy's replay row id), for `since`.
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
            before = self.sums.get(case_id, 0.0)
            self.sums[case_id] = max(0.0, before + step)
            if self.sums[case_id] == 0.0:
                self.started.pop(case_id, None)
            elif before == 0.0:
                self.started[case_id] = clock
            crossed |= self.sums[case_id] > self.threshold
        return crossed

    def since(self, case_ids: Iterable[str]) -> int | None:
        """The earliest step at which a rise of these cases' sums began: where the change most likely happened."""
        return min((self.started[c] for c in case_ids if c in self.started), default=None)

    def reset(self, case_ids: Iterable[str]) -> None:
        """Start these cases afresh (after the policy forgot what it knew about them)."""
        for case_id in case_ids:
            self.sums.pop(case_id, None)
            self.recent.pop(case_id, None)
            self.started.pop(case_id, None)


@dataclass
class Suspect:
    """A change suspected around `state`: the cases that failed, their recent rate, and the test's rewards."""

    state: np.ndarray
    case_ids: set[str]
    reference: float
    since: int | None = None
    """The clock of the step where the rise that raised the suspicion began."""
    rewards: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """A confirmed change: the cases it was seen on, and the step where it most likely began.

    The steps from `since` on were recorded after the change (the failures that revealed it and
    the episodes that tested it), so a policy can forget what it knew before and keep them.
    """

    case_ids: set[str]
    since: int | None = None


class RegionDetector:
    """The same Bernoulli CUSUM over a region of tasks rather than a case: tasks near an anchor task.

    Which cases an exploring policy shows changes from one episode to the next, so a case's own
    sum restarts often and a region where most episodes now fail can go unnoticed. A region's
    sum counts every outcome of the tasks within `locality` of its anchor (the first task seen
    there: online leader clustering), against the region's own recent success rate.
    """

    def __init__(self, threshold: float, drop: float, locality: float):
        self.detector = ChangeDetector(threshold, drop)
        self.locality = locality
        self.anchors: list[np.ndarray] = []
        self.shown: list[int] = []
        self.rewards: list[float] = []

    def region(self, state: np.ndarray) -> int:
        """The index of the region `state` falls in (a new one if none is near enough)."""
        index = self.nearest(state)
        if index is not None:
            return index
        self.anchors.append(np.asarray(state, dtype=np.float32))
        self.shown.append(0)
        self.rewards.append(0.0)
        return len(self.anchors) - 1

    def nearest(self, state: np.ndarray) -> int | None:
        """The index of the region `state` falls in, None if none is near enough (creates none)."""
        if not self.anchors:
            return None
        similarities = np.stack(self.anchors) @ state
        best = int(np.argmax(similarities))
        return best if similarities[best] >= self.locality else None

    def observe(self, state: np.ndarray, reward: float, clock: int = 0) -> tuple[str, float]:
        """Count one outcome in the region of `state`; returns the region's key and its sum."""
        return self.count(self.region(state), reward, clock)

    def count(self, index: int, reward: float, clock: int = 0) -> tuple[str, float]:
        """Count one outcome in region `index`; returns the region's key and its sum."""
        key = f"region:{index}"
        self.detector.observe([key], reward, {key: (self.shown[index], self.rewards[index])}, clock)
        self.shown[index] += 1
        self.rewards[index] += reward
        return key, self.detector.sums.get(key, 0.0)

    def reset(self, state: np.ndarray) -> None:
        """Start the region of `state` afresh (after a change there was confirmed)."""
        index = self.region(state)
        self.detector.reset([f"region:{index}"])
        self.shown[index], self.rewards[index] = 0, 0.0


class ChangeMonitor:
    """A `ChangeDetector` whose lower `suspect_threshold` starts a test instead of a verdict.

    Past `suspect_threshold` (a couple of unexpected failures) a change around the task is only
    suspected. The next `test_episodes` learning episodes on tasks like it (cosine at least
    `locality` to it) show the similarity prior's picks (`testing` says which); the change is
    confirmed if those do better than the suspected cases' recent rate by `margin`, or reach
    90 %, and dropped otherwise. Past the detector's own threshold it is confirmed outright. A
    false alarm costs the test episodes, not what the policy learned, which is what lets the
    suspicion level be low.

    With `duel`, a `PriorDuel` per region also decides when a learning episode probes the
    prior's picks, and `prefers_prior` says where selection should follow the prior for now:
    the changes no sum of the policy's own outcomes reveals. A suspect's tests count as probes.
    """

    def __init__(self, threshold: float, drop: float, suspect_threshold: float, test_episodes: int,
                 margin: float, locality: float, *, duel: bool = False, seed: int = 0,
                 confidence: float = PRIOR_CONFIDENCE):
        self.detector = ChangeDetector(threshold, drop)
        self.regions = RegionDetector(threshold, drop, locality)
        self.duel = PriorDuel(seed, confidence) if duel else None
        self._probing: dict[str, int] = {}
        """episode id -> the region its selection probes."""
        self.suspect_threshold = suspect_threshold
        self.test_episodes = test_episodes
        self.margin = margin
        self.locality = locality
        self.suspects: list[Suspect] = []
        self._testing: dict[str, Suspect] = {}
        """episode id -> the suspect its selection tests."""

    def testing(self, state: np.ndarray, episode_id: str) -> bool:
        """Whether a learning episode on `state` should show the similarity prior's picks: to test a suspect, or a probe."""
        suspect = self._near(state)
        if suspect is not None:
            self._testing[episode_id] = suspect
            return True
        if self.duel is None:
            return False
        region = self.regions.region(state)
        if self.duel.probe(region):
            self._probing[episode_id] = region
            return True
        return False

    def prefers_prior(self, state: np.ndarray) -> bool:
        """Whether, around `state`, the prior's picks now do better than the policy's (`PriorDuel`): select by them."""
        return self.duel is not None and self.duel.prefers_prior(self.regions.nearest(state))

    def observe(self, state: np.ndarray, episode_id: str, case_ids: Sequence[str], reward: float,
                stats: Mapping[str, tuple[int, float]], clock: int = 0) -> Change | None:
        """Count one outcome; returns a confirmed change (forget around its cases), else None.

        `clock` orders the steps (the policy's replay row id); a change's `since` is on that clock.
        """
        probed = self._probing.pop(episode_id, None)
        suspect = self._testing.pop(episode_id, None)
        if probed is None and suspect is None:
            return self._watch(state, case_ids, reward, stats, clock)
        # The episode showed the prior's picks: a probe of the duel, and perhaps a suspect's test.
        if self.duel is not None:
            self.duel.observe(self.regions.region(state) if probed is None else probed, reward, True)
        if suspect is None or not any(s is suspect for s in self.suspects):
            return None
        suspect.rewards.append(reward)
        if len(suspect.rewards) < self.test_episodes:
            return None
        self.suspects = [s for s in self.suspects if s is not suspect]
        # Beating a case that used to succeed 90 % by the margin is impossible; 90 % is enough.
        if np.mean(suspect.rewards) >= min(suspect.reference + self.margin, 0.9):
            self.regions.reset(suspect.state)
            return self._confirmed(suspect.case_ids, suspect.since)
        self.detector.reset(suspect.case_ids)
        self.regions.reset(suspect.state)
        return None

    def _watch(self, state: np.ndarray, case_ids: Sequence[str], reward: float,
               stats: Mapping[str, tuple[int, float]], clock: int) -> Change | None:
        """Count an outcome of the policy's own picks: the sums, the duel, and perhaps a new suspect."""
        if self.detector.observe(case_ids, reward, stats, clock):
            return self._confirmed(set(case_ids), self.detector.since(case_ids))
        index = self.regions.region(state)
        region, region_level = self.regions.count(index, reward, clock)
        if self.duel is not None:
            self.duel.observe(index, reward, False)
        level = max((self.detector.sums.get(c, 0.0) for c in case_ids), default=0.0)
        if 0 < self.suspect_threshold < max(level, region_level) and self._near(state) is None:
            references = [self.detector.recent.get(c, 0.5) for c in case_ids]
            since = self.detector.since(case_ids)
            if region_level > level:
                references = [self.regions.detector.recent.get(region, 0.5)]
                since = self.regions.detector.since([region])
            reference = float(np.mean(references))
            self.suspects.append(Suspect(state=state, case_ids=set(case_ids), reference=reference, since=since))
        return None

    def reset(self, case_ids: Iterable[str]) -> None:
        """Start these cases afresh (after the policy forgot what it knew about them)."""
        self.detector.reset(case_ids)

    def _confirmed(self, case_ids: set[str], since: int | None) -> Change:
        self.detector.reset(case_ids)
        return Change(case_ids, since)

    def _near(self, state: np.ndarray) -> Suspect | None:
        return next((s for s in self.suspects if float(s.state @ state) >= self.locality), None)
