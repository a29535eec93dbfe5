"""A learned policy's memory of its own episodes, kept in the bank's SQLite file.

Two tables, both keyed by the policy's name so that several policies can learn on one bank:

- `policy_replay`: one row per recorded step: the state embedding, the ids of the cases shown and
  their features at that time, the reward, and for a multi-step episode the next state with its
  candidate cases (so a soft Bellman target can be computed later without searching again).
- `policy_case_stats`: per case, how often it was shown and the reward it was shown with.

Both are mirrored in memory when the policy binds to the bank, so sampling a minibatch costs
no SQL. Sampling can favour recent steps (`recent`), so that a change in the world shows up in
the minibatches within a few episodes instead of being diluted by the whole history; `forget`
drops every step and statistic about some cases, for when a policy detects that what it knew
about them no longer holds. Case vectors are not duplicated in the table: they come from the bank, and a step that
showed a case deleted since is dropped from the mirror (the row stays until it ages out).
One process should learn on a bank at a time: a second process does not see the first one's
new rows until it rebinds.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import numpy as np

from memento.errors import NotFoundError
from policies.base import policy_transaction

REPLAY_TABLE = "policy_replay"
STATS_TABLE = "policy_case_stats"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {REPLAY_TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    policy TEXT NOT NULL,
    episode_id TEXT NOT NULL,
    state BLOB NOT NULL,
    case_ids TEXT NOT NULL,
    case_features BLOB NOT NULL,
    reward REAL NOT NULL,
    done INTEGER NOT NULL,
    next_state BLOB,
    next_ids TEXT NOT NULL,
    next_features BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {REPLAY_TABLE}_policy ON {REPLAY_TABLE} (policy, id);
CREATE TABLE IF NOT EXISTS {STATS_TABLE} (
    policy TEXT NOT NULL,
    case_id TEXT NOT NULL,
    shown INTEGER NOT NULL,
    reward_sum REAL NOT NULL,
    PRIMARY KEY (policy, case_id)
);
"""


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
    """The last `capacity` transitions of one policy: in SQLite for restarts, in memory for speed."""

    def __init__(self, bank: Any, policy: str, n_features: int, capacity: int):
        self.bank = bank
        self.policy = policy
        self.n_features = n_features
        self.capacity = capacity
        self.transitions: deque[Transition] = deque()
        self.stats: dict[str, tuple[int, float]] = {}
        """case id -> (times shown, sum of the rewards it was shown with)."""
        self.state_sums: dict[str, np.ndarray] = {}
        """case id -> sum of the states it was shown for, over the steps in the buffer (where its evidence comes from)."""
        bank.db.conn.executescript(SCHEMA)
        self._load()

    def __len__(self) -> int:
        return len(self.transitions)

    def add(self, transition: Transition) -> None:
        """Store a transition and count its cases as shown, in one SQLite transaction."""
        dropped = self.transitions[0] if len(self.transitions) >= self.capacity else None
        with policy_transaction(self.bank) as conn:
            cursor = conn.execute(
                f"INSERT INTO {REPLAY_TABLE} (policy, episode_id, state, case_ids, case_features, reward, done, "
                f"next_state, next_ids, next_features, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.policy, transition.episode_id, _blob(transition.state), json.dumps(transition.case_ids),
                    _blob(transition.case_features), transition.reward, int(transition.done),
                    None if transition.next_state is None else _blob(transition.next_state),
                    json.dumps(transition.next_ids), _blob(_or_empty(transition.next_features, self.n_features)),
                    datetime.now(timezone.utc).isoformat(),
                ),
            )
            conn.executemany(
                f"INSERT INTO {STATS_TABLE} (policy, case_id, shown, reward_sum) VALUES (?, ?, 1, ?) "
                f"ON CONFLICT (policy, case_id) DO UPDATE SET shown = shown + 1, reward_sum = reward_sum + excluded.reward_sum",
                [(self.policy, case_id, transition.reward) for case_id in transition.case_ids],
            )
            if dropped is not None:
                conn.execute(f"DELETE FROM {REPLAY_TABLE} WHERE id = ?", (dropped.row_id,))
        if dropped is not None:
            self.transitions.popleft()
        self.transitions.append(replace(transition, row_id=int(cursor.lastrowid)))
        if dropped is not None:
            self._count_states(dropped, -1.0)
        self._count_states(transition, 1.0)
        for case_id in transition.case_ids:
            shown, total = self.stats.get(case_id, (0, 0.0))
            self.stats[case_id] = (shown + 1, total + transition.reward)

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

    def forget(self, case_ids: Iterable[str]) -> int:
        """Delete every step that showed one of `case_ids`, and their statistics; returns the steps dropped."""
        gone = set(case_ids)
        dropped = [t for t in self.transitions if gone.intersection(t.case_ids)]
        with policy_transaction(self.bank) as conn:
            conn.executemany(f"DELETE FROM {REPLAY_TABLE} WHERE id = ?", [(t.row_id,) for t in dropped])
            conn.executemany(f"DELETE FROM {STATS_TABLE} WHERE policy = ? AND case_id = ?",
                             [(self.policy, case_id) for case_id in sorted(gone)])
        if dropped:
            self.transitions = deque(t for t in self.transitions if not gone.intersection(t.case_ids))
        for transition in dropped:
            self._count_states(transition, -1.0)
        for case_id in gone:
            self.stats.pop(case_id, None)
            self.state_sums.pop(case_id, None)
        return len(dropped)

    # -- loading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        conn = self.bank.db.conn
        self.stats = {
            case_id: (int(shown), float(total))
            for case_id, shown, total in conn.execute(
                f"SELECT case_id, shown, reward_sum FROM {STATS_TABLE} WHERE policy = ?", (self.policy,)
            )
        }
        rows = conn.execute(
            f"SELECT id, episode_id, state, case_ids, case_features, reward, done, next_state, next_ids, next_features "
            f"FROM {REPLAY_TABLE} WHERE policy = ? ORDER BY id DESC LIMIT ?",
            (self.policy, self.capacity),
        ).fetchall()
        rows.reverse()
        needed = {case_id for row in rows for case_id in json.loads(row[3]) + json.loads(row[8])}
        vectors = self._vectors(needed)
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

    def _transition(self, row: Sequence[Any], vectors: dict[str, np.ndarray]) -> Transition | None:
        row_id, episode_id, state, case_ids, case_features, reward, done, next_state, next_ids, next_features = row
        case_ids = tuple(json.loads(case_ids))
        if any(case_id not in vectors for case_id in case_ids):
            return None
        next_ids = tuple(json.loads(next_ids))
        next_features = _unblob(next_features).reshape(len(next_ids), self.n_features)
        kept = [i for i, case_id in enumerate(next_ids) if case_id in vectors]
        dim = len(_unblob(state))
        return Transition(
            state=_unblob(state),
            case_ids=case_ids,
            case_vectors=_stack([vectors[c] for c in case_ids], dim),
            case_features=_unblob(case_features).reshape(len(case_ids), self.n_features),
            reward=float(reward),
            done=bool(done),
            next_state=None if next_state is None else _unblob(next_state),
            next_ids=tuple(next_ids[i] for i in kept),
            next_vectors=_stack([vectors[next_ids[i]] for i in kept], dim),
            next_features=next_features[kept],
            episode_id=episode_id,
            row_id=int(row_id),
        )


def _blob(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float32).tobytes()


def _unblob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).copy()


def _or_empty(array: np.ndarray | None, width: int) -> np.ndarray:
    return np.zeros((0, width), dtype=np.float32) if array is None else array


def _stack(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    if not vectors:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack(vectors).astype(np.float32, copy=False)
