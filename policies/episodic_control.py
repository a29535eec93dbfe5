"""The paper's kernel-based episodic-control estimate of Q(s, c), updated online.

AgentFly/Memento's non-parametric Q estimate: for each case c, keep entries (s_i, Q_i) of states
in which c was shown and the value that followed, and estimate

    Q(s, c) = (sum_i k(s, s_i) n_i Q_i + w0 p(s, c)) / (sum_i k(s, s_i) n_i + w0)

a kernel-weighted average over c's entries, each counted for its n_i visits (up to
1 / `min_step`), shrunk towards a prior p(s, c) carrying the weight `prior_weight` (w0) of one
exact-match visit. Three choices make it learn at a useful rate on real embeddings and keep
it local:

- an entry weighs as many observations as it merged (before, a hundred visits of one state
  weighed as much as one);

- the kernel is k(s, s_i) = exp(-(1 - cos(s, s_i)) / h^2) (a Gaussian on unit vectors) with a
  width h = 0.6 that gives two related tasks (cosine 0.6) a third of an exact match's weight,
  and 0 below `min_similarity`: history from unrelated tasks counts for nothing. (A narrow
  kernel against a fixed prior weight left the estimates within 1e-3 of the prior after
  hundreds of episodes on tasks whose cosines are 0.5 to 0.7, as MiniLM gives related questions.)
- the prior is similarity's ranking, p(s, c) = prior_q + prior_slope * (cos(s, c) - mean cos
  over the candidates), not a constant: a case with no entry near s ranks as similarity would
  rank it, so a case with a little positive history far away cannot outrank untouched
  nearby ones, and on tasks unlike any seen the policy is the similarity policy.

Learning happens in `record`: the target y = r, or r + gamma * V(s') in a multi-step episode
(V the soft maximum alpha * log mean exp(Q(s', c') / alpha) over the next state's candidates),
goes to every shown case; an entry whose state is within `merge_similarity` of s moves towards
y by max(1 / visits, `min_step`) (a running mean that keeps weighing recent outcomes, so that a
change in usefulness shows), else a new entry is added. Entries live in the bank
(`Bank.episodic_entries` / `write_episodic_entries`) and are mirrored in memory.

Change: a Bernoulli CUSUM per case watches for outcomes falling below the case's recent
record, and a suspected change is tested with similarity's picks before the entries around
the task are deleted (`policies/change_detection.py`, shared with `NeuralQPolicy`).

Credit assignment is the paper's: the episode's target is given to each shown case, with no
model of the set, so this policy is a baseline for `NeuralQPolicy`'s set model.
Selection is as in `NeuralQPolicy`: softmax(Q / alpha) sampling over the FAISS top-N while
learning, top-K when evaluating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from memento.bank import Bank, EpisodicEntry
from memento.case import Case
from memento.policies.base import (CaseSelectionPolicy, Exclude, LearnedConfig, Selection, TaskState, check_config,
                           sample_without_replacement, top_k)
from memento.policies.change_detection import ChangeMonitor

ENTRIES_TABLE = "policy_ec_entries"
"""What this policy claims on its bank (`CaseSelectionPolicy.storage`); the backend names its own table."""


@dataclass(frozen=True)
class EpisodicControlConfig(LearnedConfig):
    """Hyperparameters of `EpisodicControlPolicy` (with the shared ones of `LearnedConfig`: candidates, seed, ...)."""

    name: str = "episodic"
    """Key of this policy's rows in the bank's `policy_ec_entries` table."""
    bandwidth: float = 0.6
    """Kernel width h: an entry at cosine c from the task weighs exp(-(1 - c) / h^2)."""
    min_similarity: float = 0.3
    """Entries from states less cosine-similar than this to the task weigh nothing."""
    prior_q: float = 0.5
    """The prior's value for a case of average similarity among the candidates."""
    prior_slope: float = 0.5
    """The prior's rise per unit of cosine above the candidates' mean (0: a flat prior)."""
    prior_weight: float = 1.0
    """Kernel mass of the prior pseudo-entry (an exact match has mass 1)."""
    min_step: float = 0.2
    """Least step of an entry's running mean, so that recent outcomes keep their weight."""
    weigh_visits: bool = True
    """An entry weighs its visits (up to 1 / min_step); False weighs each entry once, as before issue 12."""
    merge_similarity: float = 0.98
    """A state at least this cosine-similar to an entry's updates that entry instead of adding one."""
    max_entries_per_case: int = 256
    """Beyond this many entries for a case, new outcomes merge into the nearest entry."""
    alpha: float = 0.1
    """Temperature of mu(c|s) ~ exp(Q/alpha) while exploring (Q is in reward units)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        rules = [
            (self.bandwidth > 0 and self.prior_weight > 0, "bandwidth and prior_weight must be positive"),
            (-1 <= self.merge_similarity <= 1 and -1 <= self.min_similarity <= 1, "merge_similarity and min_similarity must be cosines in [-1, 1]"),
            (self.prior_slope >= 0 and 0 < self.min_step <= 1, "need prior_slope >= 0 and 0 < min_step <= 1"),
            (self.max_entries_per_case >= 1, "need max_entries_per_case >= 1"),
        ]
        check_config(self, rules)


@dataclass
class _Entries:
    """One case's entries, as arrays."""

    ids: np.ndarray
    states: np.ndarray
    q: np.ndarray
    visits: np.ndarray


class EpisodicControlPolicy(CaseSelectionPolicy):
    """Kernel-weighted average of stored outcomes per case; learns as it records."""

    kind = "episodic"
    config_class = EpisodicControlConfig
    storage = ENTRIES_TABLE

    def __init__(self, bank: Bank | None = None, config: EpisodicControlConfig | None = None, *, share: bool = False):
        self.entries: dict[str, _Entries] = {}
        super().__init__(bank, config, share=share)
        self.rng = np.random.default_rng(self.config.seed)
        self.monitor = ChangeMonitor(self.config.change_threshold, self.config.change_drop, self.config.suspect_threshold,
                                     self.config.test_episodes, self.config.test_margin, self.config.min_similarity)
        self.changes = 0
        """Changes confirmed since the policy was created."""

    def _on_bind(self, bank: Bank) -> None:
        grouped: dict[str, list[EpisodicEntry]] = {}
        for entry in bank.episodic_entries(self.config.name):
            grouped.setdefault(entry.case_id, []).append(entry)
        for case_id, entries in grouped.items():
            self.entries[case_id] = _Entries(
                ids=np.array([e.row_id for e in entries], dtype=np.int64),
                states=np.stack([e.state for e in entries]),
                q=np.array([e.q for e in entries], dtype=np.float64),
                visits=np.array([e.visits for e in entries], dtype=np.int64),
            )

    # -- estimate and selection -------------------------------------------------------------------

    def q_values(self, state: np.ndarray, case_ids: Sequence[str], similarities: np.ndarray | None = None) -> np.ndarray:
        """The kernel estimate Q(s, c) for each case id; `similarities` are cos(s, c) for the prior."""
        h2 = self.config.bandwidth ** 2
        prior = np.full(len(case_ids), self.config.prior_q, dtype=np.float64)
        if similarities is not None and len(case_ids):
            similarities = np.asarray(similarities, dtype=np.float64)
            prior += self.config.prior_slope * (similarities - similarities.mean())
        values = prior.copy()
        for i, case_id in enumerate(case_ids):
            entries = self.entries.get(case_id)
            if entries is None:
                continue
            cosines = entries.states @ state
            # ||s - s_i||^2 / (2 h^2) = (1 - cos) / h^2 for unit vectors.
            weights = np.where(cosines >= self.config.min_similarity, np.exp(-(1.0 - cosines) / h2), 0.0)
            if self.config.weigh_visits:
                # An entry stands for its visits (up to the 1 / min_step its running mean remembers).
                weights = weights * np.minimum(entries.visits, 1.0 / self.config.min_step)
            values[i] = (weights @ entries.q + self.config.prior_weight * prior[i]) / (weights.sum() + self.config.prior_weight)
        return values

    def select(self, state: TaskState, *, k: int | None = None, explore: bool = False,
               namespace: tuple[str, ...] | None = None, exclude: Exclude = None) -> list[Selection]:
        k = self._check_select(state, k, explore)
        candidates = self._candidates(state, max(self.config.candidates, k + 1), namespace, exclude)
        if not candidates:
            return []
        scores = self.q_values(state.embedding, [c.id for c in candidates.cases], candidates.similarities)
        if explore and self.config.change_threshold > 0 and self.monitor.testing(state.embedding, state.episode_id):
            chosen = top_k(candidates.similarities, k)  # test a suspected change with the prior's picks
        elif explore:
            chosen = sample_without_replacement(scores / self.config.alpha, k, self.rng)
        else:
            chosen = top_k(scores, k)
        return [Selection(case=candidates.cases[i], score=float(scores[i]),
                          similarity=float(candidates.similarities[i])) for i in chosen]

    # -- learning ---------------------------------------------------------------------------------

    def record(self, state: TaskState, selected_ids: Sequence[str], reward: float, *,
               next_state: TaskState | None = None, done: bool = True,
               namespace: tuple[str, ...] | None = None) -> None:
        """Move each shown case's entry near `state` towards the step's target, in one transaction."""
        cases = self._check_outcome(state, selected_ids, reward, next_state, done)
        target = float(reward)
        if not done:
            following = self._candidates(next_state, self.config.candidates, namespace)
            if len(following):
                next_q = self.q_values(next_state.embedding, [c.id for c in following.cases],
                                       following.similarities) / self.config.alpha
                target += self.config.gamma * self.config.alpha * (_logsumexp(next_q) - math.log(len(next_q)))
        if done and cases and self.config.change_threshold > 0:
            self._watch_for_change(state, [c.id for c in cases], float(reward), namespace)
        plans = [self._plan(case.id, state.embedding, target) for case in cases]
        rows = self.bank.write_episodic_entries(self.config.name, [
            EpisodicEntry(case_id=case_id, state=state.embedding, q=q, visits=visits, row_id=row or 0)
            for case_id, row, q, visits in plans], episode_id=state.episode_id)
        written = [(case_id, row_id, q, visits) for (case_id, _, q, visits), row_id in zip(plans, rows)]
        # The memory mirror changes only once the transaction has committed.
        for case_id, row, q, visits in written:
            self._apply(case_id, row, state.embedding, q, visits)

    def has_recorded(self, episode_id: str) -> bool:
        """Whether a step of `episode_id` was recorded: the bank notes it in the transaction that writes the entries."""
        return self._bank().episodic_recorded(self.config.name, episode_id)

    def keep_watch(self, previous: CaseSelectionPolicy) -> None:
        """The change monitor (its sums and suspects) and the change count of `previous`."""
        self.monitor, self.changes = previous.monitor, previous.changes

    def _watch_for_change(self, state: TaskState, case_ids: list[str], reward: float,
                          namespace: tuple[str, ...] | None) -> None:
        """Feed the outcome to the change monitor; on a confirmed change, delete the entries around `state`.

        Every candidate of the state loses its entries, so its estimate is the similarity prior
        again until fresh outcomes come in (this one is written after the deletion).
        """
        stats = {}
        for case_id in case_ids:
            entries = self.entries.get(case_id)
            if entries is not None:
                stats[case_id] = (int(entries.visits.sum()), float(entries.visits @ entries.q))
        change = self.monitor.observe(state.embedding, state.episode_id, case_ids, reward, stats)
        if change is None:
            return
        # The entries are running means, with no timeline to cut at the change's start: they all go.
        around = self._candidates(state, self.config.candidates, namespace)
        forget = sorted(({c.id for c in around.cases} | change.case_ids) & set(self.entries))
        self.bank.delete_episodic_entries(self.config.name, forget)
        for case_id in forget:
            del self.entries[case_id]
        self.monitor.reset(forget)
        self.changes += 1

    def _plan(self, case_id: str, state: np.ndarray, target: float) -> tuple[str, int | None, float, int]:
        """(case id, entry row to update or None to add, new Q, new visit count)."""
        entries = self.entries.get(case_id)
        if entries is None:
            return case_id, None, target, 1
        similarities = entries.states @ state
        nearest = int(np.argmax(similarities))
        full = len(entries.ids) >= self.config.max_entries_per_case
        if similarities[nearest] < self.config.merge_similarity and not full:
            return case_id, None, target, 1
        visits = int(entries.visits[nearest]) + 1
        q = float(entries.q[nearest] + (target - entries.q[nearest]) * max(1.0 / visits, self.config.min_step))
        return case_id, int(entries.ids[nearest]), q, visits

    def _apply(self, case_id: str, row: int, state: np.ndarray, q: float, visits: int) -> None:
        entries = self.entries.get(case_id)
        if entries is not None and row in entries.ids:
            at = int(np.flatnonzero(entries.ids == row)[0])
            entries.q[at], entries.visits[at] = q, visits
            return
        new = _Entries(np.array([row]), state[None].copy(), np.array([q]), np.array([visits]))
        if entries is None:
            self.entries[case_id] = new
            return
        self.entries[case_id] = _Entries(*(np.concatenate([old, fresh]) for old, fresh in
                                           zip((entries.ids, entries.states, entries.q, entries.visits),
                                               (new.ids, new.states, new.q, new.visits))))

    def update(self) -> dict[str, float]:
        """Nothing to do: entries are updated as outcomes are recorded. Returns the table's size."""
        self._bank()
        return {"charts/entries": float(sum(len(e.ids) for e in self.entries.values())),
                "charts/cases_with_entries": float(len(self.entries)), "charts/changes_detected": float(self.changes)}

    def summary(self) -> dict[str, Any]:
        """How many entries the policy holds, and for how many cases."""
        metrics = self.update()
        return {"step": self.step, "entries": int(metrics["charts/entries"]),
                "cases_with_entries": int(metrics["charts/cases_with_entries"])}

    def usefulness(self, cases: Sequence[Case]) -> np.ndarray:
        """Each case's visit-weighted mean Q over its entries (`prior_q` for a case never shown)."""
        values = np.full(len(cases), self.config.prior_q, dtype=np.float64)
        for i, case in enumerate(cases):
            entries = self.entries.get(case.id)
            if entries is not None:
                values[i] = float(entries.visits @ entries.q / entries.visits.sum())
        return values


def _logsumexp(values: np.ndarray) -> float:
    top = float(np.max(values))
    return top + math.log(float(np.sum(np.exp(values - top))))
