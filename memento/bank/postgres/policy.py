"""What policies and the agent keep in a PostgreSQL bank: replay, statistics, entries, checkpoints, traces.

The same records and rules as the SQLite tables (`memento.bank.sqlite_policy`), created with the
bank. Each write is one transaction; statistics are counted with an atomic upsert and checkpoint
versions under a per-policy advisory lock, so many workers and a learner share them without
losing an update.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence


from memento.bank.arguments import check_page
from memento.bank.interface import TRACE_FIELDS, EpisodicEntry, PolicyState, ReplayRow
from memento.bank.sqlite_policy import REPLAY_COLUMNS, blob, episodic_entry, now_iso, replay_row
from memento.errors import NotFoundError, ValidationError

INSERT_REPLAY = ("INSERT INTO policy_replay (policy, episode_id, state, case_ids, case_features, reward, done, "
                 "next_state, next_ids, next_features, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


def _replay_values(row: ReplayRow) -> tuple:
    return (row.policy, row.episode_id, blob(row.state), list(row.case_ids), blob(row.case_features),
            float(row.reward), bool(row.done), None if row.next_state is None else blob(row.next_state),
            list(row.next_ids), b"" if row.next_features is None else blob(row.next_features),
            row.created_at or now_iso())


class PostgresPolicyTables:
    """Mixed into `PostgresBank`: the policy-storage and trace methods of the `Bank` interface."""

    def append_replay(self, row: ReplayRow, *, drop_row_id: int | None = None) -> int:
        """Store a step, count its cases as shown, and drop `drop_row_id`, in one transaction; returns the row id."""
        with self._transaction() as conn:
            row_id = conn.execute(INSERT_REPLAY + " RETURNING id", _replay_values(row)).fetchone()[0]
            conn.cursor().executemany(
                "INSERT INTO policy_case_stats (policy, case_id, shown, reward_sum) VALUES (%s, %s, 1, %s) "
                "ON CONFLICT (policy, case_id) DO UPDATE SET shown = policy_case_stats.shown + 1, "
                "reward_sum = policy_case_stats.reward_sum + excluded.reward_sum",
                [(row.policy, case_id, float(row.reward)) for case_id in row.case_ids])
            if drop_row_id is not None:
                conn.execute("DELETE FROM policy_replay WHERE id = %s AND policy = %s", (drop_row_id, row.policy))
        return int(row_id)

    def replay_rows(self, policy: str, *, limit: int, n_features: int) -> list[ReplayRow]:
        """The newest `limit` steps of `policy`, oldest first."""
        with self._transaction() as conn:
            rows = conn.execute(f"SELECT {REPLAY_COLUMNS} FROM policy_replay WHERE policy = %s ORDER BY id DESC LIMIT %s",
                                (policy, int(limit))).fetchall()
        rows.reverse()
        return [replay_row(r, n_features, ids=tuple) for r in rows]  # text[] arrives as a list

    def case_stats(self, policy: str) -> dict[str, tuple[int, float]]:
        """case id -> (times shown, sum of the rewards it was shown with)."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT case_id, shown, reward_sum FROM policy_case_stats WHERE policy = %s",
                                (policy,)).fetchall()
        return {case_id: (int(shown), float(total)) for case_id, shown, total in rows}

    def forget_replay(self, policy: str, *, row_ids: Iterable[int], case_ids: Iterable[str],
                      stats: Mapping[str, tuple[int, float]] | None = None) -> None:
        """Delete these steps and these cases' statistics, then store `stats` as new ones, in one transaction."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM policy_replay WHERE policy = %s AND id = ANY(%s)", (policy, [int(i) for i in row_ids]))
            conn.execute("DELETE FROM policy_case_stats WHERE policy = %s AND case_id = ANY(%s)",
                         (policy, sorted(set(case_ids))))
            for case_id, (shown, total) in sorted((stats or {}).items()):
                conn.execute("INSERT INTO policy_case_stats (policy, case_id, shown, reward_sum) VALUES (%s, %s, %s, %s) "
                             "ON CONFLICT (policy, case_id) DO UPDATE SET shown = excluded.shown, reward_sum = excluded.reward_sum",
                             (policy, case_id, int(shown), float(total)))

    def episodic_entries(self, policy: str) -> list[EpisodicEntry]:
        """Every entry of `policy`, in the order they were added."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT id, case_id, state, q, visits FROM policy_ec_entries WHERE policy = %s ORDER BY id",
                                (policy,)).fetchall()
        return [episodic_entry(r) for r in rows]

    def write_episodic_entries(self, policy: str, entries: Sequence[EpisodicEntry], *,
                               episode_id: str | None = None) -> list[int]:
        """Insert new entries (row_id 0), overwrite q and visits of stored ones, and note `episode_id` as
        recorded, in one transaction; returns the entries' row ids."""
        ids = []
        with self._transaction() as conn:
            if episode_id is not None:
                conn.execute("INSERT INTO policy_ec_episodes (policy, episode_id) VALUES (%s, %s) "
                             "ON CONFLICT DO NOTHING", (policy, str(episode_id)))
            for entry in entries:
                if entry.row_id:
                    conn.execute("UPDATE policy_ec_entries SET q = %s, visits = %s WHERE id = %s AND policy = %s",
                                 (float(entry.q), int(entry.visits), int(entry.row_id), policy))
                    ids.append(int(entry.row_id))
                else:
                    ids.append(int(conn.execute(
                        "INSERT INTO policy_ec_entries (policy, case_id, state, q, visits) VALUES (%s, %s, %s, %s, %s) "
                        "RETURNING id", (policy, entry.case_id, blob(entry.state), float(entry.q), int(entry.visits))
                    ).fetchone()[0]))
        return ids

    def episodic_recorded(self, policy: str, episode_id: str) -> bool:
        """Whether `write_episodic_entries` noted `episode_id` for `policy`."""
        with self._transaction() as conn:
            row = conn.execute("SELECT 1 FROM policy_ec_episodes WHERE policy = %s AND episode_id = %s",
                               (policy, str(episode_id))).fetchone()
        return row is not None

    def episodic_episodes(self, policy: str) -> list[str]:
        """Every episode id noted for `policy`, sorted by code point (what `memento bank copy` moves)."""
        with self._transaction() as conn:
            rows = conn.execute('SELECT episode_id FROM policy_ec_episodes WHERE policy = %s '
                                'ORDER BY episode_id COLLATE "C"', (policy,)).fetchall()
        return [r[0] for r in rows]

    def delete_episodic_entries(self, policy: str, case_ids: Iterable[str]) -> None:
        """Delete every entry of these cases."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM policy_ec_entries WHERE policy = %s AND case_id = ANY(%s)",
                         (policy, sorted(set(case_ids))))

    def save_checkpoint(self, policy: str, data: bytes) -> int:
        """Store a new version of `policy`'s weights; returns its version (1, 2, ...)."""
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"memento-checkpoint:{self.schema}:{policy}"])
            version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM policy_checkpoints WHERE policy = %s",
                                   (policy,)).fetchone()[0]
            conn.execute("INSERT INTO policy_checkpoints (policy, version, created_at, data) VALUES (%s, %s, %s, %s)",
                         (policy, version, now_iso(), bytes(data)))
        return int(version)

    def load_checkpoint(self, policy: str, *, newer_than: int = 0, version: int | None = None) -> tuple[int, bytes] | None:
        """(version, bytes) of the newest checkpoint of `policy` (or of `version`) newer than `newer_than`, else None."""
        with self._transaction() as conn:
            row = conn.execute("SELECT version, data FROM policy_checkpoints WHERE policy = %s AND version > %s "
                               "AND (%s::bigint IS NULL OR version = %s::bigint) ORDER BY version DESC LIMIT 1",
                               (policy, int(newer_than), version, version)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def checkpoint_versions(self, policy: str) -> list[int]:
        """The stored checkpoint versions of `policy`, oldest first."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT version FROM policy_checkpoints WHERE policy = %s ORDER BY version",
                                (policy,)).fetchall()
        return [int(r[0]) for r in rows]

    def restore_policy(self, state: PolicyState) -> None:
        """Write a policy's records as they are, in one transaction (see `Bank.restore_policy`)."""
        if state.policy in self.policy_names():
            raise ValidationError(f"policy {state.policy!r} already keeps records in bank '{self.path}'; "
                                  f"restore into a bank without them")
        with self._transaction() as conn:
            cursor = conn.cursor()
            cursor.executemany(INSERT_REPLAY, [_replay_values(row) for row in state.replay])
            cursor.executemany("INSERT INTO policy_case_stats (policy, case_id, shown, reward_sum) VALUES (%s, %s, %s, %s)",
                               [(state.policy, c, int(n), float(total)) for c, (n, total) in state.stats.items()])
            cursor.executemany("INSERT INTO policy_ec_entries (policy, case_id, state, q, visits) VALUES (%s, %s, %s, %s, %s)",
                               [(state.policy, e.case_id, blob(e.state), float(e.q), int(e.visits)) for e in state.entries])
            cursor.executemany("INSERT INTO policy_checkpoints (policy, version, created_at, data) VALUES (%s, %s, %s, %s)",
                               [(state.policy, int(v), now_iso(), bytes(data)) for v, data in state.checkpoints])
            cursor.executemany("INSERT INTO policy_ec_episodes (policy, episode_id) VALUES (%s, %s)",
                               [(state.policy, episode_id) for episode_id in state.episodes])

    def policy_names(self) -> list[str]:
        """Names of the policies that keep anything in this bank."""
        with self._transaction() as conn:
            rows = conn.execute(" UNION ".join(f"SELECT policy FROM {t}" for t in (
                "policy_replay", "policy_case_stats", "policy_ec_entries", "policy_ec_episodes", "policy_checkpoints")) + " ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def save_trace(self, trace: dict[str, Any]) -> None:
        """Insert or replace the trace of `trace["episode_id"]`."""
        row = (trace["episode_id"], trace.get("case_id"), trace.get("task", ""), trace.get("reward"),
               trace.get("created_at") or now_iso(), json.dumps(trace, ensure_ascii=False, default=str))
        with self._transaction() as conn:
            conn.execute("INSERT INTO agent_traces (episode_id, case_id, task, reward, created_at, trace) "
                         "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (episode_id) DO UPDATE SET seq = DEFAULT, "
                         "case_id = excluded.case_id, task = excluded.task, reward = excluded.reward, "
                         "created_at = excluded.created_at, trace = excluded.trace", row)

    def get_trace(self, episode_id: str) -> dict[str, Any]:
        """The trace of one episode; NotFoundError if there is none."""
        with self._transaction() as conn:
            row = conn.execute("SELECT trace FROM agent_traces WHERE episode_id = %s", [episode_id]).fetchone()
        if row is None:
            raise NotFoundError(f"no trace for episode {episode_id!r} in '{self.path}'; list them with list_traces(bank)")
        return json.loads(row[0])

    def list_traces(self, *, limit: int | None = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first: {"episode_id", "case_id", "task", "reward", "created_at"} per episode (limit None: all)."""
        limit, offset = check_page(limit, offset)
        with self._transaction() as conn:
            rows = conn.execute(f"SELECT {', '.join(TRACE_FIELDS)} FROM agent_traces "
                                f"ORDER BY created_at DESC, seq DESC LIMIT %s OFFSET %s", [limit, offset]).fetchall()
        return [dict(zip(TRACE_FIELDS, row)) for row in rows]
