"""The schedule starts a background distillation every N new successes and never waits for it."""

import time

import pytest

from memento.case import Case
from memento.distill import DistillConfig
from memento.distill.schedule import DistillSchedule


@pytest.mark.slow  # a child process imports torch
def test_due_runs_start_in_the_background_and_their_outcome_is_collected(tmp_path, fact_bank):
    schedule = DistillSchedule(fact_bank.path, DistillConfig(min_train_examples=100), every=3,
                               start_count=fact_bank.count(min_reward=1.0), work_dir=tmp_path / "runs")
    assert schedule.poll(fact_bank) is None and schedule.runs == []  # nothing new yet
    fact_bank.add_many([Case(task=f"Who built tower {n}?", answer=f"Builder {n}", reward=1.0) for n in range(3)])
    began = time.perf_counter()
    schedule.poll(fact_bank)
    assert time.perf_counter() - began < 2.0  # the episode loop is not held up by the run
    assert schedule.running() and [r["status"] for r in schedule.runs] == ["running"]
    schedule.poll(fact_bank)
    assert len(schedule.runs) == 1  # one run at a time
    (run,) = schedule.close()
    # 100 examples are asked for and the bank has 10 successes: the child's own error comes back, nothing is promoted.
    assert run["status"] == "failed" and run["exit_code"] != 0
    assert "need 100" in run["error"] and run["successes"] == 10
    assert not (fact_bank.path.with_name(fact_bank.path.name + ".adapters") / "state.json").exists()
