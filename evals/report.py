"""report.md: the run's tables in markdown, the plots, and how to reproduce it.

`format_tables(summary)` gives the same tables as text, for the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path

from evals.manifest import MANIFEST_FILE
from evals.records import EvalSummary, MetricRow


def _pass_label(row: MetricRow) -> str:
    return f"train {row.group}" if row.phase == "train" else "test"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


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


def format_tables(summary: EvalSummary) -> str:
    """The exact-match table and the per-pass details, as markdown text for the terminal."""
    parts = [em_by_pass_table(summary), "", detail_table(summary.by_iteration, "pass", _pass_label)]
    return "\n".join(parts)


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
        f"{'' if summary.complete else ' (incomplete: run the same command again to resume)'}. "
        f"Episode wall time {summary.episode_seconds:.0f} s; this invocation took {summary.elapsed_s:.0f} s.",
        "",
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
