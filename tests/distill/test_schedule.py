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


@pytest.mark.slow  # a child process trains a real (tiny) adapter, then the backend loads it
def test_a_background_run_promotes_an_adapter_the_next_backend_call_uses(tmp_path, fact_bank):
    from memento.distill import GateRule, TrainConfig
    from memento.distill.registry import AdapterRegistry
    from memento.llm import load_llm
    from memento.llm.transformers_backend import dequantize_gguf

    config = DistillConfig(train=TrainConfig(steps=2, lr=3e-3, batch_size=2, max_length=48, device="cpu"),
                           # Lenient on the general probe: two steps are about the schedule, not the quality.
                           gate=GateRule(max_drop_points=100.0, ci_check=False), generate=False)
    schedule = DistillSchedule(fact_bank.path, config, every=3, start_count=fact_bank.count(min_reward=1.0),
                               work_dir=tmp_path / "runs")
    llm = load_llm("transformers", model=str(dequantize_gguf()), distilled_from=str(fact_bank.path), max_tokens=4)
    question = [{"role": "user", "content": "Who founded Zorvik Labs?"}]
    assert llm.complete(question).model == llm.model  # nothing promoted yet: the base
    fact_bank.add_many([Case(task=f"Who built tower {n}?", answer=f"Builder {n}", reward=1.0) for n in range(3)])
    schedule.poll(fact_bank)
    (run,) = schedule.close(timeout_s=600)
    assert run["status"] == "done" and run["promoted"], run
    assert run["after"]["heldout_logprob"]["mean"] > run["before"]["heldout_logprob"]["mean"]  # the before/after the report shows
    assert AdapterRegistry(fact_bank.path).promoted().name == run["version"]
    assert llm.complete(question).model == run["version"]  # the next call picks the promoted adapter up
