"""report.md: the run's tables in markdown, the plots, and how to reproduce it.

`format_tables(summary)` gives the same tables as text, for the terminal, and `error_line(summary)`
the line a command prints when episodes errored. The headline table is
the scored pass (the held-out test pass of the split protocol, else the last learning pass): EM
and F1 per arm with 95% bootstrap intervals over tasks, and each arm's paired difference to the
no-memory arm; an interval that excludes zero is starred.
"""

from __future__ import annotations

import json
from pathlib import Path

from memento.evals.manifest import MANIFEST_FILE
from memento.evals.config import NO_MEMORY
from memento.evals.records import EvalSummary, MetricRow
from memento.evals.stats import Estimate

DISTILL_FILE = "distillations.json"
"""Each memory arm's background distillations: when, at how many successes, the gate's before/after."""

DISTILL_SCORES = ("heldout_logprob", "heldout_em", "general_ppl", "general_qa_accuracy", "memory_tasks_reward")
"""The gate's scores a report shows, base -> adapter, where a run measured them."""


def _pass_label(row: MetricRow) -> str:
    return f"train {row.group}" if row.phase == "train" else "test"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _interval(value: Estimate | None, *, signed: bool = False) -> str:
    """'0.433 [0.267, 0.600]'; a signed difference is starred when its interval excludes zero."""
    if value is None:
        return "-"
    form = "+.3f" if signed else ".3f"
    text = f"{value.mean:{form}} [{value.low:{form}}, {value.high:{form}}]"
    return text + " *" if signed and value.excludes_zero else text


def _scored_label(summary: EvalSummary) -> str:
    return "held-out test pass" if summary.protocol == "split" else f"last learning pass ({summary.iterations})"


def headline_table(summary: EvalSummary) -> str:
    """The scored pass per arm: n, EM and F1 with 95% intervals, and the paired differences to no memory."""
    phase, group = summary.scored_pass
    paired = NO_MEMORY in summary.arms
    header = ["arm", "n", "EM [95% CI]", "F1 [95% CI]",
              *([f"ΔEM vs {NO_MEMORY} [95% CI]", f"ΔF1 vs {NO_MEMORY} [95% CI]"] if paired else [])]
    rows = []
    for arm in summary.arms:
        scores = summary.interval(arm, phase, group)
        if scores is None:
            continue
        cells = [arm, str(scores.n), _interval(scores.em), _interval(scores.f1)]
        if paired:
            difference = summary.difference(arm, phase, group)
            cells += [_interval(difference and difference.em, signed=True),
                      _interval(difference and difference.f1, signed=True)]
        rows.append(cells)
    return _table(header, rows)


def difference_table(summary: EvalSummary) -> str:
    """Every pass's paired difference to the no-memory arm (train passes, then the test pass)."""
    header = ["arm", "pass", "pairs", f"ΔEM vs {NO_MEMORY} [95% CI]", f"ΔF1 vs {NO_MEMORY} [95% CI]"]
    rows = [[d.arm, f"train {d.group}" if d.phase == "train" else "test", str(d.pairs),
             _interval(d.em, signed=True), _interval(d.f1, signed=True)] for d in summary.versus_baseline]
    return _table(header, rows)


def cost_table(summary: EvalSummary) -> str:
    """What an episode cost per arm and phase: wall time (mean and median), LLM calls, tokens, steps."""
    header = ["arm", "phase", "episodes", "s/ep (mean)", "s/ep (median)", "LLM calls/ep", "prompt tokens/ep",
              "completion tokens/ep", "steps/ep"]
    rows = [[c.arm, c.phase, str(c.episodes), f"{c.seconds:.1f}", f"{c.seconds_median:.1f}",
             "-" if c.llm_calls is None else f"{c.llm_calls:.1f}", f"{c.prompt_tokens:.0f}",
             f"{c.completion_tokens:.0f}", f"{c.steps:.1f}"] for c in summary.costs]
    return _table(header, rows)


def em_by_pass_table(summary: EvalSummary) -> str:
    """Exact match (and F1) per pass, one column per arm: the table the README quotes."""
    passes = list(dict.fromkeys(_pass_label(r) for r in summary.by_iteration))
    rows = []
    for label in passes:
        cells = [label]
        for arm in summary.arms:
            row = next((r for r in summary.by_iteration if r.arm == arm and _pass_label(r) == label), None)
            cells.append("-" if row is None else f"{row.em:.3f} / {row.f1:.3f} (n={row.n})")
        rows.append(cells)
    return _table(["pass", *(f"{arm}: EM / F1" for arm in summary.arms)], rows)


def detail_table(rows: list[MetricRow], first: str, label) -> str:
    """Every metric of each row; `first` names the grouping column and `label` renders it."""
    judged = any(r.pm is not None for r in rows)
    max_k = max((len(r.pass_at_k) for r in rows), default=0)
    header = ["arm", first, "n", "EM", "F1", *(["PM"] if judged else []),
              *([f"Pass@{k}" for k in range(1, max_k + 1)] if max_k > 1 else []),
              "reward", "cases shown", "same-task shown", "same-task excluded", "errors", "tokens/ep", "s/ep"]
    body = []
    for r in rows:
        cells = [r.arm, label(r), str(r.n), _number(r.em), _number(r.f1), *([_number(r.pm)] if judged else [])]
        if max_k > 1:
            cells += [_number(r.pass_at_k.get(str(k))) for k in range(1, max_k + 1)]
        cells += [_number(r.reward), f"{r.cases_shown:.1f}", str(r.same_task_shown), str(r.same_task_excluded),
                  str(r.errors), f"{r.prompt_tokens + r.completion_tokens:.0f}", f"{r.seconds:.1f}"]
        body.append(cells)
    return _table(header, body)


def distillation_table(runs: dict[str, list[dict]]) -> str:
    """One row per distillation run of each arm: when, the outcome, and each gate score before -> after."""
    measured = [name for name in DISTILL_SCORES
                if any(name in (run.get("before") or {}) for arm_runs in runs.values() for run in arm_runs)]
    header = ["arm", "run", "successes", "status", "version", "promoted"] + [f"{m} base → adapter" for m in measured]
    body = []
    for arm, arm_runs in runs.items():
        for run in arm_runs:
            before, after = run.get("before") or {}, run.get("after") or {}
            status = run.get("status", "?")
            if status == "failed":
                status = f"failed: {run.get('error', '')[:80]}"
            elif status == "done" and not run.get("gate_passed"):
                status = f"rejected ({', '.join(run.get('failed') or [])})"
            cells = [arm, str(run.get("run", "")), str(run.get("successes", "")), status, str(run.get("version", "-")),
                     "yes" if run.get("promoted") else "no"]
            cells += [f"{_score(before.get(m))} → {_score(after.get(m))}" for m in measured]
            body.append(cells)
    return _table(header, body)


def _score(score: dict | None) -> str:
    return "-" if not score or score.get("mean") is None else f"{score['mean']:.3f}"


def format_tables(summary: EvalSummary) -> str:
    """The headline table with its intervals, the costs, the exact-match table and the per-pass details,
    as markdown text for the terminal."""
    parts = []
    if summary.intervals:
        parts += [f"{_scored_label(summary)}, 95% bootstrap intervals over tasks (* excludes zero):",
                  headline_table(summary), ""]
    if len(summary.versus_baseline) > 1:
        parts += [difference_table(summary), ""]
    if summary.costs:
        parts += [cost_table(summary), ""]
    parts += [em_by_pass_table(summary), "", detail_table(summary.by_iteration, "pass", _pass_label)]
    return "\n".join(parts)


def error_line(summary: EvalSummary, *, resume: str = "run the same command again") -> str | None:
    """One line for a run whose episodes errored (None when none did): how many, the first error, the fix.

    `resume` says how to finish the run; it retries the errored episodes and keeps the others.
    """
    if not summary.errored_episodes:
        return None
    line = (f"{summary.errored_episodes} of {summary.episodes} episodes errored (scored as wrong answers), the first: "
            f"{summary.first_error}; fix the cause, then {resume} to retry them (episodes that finished are kept)")
    return " ".join(line.split())  # one line, whatever the error's own message holds


def write_report(summary: EvalSummary, path: str | Path, *, plots: list[Path] = ()) -> Path:
    """Write report.md beside the summary; reads manifest.json from the same folder when it is there."""
    path = Path(path)
    manifest_path = path.parent / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    scored = "test pass" if summary.protocol == "split" else f"last pass ({summary.iterations})"
    lines = [
        f"# Continual-learning eval: `{summary.run_dir}`",
        "",
        f"Protocol **{summary.protocol}**, {summary.iterations} learning pass(es), {summary.attempts} attempt(s) per "
        f"task, arms {', '.join(summary.arms)}. Episodes {summary.episodes} of {summary.expected_episodes}"
        f"{f', {summary.errored_episodes} errored' if summary.errored_episodes else ''}"
        f"{'' if summary.complete else ' (incomplete: run the same command again to resume)'}. "
        f"Episode wall time {summary.episode_seconds:.0f} s; this invocation took {summary.elapsed_s:.0f} s.",
        "",
    ]
    if summary.errored_episodes:
        lines += [f"**{summary.errored_episodes} episodes errored** and are scored as wrong answers; running the "
                  f"same command again retries them. The first: `{summary.first_error}`", ""]
    if summary.intervals:
        lines += [f"## {_scored_label(summary).capitalize()}: EM and F1 with 95% confidence intervals", "",
                  headline_table(summary), "",
                  f"Means over tasks (a task's attempts averaged first); intervals from a percentile bootstrap over "
                  f"tasks. Δ is the arm minus the `{NO_MEMORY}` arm on the same tasks and attempts, with the "
                  f"bootstrap interval of the paired difference; * marks an interval that excludes zero.", ""]
    if len(summary.versus_baseline) > 1:
        lines += [f"## Against `{NO_MEMORY}`, pass by pass", "", difference_table(summary), ""]
    if summary.costs:
        lines += ["## What an episode costs", "", cost_table(summary), ""]
    lines += [
        "## Exact match by pass",
        "",
        em_by_pass_table(summary),
        "",
        "## Every metric by pass",
        "",
        detail_table(summary.by_iteration, "pass", _pass_label),
    ]
    if len({r.group for r in summary.by_source}) > 1:
        lines += ["", f"## By source ({scored})", "", detail_table(summary.by_source, "source", lambda r: r.group)]
    if summary.by_domain:
        lines += ["", f"## In-domain against out-of-domain ({scored})", "",
                  detail_table(summary.by_domain, "domain", lambda r: r.group)]
    distillations_path = path.parent / DISTILL_FILE
    if distillations_path.exists():
        runs = json.loads(distillations_path.read_text(encoding="utf-8"))
        lines += ["", "## Distillations", "", distillation_table(runs), "",
                  "Each row is one background distillation of an arm's bank (`EvalConfig.distill`): the gate's "
                  "scores for the base model -> base + the candidate adapter, and whether it was promoted. The "
                  "episodes after a promotion use the adapter: each memory arm's LLM follows its bank's registry "
                  "(`distilled_from`, on every backend)."]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    lines += ["", "## Reading the columns", "",
              "EM and F1 come from the task source's scorer; PM is the LLM judge's grade (its prompt and every "
              "verdict are in manifest.json and episodes.jsonl). Pass@k is the unbiased estimate over each task's "
              "attempts. *Cases shown* is the mean number of past cases the agent saw; *same-task shown* counts "
              "shown cases whose task text equals the task (memory of the very question, expected in the iterated "
              "protocol); *same-task excluded* counts those the clean-split guard removed in the test pass."]
    if manifest:
        model = manifest.get("model", {})
        git = manifest.get("git", {})
        lines += ["", "## Reproduce", "",
                  f"- model: {model.get('backend')} `{model.get('model')}`"
                  + (f" (sha256 {model['model_sha256'][:16]}…)" if model.get("model_sha256") else ""),
                  f"- code: git {git.get('commit')}{' with uncommitted changes' if git.get('dirty') else ''}",
                  f"- config fingerprint {manifest.get('fingerprint')}; full config, seeds, data file hashes and "
                  f"package versions in `manifest.json`",
                  f"- command: `{' '.join(manifest.get('invocations', [{}])[-1].get('command', []))}`"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
