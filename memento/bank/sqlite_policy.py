"""What policies and the agent keep in a SQLite bank's file: replay, statistics, entries, checkpoints, traces.

The tables sit beside `cases` in the bank's file and are created on first use, so a bank no
policy ever learned on has none of them. Every write runs in `CaseBank.write_transaction()`
(the bank's thread and cross-process locks, BEGIN IMMEDIATE ... COMMIT), so a failed write
leaves nothing behind and writers in several processes never lose one another's rows.
Arrays are stored as float32 blobs; their shapes come back from the ids beside them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from memento.bank.arguments import check_page
from memento.bank.interface import TRACE_FIELDS, EpisodicEntry, PolicyState, ReplayRow
from memento.errors import NotFoundError, ValidationError

REPLAY_TABLE = "policy_replay"
STATS_TABLE = "policy_case_stats"
ENTRIES_TABLE = "policy_ec_entries"
EPISODES_TABLE = "policy_ec_episodes"
CHECKPOINTS_TABLE = "policy_checkpoints"
TRACE_TABLE = "agent_traces"

POLICY_SCHEMA = f"""
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
CREATE TABLE IF NOT EXISTS {ENTRIES_TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    policy TEXT NOT NULL,
    case_id TEXT NOT NULL,
    state BLOB NOT NULL,
    q REAL NOT NULL,
    visits INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS {ENTRIES_TABLE}_policy ON {ENTRIES_TABLE} (policy, case_id);
CREATE TABLE IF NOT EXISTS {EPISODES_TABLE} (
    policy TEXT NOT NULL,
    episode_id TEXT NOT NULL,
    PRIMARY KEY (policy, episode_id)
);
CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} (
    policy TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (policy, version)
);
CREATE TABLE IF NOT EXISTS {TRACE_TABLE} (
    episode_id TEXT PRIMARY KEY,
    case_id TEXT,
    task TEXT NOT NULL,
    reward REAL,
    created_at TEXT NOT NULL,
    trace TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {TRACE_TABLE}_created_at ON {TRACE_TABLE} (created_at);
"""

REPLAY_COLUMNS = ("id, policy, episode_id, state, case_ids, case_features, reward, done, next_state, next_ids, "
                  "next_features, created_at")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def blob(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float32).tobytes()


def unblob(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32).copy()


def features(array: np.ndarray | None, rows: int, n_features: int) -> np.ndarray:
    """A stored feature matrix with `rows` rows (an empty one for None); n_features -1: as wide as stored."""
    if n_features < 0:
        n_features = array.size // rows if array is not None and rows else 0
    if array is None:
        return np.zeros((0, n_features), dtype=np.float32)
    return np.asarray(array, dtype=np.float32).reshape(rows, n_features)


class SQLitePolicyTables:
    """Mixed into `CaseBank`: the policy-storage and trace methods of the `Bank` interface."""

    _policy_tables_ready = False

    def _policy_tables(self):
        """The bank's connection, with the policy and trace tables created if they are not there yet."""
        if not self._policy_tables_ready:
            with self._lock, self._file_lock:
                self.db.conn.executescript(POLICY_SCHEMA)
            self._policy_tables_ready = True
        return self.db.conn

    def _policy_write(self):
        self._policy_tables()
        return self.write_transaction()

    # -- replay and statistics ------------------------------------------------------------------

    def append_replay(self, row: ReplayRow, *, drop_row_id: int | None = None) -> int:
        """Store a step, count its cases as shown, and drop `drop_row_id`, in one transaction; returns the row id."""
        with self._policy_write() as conn:
            cursor = conn.execute(
                f"INSERT INTO {REPLAY_TABLE} (policy, episode_id, state, case_ids, case_features, reward, done, "
                f"next_state, next_ids, next_features, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row.policy, *_replay_values(row)))
            conn.executemany(
                f"INSERT INTO {STATS_TABLE} (policy, case_id, shown, reward_sum) VALUES (?, ?, 1, ?) "
                f"ON CONFLICT (policy, case_id) DO UPDATE SET shown = shown + 1, reward_sum = reward_sum + excluded.reward_sum",
                [(row.policy, case_id, float(row.reward)) for case_id in row.case_ids])
            if drop_row_id is not None:
                conn.execute(f"DELETE FROM {REPLAY_TABLE} WHERE id = ? AND policy = ?", (drop_row_id, row.policy))
        return int(cursor.lastrowid)

    def replay_rows(self, policy: str, *, limit: int, n_features: int) -> list[ReplayRow]:
        """The newest `limit` steps of `policy`, oldest first."""
        conn = self._policy_tables()
        with self._lock:
            rows = conn.execute(f"SELECT {REPLAY_COLUMNS} FROM {REPLAY_TABLE} WHERE policy = ? ORDER BY id DESC LIMIT ?",
                                (policy, int(limit))).fetchall()
        rows.reverse()
        return [replay_row(r, n_features) for r in rows]

    def case_stats(self, policy: str) -> dict[str, tuple[int, float]]:
        """case id -> (times shown, sum of the rewards it was shown with)."""
        conn = self._policy_tables()
        with self._lock:
            rows = conn.execute(f"SELECT case_id, shown, reward_sum FROM {STATS_TABLE} WHERE policy = ?", (policy,)).fetchall()
        return {case_id: (int(shown), float(total)) for case_id, shown, total in rows}

    def forget_replay(self, policy: str, *, row_ids: Iterable[int], case_ids: Iterable[str],
                      stats: Mapping[str, tuple[int, float]] | None = None) -> None:
        """Delete these steps and these cases' statistics, then store `stats` as new ones, in one transaction."""
        with self._policy_write() as conn:
            conn.executemany(f"DELETE FROM {REPLAY_TABLE} WHERE id = ? AND policy = ?", [(int(i), policy) for i in row_ids])
            conn.executemany(f"DELETE FROM {STATS_TABLE} WHERE policy = ? AND case_id = ?",
                             [(policy, case_id) for case_id in sorted(set(case_ids))])
            conn.executemany(f"INSERT OR REPLACE INTO {STATS_TABLE} (policy, case_id, shown, reward_sum) VALUES (?, ?, ?, ?)",
                             [(policy, case_id, int(shown), float(total)) for case_id, (shown, total) in sorted((stats or {}).items())])

    # -- episodic entries -----------------------------------------------------------------------

    def episodic_entries(self, policy: str) -> list[EpisodicEntry]:
        """Every entry of `policy`, in the order they were added."""
        conn = self._policy_tables()
        with self._lock:
            rows = conn.execute(f"SELECT id, case_id, state, q, visits FROM {ENTRIES_TABLE} WHERE policy = ? ORDER BY id",
                                (policy,)).fetchall()
        return [episodic_entry(r) for r in rows]

    def write_episodic_entries(self, policy: str, entries: Sequence[EpisodicEntry], *,
                               episode_id: str | None = None) -> list[int]:
        """Insert new entries (row_id 0), overwrite q and visits of stored ones, and note `episode_id` as
        recorded, in one transaction; returns the entries' row ids."""
        ids = []
        with self._policy_write() as conn:
            if episode_id is not None:
                conn.execute(f"INSERT OR IGNORE INTO {EPISODES_TABLE} (policy, episode_id) VALUES (?, ?)",
                             (policy, str(episode_id)))
            for entry in entries:
                if entry.row_id:
                    conn.execute(f"UPDATE {ENTRIES_TABLE} SET q = ?, visits = ? WHERE id = ? AND policy = ?",
                                 (float(entry.q), int(entry.visits), int(entry.row_id), policy))
                    ids.append(int(entry.row_id))
                else:
                    ids.append(int(conn.execute(
                        f"INSERT INTO {ENTRIES_TABLE} (policy, case_id, state, q, visits) VALUES (?, ?, ?, ?, ?)",
                        (policy, entry.case_id, blob(entry.state), float(entry.q), int(entry.visits))).lastrowid))
        return ids

    def episodic_recorded(self, policy: str, episode_id: str) -> bool:
        """Whether `write_episodic_entries` noted `episode_id` for `policy`."""
        conn = self._policy_tables()
        with self._lock:
            row = conn.execute(f"SELECT 1 FROM {EPISODES_TABLE} WHERE policy = ? AND episode_id = ?",
                               (policy, str(episode_id))).fetchone()
        return row is not None

    def episodic_episodes(self, policy: str) -> list[str]:
        """Every episode id noted for `policy`, sorted (what `memento bank copy` moves)."""
        conn = self._policy_tables()
        with self._lock:
            rows = conn.execute(f"SELECT episode_id FROM {EPISODES_TABLE} WHERE policy = ? ORDER BY episode_id",
                                (policy,)).fetchall()
        return [r[0] for r in rows]

    def delete_episodic_entries(self, policy: str, case_ids: Iterable[str]) -> None:
        """Delete every entry of these cases."""
        with self._policy_write() as conn:
            conn.executemany(f"DELETE FROM {ENTRIES_TABLE} WHERE policy = ? AND case_id = ?",
                             [(policy, case_id) for case_id in sorted(set(case_ids))])

    # -- checkpoints ----------------------------------------------------------------------------

    def save_checkpoint(self, policy: str, data: bytes) -> int:
        """Store a new version of `policy`'s weights; returns its version (1, 2, ...)."""
        with self._policy_write() as conn:
            version = conn.execute(f"SELECT coalesce(max(version), 0) + 1 FROM {CHECKPOINTS_TABLE} WHERE policy = ?",
                                   (policy,)).fetchone()[0]
            conn.execute(f"INSERT INTO {CHECKPOINTS_TABLE} (policy, version, created_at, data) VALUES (?, ?, ?, ?)",
                         (policy, version, now_iso(), bytes(data)))
        return int(version)

    def load_checkpoint(self, policy: str, *, newer_than: int = 0, version: int | None = None) -> tuple[int, bytes] | None:
        """(version, bytes) of the newest checkpoint of `policy` (or of `version`) newer than `newer_than`, else None."""
        conn = self._policy_tables()
        exact = "" if version is None else " AND version = ?"
        with self._lock:
            row = conn.execute(f"SELECT version, data FROM {CHECKPOINTS_TABLE} WHERE policy = ? AND version > ?{exact} "
                               f"ORDER BY version DESC LIMIT 1",
                               (policy, int(newer_than), *(() if version is None else (int(version),)))).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def checkpoint_versions(self, policy: str) -> list[int]:
        """The stored checkpoint versions of `policy`, oldest first."""
        conn = self._policy_tables()
        with self._lock:
            rows = conn.execute(f"SELECT version FROM {CHECKPOINTS_TABLE} WHERE policy = ? ORDER BY version",
                                (policy,)).fetchall()
        return [int(r[0]) for r in rows]

    def restore_policy(self, state: PolicyState) -> None:
        """Write a policy's records as they are, in one transaction (see `Bank.restore_policy`)."""
        if state.policy in self.policy_names():
            raise ValidationError(f"policy {state.policy!r} already keeps records in bank '{self.path}'; "
                                  f"restore into a bank without them")
        with self._policy_write() as conn:
            conn.executemany(
                f"INSERT INTO {REPLAY_TABLE} (policy, episode_id, state, case_ids, case_features, reward, done, "
                f"next_state, next_ids, next_features, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(state.policy, *_replay_values(row)) for row in state.replay])
            conn.executemany(f"INSERT INTO {STATS_TABLE} (policy, case_id, shown, reward_sum) VALUES (?, ?, ?, ?)",
                             [(state.policy, c, int(n), float(total)) for c, (n, total) in state.stats.items()])
            conn.executemany(f"INSERT INTO {ENTRIES_TABLE} (policy, case_id, state, q, visits) VALUES (?, ?, ?, ?, ?)",
                             [(state.policy, e.case_id, blob(e.state), float(e.q), int(e.visits)) for e in state.entries])
            conn.executemany(f"INSERT INTO {CHECKPOINTS_TABLE} (policy, version, created_at, data) VALUES (?, ?, ?, ?)",
                             [(state.policy, int(v), now_iso(), bytes(data)) for v, data in state.checkpoints])
            conn.executemany(f"INSERT INTO {EPISODES_TABLE} (policy, episode_id) VALUES (?, ?)",
                             [(state.policy, episode_id) for episode_id in state.episodes])

    def policy_names(self) -> list[str]:
        """Names of the policies that keep anything in this bank."""
        conn = self._policy_tables()
        with self._lock:
            rows = conn.execute(" UNION ".join(f"SELECT DISTINCT policy FROM {t}" for t in
                                               (REPLAY_TABLE, STATS_TABLE, ENTRIES_TABLE, EPISODES_TABLE, CHECKPOINTS_TABLE))
                                + " ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    # -- traces ---------------------------------------------------------------------------------

    def save_trace(self, trace: dict[str, Any]) -> None:
        """Insert or replace the trace of `trace["episode_id"]`."""
        row = (trace["episode_id"], trace.get("case_id"), trace.get("task", ""), trace.get("reward"),
               trace.get("created_at") or now_iso(), json.dumps(trace, ensure_ascii=False, default=str))
        with self._policy_write() as conn:
            conn.execute(f"INSERT OR REPLACE INTO {TRACE_TABLE} VALUES (?, ?, ?, ?, ?, ?)", row)

    def get_trace(self, episode_id: str) -> dict[str, Any]:
        """The trace of one episode; NotFoundError if there is none."""
        conn = self._policy_tables()
        with self._lock:
            row = conn.execute(f"SELECT trace FROM {TRACE_TABLE} WHERE episode_id = ?", [episode_id]).fetchone()
        if row is None:
            raise NotFoundError(f"no trace for episode {episode_id!r} in '{self.path}'; list them with list_traces(bank)")
        return json.loads(row[0])

    def list_traces(self, *, limit: int | None = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first: {"episode_id", "case_id", "task", "reward", "created_at"} per episode (limit None: all)."""
        limit, offset = check_page(limit, offset)
        conn = self._policy_tables()
        with self._lock:
            rows = conn.execute(f"SELECT {', '.join(TRACE_FIELDS)} FROM {TRACE_TABLE} "
                                f"ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                                [-1 if limit is None else limit, offset]).fetchall()
        return [dict(zip(TRACE_FIELDS, row)) for row in rows]


def replay_row(row: Sequence[Any], n_features: int, ids=lambda stored: tuple(json.loads(stored))) -> ReplayRow:
    """A ReplayRow from a row selected as REPLAY_COLUMNS; `ids` decodes a stored id list (JSON text here)."""
    (row_id, policy, episode_id, state, case_ids, case_features, reward, done, next_state, next_ids,
     next_features, created_at) = row
    case_ids, next_ids = ids(case_ids), ids(next_ids)
    return ReplayRow(
        policy=policy, episode_id=episode_id, state=unblob(state), case_ids=case_ids,
        case_features=features(unblob(case_features), len(case_ids), n_features), reward=float(reward),
        done=bool(done), next_state=None if next_state is None else unblob(next_state), next_ids=next_ids,
        next_features=features(unblob(next_features), len(next_ids), n_features), created_at=created_at,
        row_id=int(row_id))


def episodic_entry(row: Sequence[Any]) -> EpisodicEntry:
    """An EpisodicEntry from a row (id, case_id, state, q, visits)."""
    row_id, case_id, state, q, visits = row
    return EpisodicEntry(case_id=case_id, state=unblob(state), q=float(q), visits=int(visits), row_id=int(row_id))


def _replay_values(row: ReplayRow) -> tuple:
    """A replay row's stored values after its policy, in REPLAY_COLUMNS order."""
    return (row.episode_id, blob(row.state), json.dumps(list(row.case_ids)), blob(row.case_features),
            float(row.reward), int(row.done), None if row.next_state is None else blob(row.next_state),
            json.dumps(list(row.next_ids)), b"" if row.next_features is None else blob(row.next_features),
            row.created_at or now_iso())
