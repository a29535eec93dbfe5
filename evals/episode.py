"""One episode of one arm: the only place the eval runner meets the agent.

The runner hands an `EpisodeRunner` a task, the arm's memory, the id the episode's case must
get and the cases it must not be shown, and receives an `EpisodeOutcome`, which says what was
shown (the agent's own result). `AgentEpisodes` runs `memento.agent.Agent`; tests about the
runner pass their own runner instead.

The clean split's same-task guard is a selection filter: a `SameTaskGuard` passed as the
policy's `exclude` leaves out cases whose task text equals the task at hand before the policy
chooses, and notes which it left out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from memento.envs.metrics import normalize_answer
from memento.envs.task import Task
from memento.evals.config import NO_MEMORY
from memento.evals.records import ShownCase
from memento.case import Case
from memento.errors import NotFoundError, ValidationError
from memento.policy import CaseSelectionPolicy, Exclude, Selection


class SameTaskGuard:
    """`exclude=` for one episode: true for a case whose task text (normalised) is the episode's own, noting its id."""

    def __init__(self, task: str):
        self.task = normalize_answer(task)
        self.excluded: list[str] = []
        """Ids of the same-task cases the policy came across and had to leave out."""

    def __call__(self, case: Case) -> bool:
        if normalize_answer(case.task) != self.task:
            return False
        if case.id not in self.excluded:
            self.excluded.append(case.id)
        return True


def same_task_shown(bank: Any, task: str, shown: list[ShownCase]) -> list[str]:
    """Ids of the shown cases whose task text is `task` (normalised): the leak the guard exists to stop."""
    text, ids = normalize_answer(task), []
    for case in shown:
        try:
            if normalize_answer(bank.get(case.id).task) == text:
                ids.append(case.id)
        except NotFoundError:  # deleted since it was shown
            continue
    return ids


class GuardedPolicy:
    """An arm's policy behind one lock.

    Episodes of one arm run concurrently (the agent's nodes in threads) while the runner saves the
    policy, and teaches it recovered episodes, between them; a learned policy's `update` is not
    safe to interleave with `select` or `save`. Everything else (config, kind, ...) is the policy's own.
    """

    def __init__(self, policy: CaseSelectionPolicy):
        self.policy = policy
        self.lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)

    def select(self, state: Any, **options: Any) -> list[Selection]:
        with self.lock:
            return self.policy.select(state, **options)

    def record(self, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.policy.record(*args, **kwargs)

    def update(self) -> dict[str, float]:
        with self.lock:
            return self.policy.update()

    def save(self, path: str | Path) -> Path:
        with self.lock:
            return self.policy.save(path)


@dataclass
class ArmMemory:
    """One arm: its bank (the no-memory arm has one too, for the agent's traces) and its guarded policy."""

    name: str
    bank: Any
    policy: GuardedPolicy
    checkpoint: Path | None = None
    """Where a learning policy is saved after each episode, so a resumed run continues from it."""

    @property
    def has_memory(self) -> bool:
        """False for the no-memory arm: it is shown no case and writes none."""
        return self.name != NO_MEMORY

    def save_policy(self) -> None:
        if self.has_memory and self.checkpoint is not None:
            self.policy.save(self.checkpoint)

    def close(self) -> None:
        self.policy.close()  # frees the policy's name on the bank, for a run resumed in this process
        self.bank.close()


@dataclass
class EpisodeOutcome:
    """What an episode produced, as the runner records it."""

    answer: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    steps: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    trace: Any = None
    learned: bool = False
    """Whether a case with the given id was written and the policy taught."""
    shown: list[ShownCase] = field(default_factory=list)
    """The cases the agent showed, from its own result."""
    llm_calls: int | None = None
    """Model calls the episode made (None when unknown, as for a recovered episode without its trace)."""


Reward = Callable[[str], float]
"""The environment's reward for an answer (the task's rule-based scorer)."""


class EpisodeRunner(Protocol):
    """Runs the episodes of an eval; `case_id` is None when the episode must not learn."""

    async def arun(self, task: Task, arm: ArmMemory, *, case_id: str | None, explore: bool,
                   reward: Reward, exclude: Exclude = None) -> EpisodeOutcome:
        """Run one episode; a learning one stores its case under `case_id`; `exclude` goes to the policy's select."""

    def recover(self, task: Task, arm: ArmMemory, case_id: str) -> EpisodeOutcome | None:
        """The outcome of an episode that stored case `case_id` before a crash, or None if it stored none."""

    def close(self) -> None:
        """Release what the runner holds."""


class AgentEpisodes:
    """Episodes run by `memento.agent.Agent`: one agent per arm, sharing the tools, and the LLM unless `arm_llm` gives one."""

    def __init__(self, llm: Any, tools: list[Any], config: Any, *, arm_llm: Callable[[ArmMemory], Any] | None = None):
        self.llm = llm
        self.tools = tools
        self.config = config
        """The `AgentConfig` every arm's agent runs with."""
        self.arm_llm = arm_llm
        """An arm's own LLM (e.g. one following its bank's distilled adapter), made at its first episode; None: `llm`."""
        self._agents: dict[str, Any] = {}

    def _agent(self, arm: ArmMemory) -> Any:
        if arm.name not in self._agents:
            from memento.agent import Agent

            llm = self.arm_llm(arm) if self.arm_llm is not None else self.llm
            self._agents[arm.name] = Agent(llm, arm.bank, arm.policy, self.tools, config=self.config)
        return self._agents[arm.name]

    async def arun(self, task: Task, arm: ArmMemory, *, case_id: str | None, explore: bool,
                   reward: Reward, exclude: Exclude = None) -> EpisodeOutcome:
        # The episode id names the case the agent writes: fixed by the runner, so a resumed run finds it.
        result = await self._agent(arm).arun(task, scorer=lambda _task, answer: reward(answer),
                                             learn=case_id is not None, episode_id=case_id, exclude=exclude)
        if case_id is not None and result.case_id != case_id:
            raise ValidationError(f"the agent stored episode {case_id!r} as case {result.case_id!r}; "
                                  f"the eval needs the case id it asked for to resume safely")
        return EpisodeOutcome(
            answer=result.answer or "",
            prompt_tokens=int(result.tokens.get("prompt_tokens", 0)),
            completion_tokens=int(result.tokens.get("completion_tokens", 0)),
            steps=len(result.trajectory),
            timings=_node_seconds(result.trace.get("timings", {})),
            trace=result.trace,
            learned=case_id is not None,
            llm_calls=len(result.trace.get("llm_calls", [])),
            shown=[ShownCase(id=s["case_id"], score=s.get("score"), similarity=s.get("similarity")) for s in result.selected],
        )

    def recover(self, task: Task, arm: ArmMemory, case_id: str) -> EpisodeOutcome | None:
        try:
            case = arm.bank.get(case_id)
        except NotFoundError:
            return None
        from memento.agent import load_trace

        try:
            trace = load_trace(arm.bank, case_id)
            shown = [ShownCase(id=s["case_id"], score=s.get("score"), similarity=s.get("similarity"))
                     for s in trace.get("selected", [])]
        except NotFoundError:  # died between writing the case and saving the trace
            trace = None
            shown = [ShownCase(id=i) for i in case.metadata.get("selected_case_ids", [])]
        tokens = case.metadata.get("tokens", {})
        return EpisodeOutcome(answer=case.answer, prompt_tokens=int(tokens.get("prompt_tokens", 0)),
                              completion_tokens=int(tokens.get("completion_tokens", 0)), steps=len(case.trajectory),
                              trace=trace, learned=True, shown=shown)

    def close(self) -> None:
        for agent in self._agents.values():
            agent.close()


def _node_seconds(timings: dict[str, Any]) -> dict[str, float]:
    """Seconds per agent node (summed over repeats) plus the memory and policy shares."""
    seconds: dict[str, float] = {}
    for entry in timings.get("nodes", []):
        seconds[entry["node"]] = round(seconds.get(entry["node"], 0.0) + float(entry["seconds"]), 4)
    for key in ("memory_s", "policy_s", "active_s"):
        if timings.get(key) is not None:
            seconds[key] = float(timings[key])
    return seconds
