"""`Agent`: run one episode and get its result, without touching LangGraph.

    agent = Agent(load_llm(), CaseBank("cases.db"), SimilarityPolicy(), [search_tool(corpus)])
    result = agent.run("In which city was the founder of Acme born?", gold=["Paris"])
    result.answer, result.reward, result.case_id, result.trace["timings"]
    results = await asyncio.gather(*(agent.arun(t, scorer=envs.score) for t in tasks))

`run(task, ...)` takes a question string or a task record with `question`, `gold`, `id` and
`source` attributes (an `envs.Task`); the scorer then receives that record. With learn=False the
bank's cases and the policy are left untouched (the trace is still stored).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Sequence

from pydantic import BaseModel, Field

from memento.agent.config import AgentConfig
from memento.agent.graph import compile_nodes, recursion_limit
from memento.agent.nodes import EXCLUDE_KEY, SCORER_KEY, TASK_KEY, AgentNodes, Judge, Scorer
from memento.case import Step
from memento.errors import ValidationError
from memento.llm import LLM
from memento.policy import CaseSelectionPolicy, Exclude, excluder


class EpisodeResult(BaseModel):
    """What one episode produced and spent."""

    episode_id: str
    task: str
    answer: str
    reward: float | None
    """None when nothing could score the answer (no scorer, judge or gold)."""
    scores: dict[str, float] = Field(default_factory=dict)
    plan: list[str] = Field(default_factory=list)
    trajectory: list[Step] = Field(default_factory=list)
    selected: list[dict[str, Any]] = Field(default_factory=list)
    """The cases the planner saw: {"case_id", "score", "similarity"}."""
    case_id: str | None = None
    """The case the episode was stored as; None with learn=False."""
    stop_reason: str | None = None
    tokens: dict[str, int] = Field(default_factory=dict)
    wall_s: float
    """Seconds from the call to its return."""
    trace: dict[str, Any] = Field(default_factory=dict)


class Agent:
    """The memento agent over one LLM, case bank, policy and tool set."""

    def __init__(self, llm: LLM, bank: Any, policy: CaseSelectionPolicy, tools: Sequence[Any] = (), *,
                 config: AgentConfig = AgentConfig(), judge: Judge | None = None, checkpointer: Any = None):
        self.config = config
        self.nodes = AgentNodes(llm, bank, policy, tools, config=config, judge=judge)
        self.graph = compile_nodes(self.nodes, checkpointer=checkpointer)

    def run(self, task: Any, gold: Sequence[str] | None = None, scorer: Scorer | None = None, learn: bool = True, *,
            thread_id: str | None = None, episode_id: str | None = None, exclude: Exclude = None) -> EpisodeResult:
        """Run one episode to its end; `scorer(task, answer)` gives the reward (else the judge, if gold).

        `episode_id` names the episode, its trace and its case (a fresh id when None); a runner that
        must find an episode again after a crash passes its own. `exclude` (case ids, or a predicate
        on a Case) names cases the policy must not show in this episode, e.g. an eval's same-task guard.
        """
        inputs, run_config = self._start(task, gold, scorer, learn, thread_id, episode_id=episode_id, exclude=exclude)
        started = time.perf_counter()
        state = self.graph.invoke(inputs, run_config)
        return self._result(state, time.perf_counter() - started)

    async def arun(self, task: Any, gold: Sequence[str] | None = None, scorer: Scorer | None = None,
                   learn: bool = True, *, thread_id: str | None = None, episode_id: str | None = None,
                   exclude: Exclude = None) -> EpisodeResult:
        """Async twin of `run`; many may run at once (memory and policy calls are serialised)."""
        inputs, run_config = self._start(task, gold, scorer, learn, thread_id, episode_id=episode_id, exclude=exclude)
        started = time.perf_counter()
        state = await self.graph.ainvoke(inputs, run_config)
        return self._result(state, time.perf_counter() - started)

    def close(self) -> None:
        """Release what the agent holds (the bank stays open: it is the caller's)."""
        self.nodes.close()

    def _start(self, task: Any, gold: Sequence[str] | None, scorer: Scorer | None, learn: bool,
               thread_id: str | None, *, episode_id: str | None = None,
               exclude: Exclude = None) -> tuple[dict[str, Any], dict[str, Any]]:
        text = task if isinstance(task, str) else getattr(task, "question", None)
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(f"task {task!r:.80} has no question text; pass a string or a record with .question")
        if gold is None:
            gold = getattr(task, "gold", None) or []
        if isinstance(gold, str):
            gold = [gold]
        episode_id = episode_id or uuid.uuid4().hex
        inputs = {"task": text, "gold": list(gold), "learn": bool(learn), "episode_id": episode_id,
                  "task_id": str(getattr(task, "id", "") or ""),
                  "dataset": str(getattr(task, "source", "") or getattr(task, "benchmark", "") or "")}
        configurable: dict[str, Any] = {"thread_id": thread_id or episode_id, TASK_KEY: task}
        if scorer is not None:
            configurable[SCORER_KEY] = scorer
        if exclude is not None:
            excluder(exclude)  # a bad value fails here, before the episode starts
            configurable[EXCLUDE_KEY] = exclude
        return inputs, {"configurable": configurable, "recursion_limit": recursion_limit(self.config)}

    def _result(self, state: dict[str, Any], wall_s: float) -> EpisodeResult:
        if "answer" not in state:
            raise ValidationError("the episode stopped before its answer (an interrupt?); resume it with "
                                  "agent.graph.invoke(None, config) on its thread")
        trace = self.nodes.trace(state)
        trace["timings"]["wall_s"] = round(wall_s, 4)
        return EpisodeResult(
            episode_id=state["episode_id"], task=state["task"], answer=state["answer"], reward=state.get("reward"),
            scores=state.get("scores", {}), plan=state.get("plan", []),
            trajectory=self.nodes.episode_case(state).trajectory, selected=state.get("selected", []),
            case_id=state.get("case_id"), stop_reason=state.get("stop_reason"), tokens=state.get("tokens", {}),
            wall_s=wall_s, trace=trace,
        )
