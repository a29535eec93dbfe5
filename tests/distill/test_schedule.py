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


@pytest.mark.slow  # trains a tiny adapter in a child process
def test_a_background_run_trains_and_promotes_and_the_next_call_uses_its_adapter(tmp_path, fact_bank):
    pytest.importorskip("peft", reason="needs the extra memento[distill]")
    from memento.distill import GateRule, SelectionConfig, TrainConfig
    from memento.evals.report import distillation_table
    from memento.llm import load_llm

    # Lenient on the general probe: three steps on a few cases test the schedule's mechanics, not quality.
    config = DistillConfig(selection=SelectionConfig(heldout_fraction=0.34, context="none"),
                           train=TrainConfig(steps=3, lr=3e-3, batch_size=2, max_length=64, device="cpu"),
                           gate=GateRule(max_drop_points=100.0, ci_check=False), generate=False)
    llm = load_llm("transformers", distilled_from=str(fact_bank.path), max_tokens=4)
    question = [{"role": "user", "content": "Who founded Zorvik Labs?"}]
    assert llm.complete(question).model == llm.model and llm.distilled is None
    schedule = DistillSchedule(fact_bank.path, config, every=2, start_count=fact_bank.count(min_reward=1.0),
                               work_dir=tmp_path / "runs")
    fact_bank.add_many([Case(task=f"Who built tower {n}?", answer=f"Builder {n}", reward=1.0) for n in range(2)])
    schedule.poll(fact_bank)
    (run,) = schedule.close(timeout_s=600)
    assert run["status"] == "done", run
    assert run["promoted"] and run["version"] == "v0001" and run["gate_passed"]
    assert run["after"]["heldout_logprob"]["mean"] != run["before"]["heldout_logprob"]["mean"]
    assert llm.complete(question).model == "v0001" and llm.distilled == "v0001", "the next call uses the adapter"
    table = distillation_table({"neural": schedule.runs})
    assert "| neural | 1 |" in table and "v0001 | yes" in table and "heldout_logprob base → adapter" in table
