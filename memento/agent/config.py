"""`AgentConfig`: every knob of one episode, as data; the library, the CLI and the eval runner share it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memento.case import DEFAULT_NAMESPACE
from memento.errors import ValidationError
from memento.policy import DEFAULT_K


@dataclass(frozen=True)
class AgentConfig:
    """How the agent reads memory, plans, acts within its budgets, and writes memory."""

    k: int = DEFAULT_K
    """How many past cases the planner sees (the paper's best is 4). The one owner of k: the agent passes it
    to `policy.select(state, k=...)`; policies have no k of their own."""
    namespace: tuple[str, ...] = DEFAULT_NAMESPACE
    """Where episodes are written as cases and where cases are selected from."""
    explore: bool = True
    """Let a learned policy sample cases while learning; with learn=False it always takes its best."""
    max_subtasks: int = 4
    """Most subtasks the planner may write in one plan."""
    max_plan_revisions: int = 1
    """How many times the planner may replace the plan after seeing the findings."""
    max_steps: int = 12
    """Executor turns per episode (each turn is one tool call or one final result)."""
    max_steps_per_subtask: int = 4
    """Executor turns per subtask before it moves on with what it has."""
    max_tokens: int = 24_000
    """Prompt plus completion tokens per episode; the answer is forced when they run out."""
    max_wall_s: float = 300.0
    """Seconds of work per episode (time spent inside the agent's nodes, so a paused thread does not age)."""
    planner_max_tokens: int = 192
    """Completion tokens for a plan or a revision."""
    executor_max_tokens: int = 96
    """Completion tokens for one executor action."""
    answer_max_tokens: int = 64
    """Completion tokens for the final answer."""
    executor_history: int = 3
    """How many earlier turns of the current subtask the executor sees (keeps small models' prompts short)."""
    max_observation_chars: int = 700
    """Characters of a tool result shown to the executor and kept in the trajectory."""
    max_case_chars: int = 200
    """Characters per field (task, answer, each plan step) when a past case is shown to the planner."""
    temperature: float = 0.0
    """Sampling temperature of every LLM call (0 is greedy)."""
    reward_metric: str = "em"
    """Which metric is the reward when the scorer returns several (e.g. {"em": .., "f1": ..})."""
    store_traces: bool = True
    """Write each episode's trace to the `agent_traces` table of the bank's SQLite file."""
    procedures: bool = True
    """Run the procedure of a selected case when the task fits its template (see `memento.agent.recall`)."""
    procedure_pool: int = 16
    """Cases the policy ranks for one episode; of those, the k shown are the ones whose procedure fits
    the task first (in the policy's order), then the rest. Set it to k to show the policy's top k as is."""
    max_procedures: int = 2
    """Fitting procedures tried in one episode, in the policy's order, before falling back."""
    fallback: Literal["plan", "explore"] = "plan"
    """Without a procedure that fits and runs: the LLM planner and executor ('plan', for capable models),
    or a bounded search outward from the task and one constrained answer choice ('explore', for small
    models: one model call an episode)."""
    hindsight: bool = True
    """On a learning episode with gold answers: find where the gold stood in the agent's own results and
    learn the procedure that reaches it, even when the answer was wrong (never when learn=False)."""
    explore_k: int = 3
    """Passages per search, in exploration and in recalled procedures."""
    explore_breadth: int = 6
    """Names from the first search that exploration searches in turn."""
    explore_depth: int = 3
    """Levels of searches in exploration (1: the task only)."""
    answer_options: int = 6
    """Options the model chooses the answer among, in exploration."""

    def __post_init__(self) -> None:
        counts = {name: getattr(self, name) for name in (
            "k", "max_subtasks", "max_steps", "max_steps_per_subtask", "max_tokens", "planner_max_tokens",
            "executor_max_tokens", "answer_max_tokens", "executor_history", "max_observation_chars", "max_case_chars",
            "max_procedures", "procedure_pool", "explore_k", "explore_breadth", "explore_depth", "answer_options")}
        for name, value in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(f"AgentConfig.{name}={value!r} must be a positive integer")
        if self.fallback not in ("plan", "explore"):
            raise ValidationError(f"AgentConfig.fallback={self.fallback!r} must be 'plan' or 'explore'")
        if self.max_plan_revisions < 0:
            raise ValidationError(f"AgentConfig.max_plan_revisions={self.max_plan_revisions} must be 0 or more")
        if not self.max_wall_s > 0:
            raise ValidationError(f"AgentConfig.max_wall_s={self.max_wall_s} must be a positive number of seconds")
        if isinstance(self.namespace, (str, list)):
            object.__setattr__(self, "namespace", tuple(self.namespace.split("/")) if isinstance(self.namespace, str)
                               else tuple(self.namespace))
