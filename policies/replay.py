"""A learned policy's memory of its own episodes, kept in its bank (`Bank.append_replay` and friends).

Two kinds of record, both keyed by the policy's name so that several policies can learn on one bank:

- the replay rows: one per recorded step: the state embedding, the ids of the cases shown and
  their features at that time, the reward, and for a multi-step episode the next state with its
  candidate cases (so a soft Bellman target can be computed later without searching again).
- the case statistics: per case, how often it was shown and the reward it was shown with.

Both are mirrored in memory when the policy binds to the bank, so sampling a minibatch costs
no query. Sampling can favour recent steps (`recent`), so that a change in the world shows up in
the minibatches within a few episodes instead of being diluted by the whole history; `forget`
drops every step and statistic about some cases, for when a policy detects that what it knew
about them no longer holds. Case vectors are not duplicated in the rows: they come from the bank, and a step that
showed a case deleted since is dropped from the mirror (the row stays until it ages out).
One process should learn on a bank at a time: a second process does not see the first one's
new rows until it rebinds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np

from memento.bank import Bank, ReplayRow
from memento.bank.sqlite_policy import REPLAY_TABLE, STATS_TABLE  # noqa: F401  (the SQLite tables' names, for tests)
from memento.errors import NotFoundError


@dataclass(frozen=True)
class Transition:
    """One recorded step: the cases shown for a state, their reward, and what followed."""

    state: np.ndarray
    case_ids: tuple[str, ...]
    case_vectors: np.ndarray
    """(shown, dim) embeddings of the shown cases."""
    case_features: np.ndarray
    """(shown, n_features) features the policy saw for the shown cases."""
    reward: float
    done: bool
    next_state: np.ndarray | None = None
    next_ids: tuple[str, ...] = ()
    next_vectors: np.ndarray | None = None
    """(candidates, dim) embeddings of the next state's candidate cases."""
    next_features: np.ndarray | None = None
    episode_id: str = ""
    row_id: int = 0


class ReplayBuffer:
    """The last `capacity` transitions of one policy: in the bank for restarts, in memory for speed."""

    def __init__(self, bank: Bank, policy: str, n_features: int, capacity: int):
        self.bank = bank
        self.policy = policy
        self.n_features = n_features
        self.capacity = capacity
        self.transitions: deque[Transition] = deque()
        self.stats: dict[str, tuple[int, float]] = {}
        """case id -> (times shown, sum of the rewards it was shown with)."""
        self.state_sums: dict[str, np.ndarray] = {}
        """case id -> sum of the states it was shown for, over the steps in the buffer (where its evidence comes from)."""
        self._load()

    def __len__(self) -> int:
        return len(self.transitions)

    def add(self, transition: Transition) -> None:
        """Store a transition and count its cases as shown, in one bank transaction."""
        dropped = self.transitions[0] if len(self.transitions) >= self.capacity else None
        row_id = self.bank.append_replay(
            ReplayRow(policy=self.policy, episode_id=transition.episode_id, state=transition.state,
                      case_ids=tuple(transition.case_ids), case_features=transition.case_features,
                      reward=float(transition.reward), done=bool(transition.done), next_state=transition.next_state,
                      next_ids=tuple(transition.next_ids), next_features=transition.next_features),
            drop_row_id=None if dropped is None else dropped.row_id)
        if dropped is not None:
            self.transitions.popleft()
        self.transitions.append(replace(transition, row_id=row_id))
        if dropped is not None:
            self._count_states(dropped, -1.0)
        self._count_states(transition, 1.0)
        _tally(self.stats, transition, transition.case_ids)

    def shown_where(self, case_id: str) -> np.ndarray | None:
        """The unit mean of the states `case_id` was shown for (None if no step in the buffer showed it)."""
        total = self.state_sums.get(case_id)
        if total is None:
            return None
        norm = float(np.linalg.norm(total))
        return total / norm if norm > 0 else None

    def _count_states(self, transition: Transition, sign: float) -> None:
        for case_id in transition.case_ids:
            total = self.state_sums.get(case_id)
            self.state_sums[case_id] = sign * transition.state if total is None else total + sign * transition.state

    def sample(self, n: int, rng: np.random.Generator, *, recent: int = 0, window: int = 0) -> list[Transition]:
        """`n` transitions drawn with replacement (all of them, in order, if fewer).

        `recent` of them come uniformly from the last `window` steps, the rest uniformly from all.
        """
        size = len(self.transitions)
        if size <= n:
            return list(self.transitions)
        recent = min(recent, n) if 0 < window < size else 0
        indices = rng.integers(0, size, size=n - recent)
        if recent:
            indices = np.concatenate([indices, rng.integers(size - window, size, size=recent)])
        return [self.transitions[i] for i in indices]

    def forget(self, case_ids: Iterable[str], *, before: int | None = None) -> int:
        """Delete the steps that showed one of `case_ids`, and their statistics; returns the steps dropped.

        With `before` (a row id) only the steps recorded before it go: the later ones stay, and
        the cases' statistics are counted again from them (those in the buffer: what aged out of
        it before the change is gone with the rest).
        """
        gone = set(case_ids)
        dropped = [t for t in self.transitions if gone.intersection(t.case_ids) and (before is None or t.row_id < before)]
        dropped_ids = {t.row_id for t in dropped}
        kept = deque(t for t in self.transitions if t.row_id not in dropped_ids)
        stats: dict[str, tuple[int, float]] = {}
        for transition in kept:  # without `before` none of them showed a forgotten case
            _tally(stats, transition, gone.intersection(transition.case_ids))
        self.bank.forget_replay(self.policy, row_ids=sorted(dropped_ids), case_ids=gone, stats=stats)
        self.transitions = kept
        for transition in dropped:
            self._count_states(transition, -1.0)
        for case_id in gone:
            self.stats.pop(case_id, None)
            if case_id not in stats:
                self.state_sums.pop(case_id, None)
        self.stats.update(stats)
        return len(dropped)

    # -- loading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        self.stats = self.bank.case_stats(self.policy)
        rows = self.bank.replay_rows(self.policy, limit=self.capacity, n_features=self.n_features)
        vectors = self._vectors({case_id for row in rows for case_id in row.case_ids + row.next_ids})
        for row in rows:
            transition = self._transition(row, vectors)
            if transition is not None:
                self.transitions.append(transition)
                self._count_states(transition, 1.0)

    def _vectors(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors of the cases still in the bank."""
        ids = sorted(ids)
        if not ids:
            return {}
        try:
            return dict(zip(ids, self.bank.vectors(ids)))
        except NotFoundError:
            present = {}
            for case_id in ids:
                try:
                    present[case_id] = self.bank.vectors([case_id])[0]
                except NotFoundError:
                    continue
            return present

    def _transition(self, row: ReplayRow, vectors: dict[str, np.ndarray]) -> Transition | None:
        """The stored step with its cases' current vectors; None if a case it showed was deleted since."""
        if any(case_id not in vectors for case_id in row.case_ids):
            return None
        kept = [i for i, case_id in enumerate(row.next_ids) if case_id in vectors]
        dim = len(row.state)
        return Transition(
            state=row.state,
            case_ids=row.case_ids,
            case_vectors=_stack([vectors[c] for c in row.case_ids], dim),
            case_features=row.case_features,
            reward=row.reward,
            done=row.done,
            next_state=row.next_state,
            next_ids=tuple(row.next_ids[i] for i in kept),
            next_vectors=_stack([vectors[row.next_ids[i]] for i in kept], dim),
            next_features=row.next_features[kept],
            episode_id=row.episode_id,
            row_id=row.row_id,
        )


def _tally(stats: dict[str, tuple[int, float]], transition: Transition, case_ids: Iterable[str]) -> None:
    """Count `transition` as one more show of each of `case_ids`, with its reward."""
    for case_id in case_ids:
        shown, total = stats.get(case_id, (0, 0.0))
        stats[case_id] = (shown + 1, total + transition.reward)


def _stack(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    if not vectors:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack(vectors).astype(np.float32, copy=False)
