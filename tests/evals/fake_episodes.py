"""A stand-in for the agent, for tests about the eval runner (resume, concurrency, the guard, outputs).

It does what the agent's memory loop does with the real parts (the arm's real bank and guarded
policy, a real `ScriptedLLM`): select cases, ask the LLM, then, when learning, write the case
under the id the runner gave and let the policy record and update. Named as a fake; never used at
run time.
"""

from __future__ import annotations

import asyncio
import re

from memento.envs.task import Task
from memento.evals.episode import ArmMemory, EpisodeOutcome, Reward
from memento.evals.records import ShownCase
from memento.case import Case
from memento.errors import NotFoundError
from memento.llm import ScriptedLLM
from memento.policies.base import TaskState


class SlowScriptedLLM(ScriptedLLM):
    """A ScriptedLLM whose async calls wait `delay_s` first, like a server doing the work elsewhere."""

    def __init__(self, handler, delay_s: float = 0.0, **kwargs):
        super().__init__(handler, **kwargs)
        self.delay_s = delay_s
        self.in_flight = 0
        self.max_in_flight = 0

    async def _acomplete(self, request):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            return self._complete(request)
        finally:
            self.in_flight -= 1


def gold_echo_handler(messages) -> str:
    """Answers with the answer of the first shown case, else 'unknown': memory is the only way to be right."""
    shown = re.findall(r"^Past answer: (.*)$", messages[-1]["content"], re.MULTILINE)
    return shown[0] if shown else "unknown"


class FakeAgentEpisodes:
    """Fake agent: select, answer with the LLM, and (when learning) write the case and train the policy."""

    def __init__(self, llm: ScriptedLLM, *, fail_after: int | None = None, crash_after_case_write: bool = False,
                 answer_key: dict[str, str] | None = None):
        self.llm = llm
        self.calls = 0
        self.fail_after = fail_after
        """Raise KeyboardInterrupt at the start of episode number `fail_after` (0-based), like Ctrl-C."""
        self.crash_after_case_write = crash_after_case_write
        """With `fail_after`: let that episode write its case first, then die before the runner logs it."""
        self.answer_key = answer_key or {}
        """Task id -> the answer the first attempt writes into memory (so memory can teach)."""

    async def arun(self, task: Task, arm: ArmMemory, *, case_id: str | None, explore: bool,
                   reward: Reward, exclude=None) -> EpisodeOutcome:
        number = self.calls
        self.calls += 1
        dies_here = self.fail_after is not None and number >= self.fail_after
        if dies_here and not self.crash_after_case_write:
            raise KeyboardInterrupt
        shown, state = [], None
        if arm.has_memory:
            state = TaskState.from_task(arm.bank, task.question)
            shown = arm.policy.select(state, explore=explore, exclude=exclude)
        prompt = task.question + "".join(f"\nPast answer: {s.case.answer}" for s in shown)
        completion = await self.llm.acomplete([{"role": "user", "content": prompt}])
        answer = completion.text
        if case_id is not None:
            value = reward(answer)
            remembered = self.answer_key.get(task.id, answer)
            arm.bank.add(Case(id=case_id, task=task.question, answer=remembered, reward=value,
                              metadata={"selected_cases": [{"id": s.case.id, "score": s.score,
                                                            "similarity": s.similarity} for s in shown]}),
                         vector=state.embedding)
            arm.policy.record(state, [s.case.id for s in shown], value)
            arm.policy.update()
            if dies_here:
                raise KeyboardInterrupt
        return EpisodeOutcome(answer=answer, prompt_tokens=completion.usage.prompt_tokens,
                              completion_tokens=completion.usage.completion_tokens, steps=1,
                              trace={"prompt": prompt}, learned=case_id is not None,
                              shown=[ShownCase(id=s.case.id, score=s.score, similarity=s.similarity) for s in shown])

    def recover(self, task: Task, arm: ArmMemory, case_id: str) -> EpisodeOutcome | None:
        try:
            case = arm.bank.get(case_id)
        except NotFoundError:
            return None
        shown = [ShownCase.model_validate(s) for s in case.metadata["selected_cases"]]
        return EpisodeOutcome(answer=case.answer, learned=True, shown=shown)

    def close(self) -> None:
        pass


def distributed_episodes() -> FakeAgentEpisodes:
    """The fake agent built in each worker process of a distributed run (`episodes_factory`)."""
    return FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler, delay_s=0.05))
