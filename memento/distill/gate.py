"""The gate: an adapter is used only after it has shown it did no harm.

    report = run_gate(model, tokenizer, heldout=data.heldout, previous=("previous", old_heldout))
    report["passed"], [c["why"] for c in report["checks"]]

Base vs base+adapter (`model` is a peft model whose active adapter is the candidate) on
(a) the held-out distilled cases: the candidate must do better than the base (`min_gain`);
(b) the eval runner's tasks with memory on: not run here (the report says so);
(c) the general probe: perplexity on held-out general text and accuracy on general questions;
(d) the previous adapter's own held-out cases, against that adapter's score on them.
A guarded score (c, d) fails when it drops by more than `max_drop_points` or when the candidate's
95% interval lies wholly on the worse side of the reference score. Points are percentage points for
accuracies, and percent for the likelihood scores (perplexity up, per-token probability down), so
one threshold reads the same on all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from memento.distill.general_text import GENERAL_QA, PROBE_PASSAGES, GeneralQuestion
from memento.distill.probe import Score, adapter_off, probe, score_of
from memento.distill.selection import Example
from memento.errors import ValidationError

EVAL_TASKS_NOT_RUN = ("(b) the eval tasks with memory on were not run: pass run_gate an eval_tasks scorer (e.g. "
                      "memento.evals.distill_tasks) to compare adapter + memory against memory alone")
EVAL_TASKS_METRIC = "eval_tasks_reward"
"""Check (b)'s score: the mean reward (in %) of the runner's eval tasks with memory on."""

EvalTasks = Callable[[bool], Sequence[float]]
"""Check (b)'s hook: called with False (adapter off) and True (adapter on), it runs the same eval tasks
with memory on, in the same order, and returns each task's reward in [0, 1]. memento core cannot run
the evals itself (it never imports memento.evals), so the caller hands the scorer in."""


@dataclass
class GateRule:
    """When a candidate adapter is rejected (the issue's default: 2 points, 95% CI, must improve)."""

    max_drop_points: float = 2.0
    """Reject when a guarded score (general probe, previous adapter's cases) drops by more than this."""
    ci_check: bool = True
    """Reject when the candidate's 95% CI on a guarded score lies wholly on the worse side of the reference."""
    improve_metric: str = "heldout_logprob"
    """The held-out score that must improve: heldout_logprob, heldout_em or heldout_f1."""
    min_gain: float = 0.0
    """It must improve by more than this (nats per token for log-probability, points for EM/F1)."""
    guarded: tuple[str, ...] = ("general_ppl", "general_qa_accuracy", "general_qa_logprob", "previous_heldout_logprob",
                                EVAL_TASKS_METRIC)
    """Scores that must not drop; those not measured (no previous adapter) are skipped."""

    def __post_init__(self) -> None:
        self.guarded = tuple(self.guarded)
        if self.improve_metric not in ("heldout_logprob", "heldout_em", "heldout_f1"):
            raise ValidationError(f"improve_metric={self.improve_metric!r}; choose heldout_logprob, heldout_em or heldout_f1")
        if self.max_drop_points < 0:
            raise ValidationError(f"max_drop_points={self.max_drop_points} must be >= 0 (points a guarded score may lose)")


def drop_points(name: str, reference: float, candidate: float) -> float:
    """How many points the candidate lost against the reference (negative: it gained)."""
    if name.endswith("_ppl"):
        return 100.0 * (candidate / reference - 1.0)
    if name.endswith("_logprob"):
        return 100.0 * (1.0 - math.exp(candidate - reference))
    return reference - candidate  # accuracies, EM and F1 are already in %


def ci_worse(name: str, reference: float, candidate: Score) -> bool:
    """True when the candidate's whole 95% interval is on the worse side of the reference score."""
    low, high = candidate.ci
    return low > reference if name.endswith("_ppl") else high < reference


def run_gate(model: Any, tokenizer: Any, *, heldout: Sequence[Example], rule: GateRule | None = None,
             general_text: Sequence[str] = PROBE_PASSAGES, general_qa: Sequence[GeneralQuestion] = GENERAL_QA,
             previous: tuple[str, Sequence[Example]] | None = None, candidate: str = "candidate",
             generate: bool = True, base_scores: dict[str, Score] | None = None,
             eval_tasks: EvalTasks | None = None) -> dict[str, Any]:
    """Measure base and candidate (and the previous adapter on its own cases) and apply the rule.

    `base_scores` (the base's `probe` on the same items) saves measuring the base again when
    several candidates are gated against one base. `eval_tasks` runs check (b): memory alone against
    adapter + memory on the runner's tasks, guarded like (c) and (d) (drop in points, 95% CI).
    """
    rule = rule or GateRule()
    kwargs = {"heldout": heldout, "general_text": general_text, "general_qa": general_qa, "generate": generate}
    if base_scores is None:
        with adapter_off(model):
            base_scores = probe(model, tokenizer, **kwargs)
    base = base_scores
    model.set_adapter(candidate)
    cand = probe(model, tokenizer, **kwargs)
    reference = dict(base)
    if previous is not None and previous[1]:
        name, examples = previous
        cand.update(probe(model, tokenizer, heldout=examples, generate=False, prefix="previous_heldout"))
        model.set_adapter(name)
        reference.update(probe(model, tokenizer, heldout=examples, generate=False, prefix="previous_heldout"))
        model.set_adapter(candidate)
    tasks_report: dict[str, Any] = {"status": "not_run", "why": EVAL_TASKS_NOT_RUN}
    if eval_tasks is not None:
        with adapter_off(model):
            alone = _task_rewards(eval_tasks, False)
        model.set_adapter(candidate)
        with_adapter = _task_rewards(eval_tasks, True)
        if alone.n != with_adapter.n:
            raise ValidationError(f"eval_tasks returned {alone.n} rewards with the adapter off and "
                                  f"{with_adapter.n} with it on; it must score the same tasks both times")
        reference[EVAL_TASKS_METRIC], cand[EVAL_TASKS_METRIC] = alone, with_adapter
        tasks_report = {"status": "run", "n": alone.n, "memory_alone": alone.to_dict(),
                        "adapter_and_memory": with_adapter.to_dict()}
    checks = [_improvement_check(rule, base, cand)]
    checks += [_guard_check(rule, name, reference[name], cand[name]) for name in rule.guarded if name in cand]
    return {
        "passed": all(c["passed"] for c in checks),
        "rule": asdict(rule),
        "checks": checks,
        "failed": [c["metric"] for c in checks if not c["passed"]],
        "eval_tasks": tasks_report,
        "scores": {"base": _dicts(base), "candidate": _dicts(cand),
                   "previous_adapter": _dicts({k: v for k, v in reference.items() if k.startswith("previous_")})},
    }


def _improvement_check(rule: GateRule, base: dict[str, Score], cand: dict[str, Score]) -> dict[str, Any]:
    name = rule.improve_metric
    if name not in cand:
        return {"check": "(a) held-out distilled cases", "metric": name, "passed": False,
                "why": f"{name} was not measured (no held-out cases, or generation off); keep held-out cases"}
    gain = cand[name].mean - base[name].mean
    passed = gain > rule.min_gain
    return {"check": "(a) held-out distilled cases", "metric": name, "reference": base[name].mean,
            "candidate": cand[name].mean, "gain": gain, "passed": passed,
            "why": f"{name} {base[name].mean:.4f} -> {cand[name].mean:.4f} (gain {gain:+.4f}, "
                   f"{'more' if passed else 'not more'} than min_gain {rule.min_gain})"}


def _guard_check(rule: GateRule, name: str, reference: Score, candidate: Score) -> dict[str, Any]:
    points = drop_points(name, reference.mean, candidate.mean)
    too_far = points > rule.max_drop_points
    outside = rule.ci_check and ci_worse(name, reference.mean, candidate)
    which = ("(d) previous adapter's held-out cases" if name.startswith("previous_") else
             "(b) eval tasks with memory on" if name == EVAL_TASKS_METRIC else "(c) general probe")
    reasons = []
    if too_far:
        reasons.append(f"drops {points:.2f} points, more than {rule.max_drop_points}")
    if outside:
        reasons.append(f"its 95% CI [{candidate.ci[0]:.4f}, {candidate.ci[1]:.4f}] excludes the reference {reference.mean:.4f}")
    why = "; ".join(reasons) or f"drops {points:.2f} points (at most {rule.max_drop_points}), CI holds the reference"
    return {"check": which, "metric": name, "reference": reference.mean, "candidate": candidate.mean,
            "candidate_ci95": list(candidate.ci), "drop_points": points, "passed": not reasons,
            "why": f"{name} {reference.mean:.4f} -> {candidate.mean:.4f}: {why}"}


def _task_rewards(eval_tasks: EvalTasks, adapter_on: bool) -> Score:
    rewards = [float(r) for r in eval_tasks(adapter_on)]
    if not rewards or not all(0.0 <= r <= 1.0 for r in rewards):
        raise ValidationError(f"eval_tasks(adapter_on={adapter_on}) returned {rewards[:5]!r}: it must return at least "
                              f"one reward, each in [0, 1]")
    return score_of([100.0 * r for r in rewards])


def _dicts(scores: dict[str, Score]) -> dict[str, Any]:
    return {name: score.to_dict() for name, score in scores.items()}
