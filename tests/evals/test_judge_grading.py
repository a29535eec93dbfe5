"""PM by an LLM judge: the verdict and the prompt id are stored with the episode."""

import asyncio
import json

from memento.envs.metrics import JUDGE_PROMPT_ID
from memento.envs.task import Task
from memento.evals.records import EpisodeRecord
from memento.evals.runner import agrade
from memento.llm import ScriptedLLM

TASK = Task(id="q1", question="Which city hosted the 1908 Summer Olympics?", gold=["London"], benchmark="qa",
            source="hotpotqa")


def record(answer: str) -> EpisodeRecord:
    return EpisodeRecord(arm="none", phase="train", iteration=1, task_id=TASK.id, question=TASK.question,
                         source=TASK.source, benchmark=TASK.benchmark, gold=TASK.gold, answer=answer,
                         scores={"em": 0.0, "f1": 0.5})


def fake_judge(messages) -> str:
    """Grades 'correct' when the predicted answer line mentions London (a stand-in for a judge model)."""
    predicted = next(line for line in messages[-1]["content"].splitlines() if line.startswith("Predicted answer:"))
    grade = "correct" if "London" in predicted else "incorrect"
    return json.dumps({"rationale": f"the prediction is {grade}", "grade": grade})


def test_judge_verdict_becomes_pm_and_is_stored():
    judge = ScriptedLLM(fake_judge, model="judge-model")

    right = asyncio.run(agrade(record("London, England"), TASK, judge))
    wrong = asyncio.run(agrade(record("Paris"), TASK, judge))

    assert right.scores == {"em": 0.0, "f1": 0.5, "pm": 1.0} and wrong.scores["pm"] == 0.0
    assert right.verdict["grade"] == "correct" and right.verdict["judge_model"] == "judge-model"
    assert right.verdict["prompt_id"] == JUDGE_PROMPT_ID and right.verdict["rationale"] == "the prediction is correct"
    assert "London, England" in judge.calls[0].messages[-1]["content"], "the judge saw the episode's answer"


def test_no_judge_or_no_gold_leaves_the_record_unjudged():
    judge = ScriptedLLM(fake_judge)
    assert asyncio.run(agrade(record("London"), TASK, None)).verdict is None
    no_gold = TASK.model_copy(update={"gold": []})
    assert asyncio.run(agrade(record("London"), no_gold, judge)).verdict is None and not judge.calls
