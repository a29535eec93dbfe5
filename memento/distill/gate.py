"""The gate: an adapter is used only after it has shown it did no harm.

    report = run_gate(model, tokenizer, heldout=data.heldout, previous=("previous", old_heldout))
    report["passed"], [c["why"] for c in report["checks"]]

Base vs base+adapter (`model` is a peft model whose active adapter is the candidate) on
(a) the held-out distilled cases: the candidate must do better than the base (`min_gain`);
(b) the eval runner's tasks with memory on, when the caller passes `memory_tasks`: a callable that
    runs them with the model as it is and returns each task's reward; the gate calls it with the
    adapter off (memory alone) and on (adapter + memory). memento's library cannot run an eval
    itself (it never imports memento.evals): `memento.evals.distill_memory` builds the callable
    from a run folder. Without it the report says the check was not run;
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

EVAL_TASKS_NOT_RUN = ("(b) the eval tasks with memory on were not run: pass memory_tasks (e.g. "
                      "memento.evals.distill_memory.memory_task_scorer(run_dir)) to compare against memory alone")

MEMORY_TASKS = "memory_tasks_reward"
"""Check (b)'s score: the mean reward on the eval tasks with memory on, as a percentage."""


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
                                MEMORY_TASKS)
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
             memory_tasks: Callable[[Any, Any], Sequence[float]] | None = None) -> dict[str, Any]:
    """Measure base and candidate (and the previous adapter on its own cases) and apply the rule.

    `base_scores` (the base's `probe` on the same items) saves measuring the base again when
    several candidates are gated against one base. `memory_tasks(model, tokenizer)` returns the
    reward (0 to 1) of each eval task run with memory on by the model as it is (check b).
    """
    rule = rule or GateRule()
    kwargs = {"heldout": heldout, "general_text": general_text, "general_qa": general_qa, "generate": generate}
    if base_scores is None:
        with adapter_off(model):
            base_scores = probe(model, tokenizer, **kwargs)
    base = dict(base_scores)  # check (b) adds to it; the caller's dict is left as it was
    model.set_adapter(candidate)
    cand = probe(model, tokenizer, **kwargs)
    reference = dict(base)
    if previous is not None and previous[1]:
        name, examples = previous
        cand.update(probe(model, tokenizer, heldout=examples, generate=False, prefix="previous_heldout"))
        model.set_adapter(name)
        reference.update(probe(model, tokenizer, heldout=examples, generate=False, prefix="previous_heldout"))
        model.set_adapter(candidate)
    eval_tasks = {"status": "not_run", "why": EVAL_TASKS_NOT_RUN}
    if memory_tasks is not None:
        with adapter_off(model):
            alone = memory_tasks(model, tokenizer)
        with_adapter = memory_tasks(model, tokenizer)
        if len(alone) != len(with_adapter) or not alone:
            raise ValidationError(f"memory_tasks returned {len(alone)} rewards with the adapter off and "
                                  f"{len(with_adapter)} with it on; it must score the same tasks, at least one")
        if not all(0.0 <= float(r) <= 1.0 for r in [*alone, *with_adapter]):
            raise ValidationError(f"memory_tasks returned {[*alone, *with_adapter][:6]!r}: each reward must lie "
                                  f"in [0, 1] (0 failure, 1 success)")
        reference[MEMORY_TASKS] = base[MEMORY_TASKS] = score_of([100.0 * r for r in alone])
        cand[MEMORY_TASKS] = score_of([100.0 * r for r in with_adapter])
        eval_tasks = {"status": "run", "tasks": len(alone), "memory_alone": base[MEMORY_TASKS].mean,
                      "adapter_and_memory": cand[MEMORY_TASKS].mean,
                      "adapter_beats_memory_alone": cand[MEMORY_TASKS].mean > base[MEMORY_TASKS].mean}
    checks = [_improvement_check(rule, base, cand)]
    checks += [_guard_check(rule, name, reference[name], cand[name]) for name in rule.guarded if name in cand]
    return {
        "passed": all(c["passed"] for c in checks),
        "rule": asdict(rule),
        "checks": checks,
        "failed": [c["metric"] for c in checks if not c["passed"]],
        "eval_tasks": eval_tasks,
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
    which = ("(d) previous adapter's held-out cases" if name.startswith("previous_")
             else "(b) eval tasks with memory on" if name == MEMORY_TASKS else "(c) general probe")
    reasons = []
    if too_far:
        reasons.append(f"drops {points:.2f} points, more than {rule.max_drop_points}")
    if outside:
        reasons.append(f"its 95% CI [{candidate.ci[0]:.4f}, {candidate.ci[1]:.4f}] excludes the reference {reference.mean:.4f}")
    why = "; ".join(reasons) or f"drops {points:.2f} points (at most {rule.max_drop_points}), CI holds the reference"
    return {"check": which, "metric": name, "reference": reference.mean, "candidate": candidate.mean,
            "candidate_ci95": list(candidate.ci), "drop_points": points, "passed": not reasons,
            "why": f"{name} {reference.mean:.4f} -> {candidate.mean:.4f}: {why}"}


def _dicts(scores: dict[str, Score]) -> dict[str, Any]:
    return {name: score.to_dict() for name, score in scores.items()}
