"""The graph's state: what goes in, what every node adds, and how updates merge (the reducers).

Everything in the state is plain JSON (strings, numbers, lists, dicts), so any LangGraph
checkpointer can save it and a thread can resume on another process. Lists that grow during an
episode (trajectory, findings, timings, LLM calls) and the counters behind the budgets
(steps, tokens, seconds) have reducers that add, so each node returns only what it did.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def add_counts(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    """Add two dicts of counters key by key (token counts)."""
    return {key: left.get(key, 0) + right.get(key, 0) for key in {**left, **right}}


class AgentInput(TypedDict, total=False):
    """What an episode starts from; only `task` is required."""

    task: str
    """The question or task, as the agent sees it."""
    gold: list[str]
    """Accepted answers, for the scorer or judge only; never shown to the agent."""
    learn: bool
    """False: read memory but write no case and teach the policy nothing (default True)."""
    task_id: str
    dataset: str
    episode_id: str
    """Names the episode's trace and case; a fresh id when absent."""


class AgentState(AgentInput, total=False):
    """The whole state of one episode."""

    task_embedding: list[float]
    """The task's embedding (bank's embedder), reused when the case is written and the policy learns."""
    selected: list[dict[str, Any]]
    """Cases the policy picked: {"case_id", "score", "similarity"}, best first."""
    cases_context: str
    """The selected cases rendered for the planner."""
    procedures: list[dict[str, Any]]
    """The selected cases' procedures, in the policy's order: {"case_id", "procedure"} (a Procedure as JSON)."""
    evidence: Annotated[list[dict[str, Any]], operator.add]
    """Every search of recall and exploration with its passages (see `memento.agent.evidence`)."""
    recalled: Annotated[list[dict[str, Any]], operator.add]
    """One {"case_id", "values", "answer", "failure"} per procedure run."""
    answered_by: str
    """'recall', 'explore' or 'plan': which path gave the answer."""
    procedure: dict[str, Any] | None
    """The procedure the episode's case will hold (a Procedure as JSON), set when memory is written."""
    hindsight: dict[str, Any]
    """What hindsight found: {"reached", "search", "depth", "passage_id", ...} or {"reached": False, "why"}."""
    plan: list[str]
    """The current plan's subtasks."""
    plans: Annotated[list[list[str]], operator.add]
    """Every plan the planner wrote, first to last."""
    subtask: int
    """Index in `plan` of the next subtask to execute."""
    revisions: int
    """How many times the plan was revised."""
    findings: Annotated[list[dict[str, str]], operator.add]
    """One {"subtask", "result"} per executed subtask."""
    trajectory: Annotated[list[dict[str, Any]], operator.add]
    """Executor turns: {"subtask", "thought", "tool", "tool_input", "observation", "seconds", "ok"}."""
    steps_used: Annotated[int, operator.add]
    tokens: Annotated[dict[str, int], add_counts]
    """{"prompt_tokens", "completion_tokens"} over the episode."""
    llm_calls: Annotated[list[dict[str, Any]], operator.add]
    """One {"node", "prompt_tokens", "completion_tokens", "seconds", "outcome"} per model call."""
    timings: Annotated[list[dict[str, Any]], operator.add]
    """One {"node", "seconds"} per node run."""
    active_s: Annotated[float, operator.add]
    """Seconds spent inside nodes: the clock of the wall-time budget."""
    memory_s: Annotated[float, operator.add]
    """Seconds in case-bank operations (embedding the task, writing the case, the trace)."""
    policy_s: Annotated[float, operator.add]
    """Seconds in the policy (select, record, update)."""
    memory_ops: Annotated[list[dict[str, Any]], operator.add]
    """One {"op", "seconds"} per memory or policy operation: embed, select, write_case, record, update, save_trace."""
    stop_reason: str
    """Why execution ended early: 'step_budget', 'token_budget' or 'time_budget' (absent when it did not)."""
    answer: str
    reward: float | None
    """The reward, or None when nothing could score the answer."""
    scores: dict[str, float]
    """Every metric the scorer returned."""
    reward_source: str
    """'scorer', 'judge' or 'none'."""
    case_id: str | None
    policy_metrics: dict[str, float]
    notes: Annotated[list[str], operator.add]
    """Things that went wrong and were worked around (malformed output, fallbacks), for the trace."""


def apply_update(state: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The state after `update`, merged as LangGraph merges it (reducers add, other keys replace).

    For running nodes outside a graph (tests, custom loops) and for a node that needs the state
    as it will be after its own update (the trace written at the end of an episode).
    """
    merged = dict(state)
    for key, value in update.items():
        reducer = _REDUCERS.get(key)
        merged[key] = reducer(merged[key], value) if reducer and key in merged else value
    return merged


def _reducers() -> dict[str, Any]:
    from typing import get_type_hints

    hints = get_type_hints(AgentState, include_extras=True)
    return {key: hint.__metadata__[0] for key, hint in hints.items() if hasattr(hint, "__metadata__")}


_REDUCERS = _reducers()
