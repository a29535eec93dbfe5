"""Episode traces: what the agent saw, did and spent, as one JSON object per episode.

Traces live in the `agent_traces` table of the bank's SQLite file (one row per episode, keyed by
episode id), written whether or not the episode learned; the case an episode wrote carries the
same `episode_id` in its metadata. The table is written through its own SQLite connection, so
trace writes never mix with the bank's or a policy's transactions.

    from memento.agent import list_traces, load_trace
    for row in list_traces(bank, limit=5):
        print(row["episode_id"], row["reward"], row["task"])
    trace = load_trace(bank, episode_id)   # selected cases, plans, tool calls, tokens, timings
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from memento.errors import NotFoundError

TRACE_TABLE = "agent_traces"
SCHEMA = f"""
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


class TraceStore:
    """The `agent_traces` table of one bank file."""

    def __init__(self, bank_path: str | Path, *, busy_timeout_s: float = 30.0):
        self.path = Path(bank_path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                                     check_same_thread=False)
        with self._lock:
            self._conn.executescript(SCHEMA)

    def save(self, trace: dict[str, Any]) -> None:
        """Insert or replace the trace of `trace["episode_id"]`."""
        row = (trace["episode_id"], trace.get("case_id"), trace.get("task", ""), trace.get("reward"),
               trace.get("created_at") or datetime.now(timezone.utc).isoformat(),
               json.dumps(trace, ensure_ascii=False, default=str))
        with self._lock:
            self._conn.execute(f"INSERT OR REPLACE INTO {TRACE_TABLE} VALUES (?, ?, ?, ?, ?, ?)", row)

    def get(self, episode_id: str) -> dict[str, Any]:
        """The trace of one episode; NotFoundError if there is none."""
        with self._lock:
            row = self._conn.execute(f"SELECT trace FROM {TRACE_TABLE} WHERE episode_id = ?", [episode_id]).fetchone()
        if row is None:
            raise NotFoundError(f"no trace for episode {episode_id!r} in '{self.path}'; list them with list_traces(bank)")
        return json.loads(row[0])

    def list(self, *, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first: {"episode_id", "case_id", "task", "reward", "created_at"} per episode."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT episode_id, case_id, task, reward, created_at FROM {TRACE_TABLE} "
                f"ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?", [limit, offset]).fetchall()
        return [dict(zip(("episode_id", "case_id", "task", "reward", "created_at"), row)) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def load_trace(bank: Any, episode_id: str) -> dict[str, Any]:
    """The stored trace of an episode run against `bank`."""
    store = TraceStore(bank.path)
    try:
        return store.get(episode_id)
    finally:
        store.close()


def list_traces(bank: Any, *, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    """Summaries of the newest traces stored beside `bank`."""
    store = TraceStore(bank.path)
    try:
        return store.list(limit=limit, offset=offset)
    finally:
        store.close()


def build_trace(state: dict[str, Any], *, model: str, policy: str, namespace: tuple[str, ...]) -> dict[str, Any]:
    """The trace of an episode from its state: JSON, self-contained, readable without the state."""
    timings = state.get("timings", [])
    active = float(state.get("active_s", 0.0))
    memory, policy_time = float(state.get("memory_s", 0.0)), float(state.get("policy_s", 0.0))
    return {
        "episode_id": state.get("episode_id"),
        "created_at": datetime.now(timezone.utc).isoformat(),
        "task": state.get("task", ""),
        "task_id": state.get("task_id"),
        "dataset": state.get("dataset"),
        "model": model,
        "policy": policy,
        "namespace": list(namespace),
        "learn": state.get("learn", True),
        "selected": state.get("selected", []),
        "plans": state.get("plans", []),
        "findings": state.get("findings", []),
        "tool_calls": [step for step in state.get("trajectory", []) if step.get("tool")],
        "trajectory": state.get("trajectory", []),
        "llm_calls": state.get("llm_calls", []),
        "tokens": dict(state.get("tokens", {})),
        "answer": state.get("answer", ""),
        "reward": state.get("reward"),
        "scores": state.get("scores", {}),
        "reward_source": state.get("reward_source"),
        "stop_reason": state.get("stop_reason"),
        "case_id": state.get("case_id"),
        "policy_metrics": state.get("policy_metrics", {}),
        "notes": state.get("notes", []),
        "timings": {
            "nodes": timings,
            "active_s": round(active, 4),
            "memory_s": round(memory, 4),
            "policy_s": round(policy_time, 4),
            "memory_policy_share": round((memory + policy_time) / active, 5) if active else None,
            "memory_ops": state.get("memory_ops", []),
        },
    }
