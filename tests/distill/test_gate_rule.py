"""The gate's rule on measured scores: points, intervals, which check failed and by how much."""

import math

from memento.distill.gate import (
    GateRule,
    _guard_check,
    _improvement_check,
    drop_points,
)
from memento.distill.probe import score_of


def test_points_read_the_same_on_every_score():
    assert drop_points("general_qa_accuracy", 70.0, 65.0) == 5.0
    assert math.isclose(drop_points("general_ppl", 20.0, 21.0), 5.0)
    assert math.isclose(drop_points("heldout_logprob", -1.0, -1.0 + math.log(0.95)), 5.0)
    assert drop_points("general_ppl", 20.0, 19.0) < 0  # better is a negative drop


def test_bootstrap_interval_holds_the_mean():
    score = score_of([0.0, 100.0] * 10)
    assert score.mean == 50.0 and score.ci[0] < 50.0 < score.ci[1] and score.n == 20
    ppl = score_of([math.log(10.0)] * 5, transform=math.exp)
    assert math.isclose(ppl.mean, 10.0) and math.isclose(ppl.ci[0], 10.0)


def test_a_guarded_score_fails_by_threshold_or_by_interval():
    rule = GateRule()
    base = score_of([100.0] * 10)
    steady = score_of([99.0] * 20)  # one point down, but every resample is below the base
    small = _guard_check(rule, "general_qa_accuracy", base, steady)
    assert not small["passed"] and "excludes the reference" in small["why"] and "more than" not in small["why"]
    assert _guard_check(GateRule(ci_check=False), "general_qa_accuracy", base, steady)["passed"]
    noisy = score_of([100.0] * 49 + [0.0])  # two points down, the interval still holds the base
    assert _guard_check(rule, "general_qa_accuracy", base, noisy)["passed"]
    big = _guard_check(rule, "general_ppl", score_of([1.0] * 5, transform=math.exp), score_of([1.2] * 5, transform=math.exp))
    assert not big["passed"] and big["drop_points"] > 20 and "more than 2.0" in big["why"]


def test_the_heldout_score_must_improve():
    rule = GateRule()
    same = {"heldout_logprob": score_of([-2.0, -3.0])}
    assert not _improvement_check(rule, same, same)["passed"]
    better = {"heldout_logprob": score_of([-1.0, -2.0])}
    assert _improvement_check(rule, same, better)["passed"]
    assert not _improvement_check(rule, {}, {})["passed"]  # nothing held out: no evidence, no pass


def test_check_b_rejects_adapter_and_memory_worse_than_memory_alone():
    from memento.distill.gate import MEMORY_TASKS as EVAL_TASKS_METRIC

    rule = GateRule()
    assert EVAL_TASKS_METRIC in rule.guarded  # on by default, applied only when a memory_tasks scorer ran
    alone = score_of([100.0, 0.0] * 10)  # per-task rewards in %: memory alone solves half the tasks
    worse = _guard_check(rule, EVAL_TASKS_METRIC, alone, score_of([100.0, 0.0, 0.0, 0.0] * 5))
    assert worse["check"] == "(b) eval tasks with memory on" and not worse["passed"]
    assert worse["drop_points"] == 25.0 and "more than 2.0" in worse["why"]
    assert _guard_check(rule, EVAL_TASKS_METRIC, alone, score_of([100.0] * 15 + [0.0] * 5))["passed"]
