"""The real eval runner in its own process, with fakes for the agent and the LLM, for the kill -9 test.

    python -m tests.faults.eval_run RUN_DIR DELAY_S

The runner, its episode log, its arms' banks and policies are the real ones; only the agent
(FakeAgentEpisodes) and the LLM (a slow ScriptedLLM) are stand-ins, since the test is about the runner.
"""

import asyncio
import sys
from pathlib import Path

from memento.evals.config import EvalConfig, TaskSpec
from memento.evals.episode import EpisodeOutcome
from memento.evals.records import ShownCase
from memento.evals.runner import run_eval
from memento.case import Case
from memento.policy import TaskState
from tests.evals.fake_episodes import (
    FakeAgentEpisodes,
    SlowScriptedLLM,
    gold_echo_handler,
)
from tests.fakes import FakeHashEmbedder

ARMS = ["none", "similarity", "neural"]
TASKS = 6
ITERATIONS = 2


class FakeAgentInOrder(FakeAgentEpisodes):
    """A fake agent that writes what the real one writes, in its order: the case, then the policy's record
    under the episode's id (the case id), then the update. Named as a fake; the test is about the runner."""

    async def arun(self, task, arm, *, case_id, explore, reward, exclude=None):
        self.calls += 1
        state = TaskState.from_task(arm.bank, task.question, **({"episode_id": case_id} if case_id else {}))
        shown = arm.policy.select(state, explore=explore, exclude=exclude) if arm.has_memory else []
        prompt = task.question + "".join(f"\nPast answer: {s.case.answer}" for s in shown)
        answer = (await self.llm.acomplete([{"role": "user", "content": prompt}])).text
        if case_id is not None:
            value = reward(answer)
            arm.bank.add(Case(id=case_id, task=task.question, answer=answer, reward=value,
                              metadata={"selected_cases": [{"id": s.case.id, "score": s.score} for s in shown]}),
                         vector=state.embedding)
            arm.policy.record(state, [s.case.id for s in shown], value)
            arm.policy.update()
            await asyncio.sleep(self.llm.delay_s)  # the agent saving its trace: a kill here leaves a case to recover
        return EpisodeOutcome(answer=answer, steps=1, learned=case_id is not None,
                              shown=[ShownCase(id=s.case.id, score=s.score, similarity=s.similarity) for s in shown])


def config(run_dir: Path) -> EvalConfig:
    return EvalConfig(out_dir=run_dir, tasks=TaskSpec(source="fictional", limit=TASKS, options={"n_entities": 40}),
                      arms=ARMS, iterations=ITERATIONS, concurrency=2)


def run(run_dir: Path, delay_s: float = 0.0):
    llm = SlowScriptedLLM(gold_echo_handler, delay_s=delay_s)
    return run_eval(config(run_dir), progress=False, embedder=FakeHashEmbedder(), episodes=FakeAgentInOrder(llm))


if __name__ == "__main__":
    run(Path(sys.argv[1]), float(sys.argv[2]))
