"""Episode traces: what the agent saw, did and spent, as one JSON object per episode.

Traces live in the bank (`Bank.save_trace` / `get_trace` / `list_traces`: the `agent_traces`
table of a SQLite bank, the same table in a PostgreSQL bank's schema), one row per episode,
keyed by episode id, written whether or not the episode learned; the case an episode wrote
carries the same `episode_id` in its metadata.

    from memento.agent import list_traces, load_trace
    for row in list_traces(bank, limit=5):
        print(row["episode_id"], row["reward"], row["task"])
    trace = load_trace(bank, episode_id)   # selected cases, plans, tool calls, tokens, timings
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from memento.bank.interface import Bank


def load_trace(bank: Bank, episode_id: str) -> dict[str, Any]:
    """The stored trace of an episode run against `bank`; NotFoundError if there is none."""
    return bank.get_trace(episode_id)


def list_traces(bank: Bank, *, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    """Summaries of the newest traces stored in `bank`."""
    return bank.list_traces(limit=limit, offset=offset)


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
