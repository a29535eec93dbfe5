"""Recall: run a remembered procedure on a new task.

The task's values are bound to the procedure's slots by its template (span matching, no model
call). Each hop then calls its tool with its query filled in, keeps the passages that mention the
entity it is about, and takes the span its cue points at: when one span matches the cue best, it
is taken as is; when several tie, the model picks among them with their sentences in view (a
short constrained call). A hop whose cue matches nothing ends the run: the procedure does not
fit this task after all, and the agent falls back to exploring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memento.agent.choice import choose
from memento.agent.evidence import as_step, call_for_passages, record_search
from memento.agent.spans import candidate_spans, cue_needs, cue_score, mentions, overlaps_value
from memento.procedure import TASK_VARIABLE, Hop, Procedure, fill

MAX_TIED = 5
"""Most tied spans shown to the model in one pick."""


@dataclass
class RecallRun:
    """What running one procedure did."""

    answer: str | None = None
    """The answer, or None when a hop failed."""
    values: dict[str, str] = field(default_factory=dict)
    failure: str = ""
    llm_picks: int = 0


def run_procedure(procedure: Procedure, values: dict[str, str], task: str, tools: dict[str, Any], llm: Any,
                  config: Any, evidence: list[dict[str, Any]], steps: list[dict[str, Any]]) -> RecallRun:
    """Run `procedure` with its slots bound to `values`; evidence and steps are appended to the given lists."""
    run = RecallRun(values=dict(values))
    parent = None
    for number, hop in enumerate(procedure.hops, 1):
        tool = tools.get(hop.tool)
        if tool is None:
            run.failure = f"hop {number} needs tool {hop.tool!r}, which this agent does not have"
            return run
        query = fill(hop.query, {**run.values, TASK_VARIABLE: task})
        passages, _, seconds = call_for_passages(tool, query, config.explore_k)
        entry = record_search(evidence, hop.tool, query, passages, parent=parent, depth=number - 1)
        steps.append(as_step(entry, f"recall: hop {number} of {len(procedure.hops)} takes {{{hop.binds}}}",
                             seconds, config.max_observation_chars))
        taken = _take(hop, entry, run, task, llm, config)
        if taken is None:
            run.failure = f"hop {number}: no span in the results of {query!r} matched the cue '{' '.join(hop.cue.before)}'"
            return run
        passage, span = taken
        run.values[hop.binds] = span.text
        parent = {"search": entry["n"], "passage": passage, "start": span.start, "end": span.end, "text": span.text}
    run.answer = run.values.get(procedure.answer)
    return run


def _take(hop: Hop, entry: dict[str, Any], run: RecallRun, task: str, llm: Any, config: Any):
    """(passage index, span) the hop's cue points at in the search's passages, or None."""
    about = run.values.get(hop.about) if hop.about else None
    passages = list(enumerate(entry["passages"]))
    if about:
        passages = [(n, p) for n, p in passages if mentions(p["text"], about) or mentions(p["title"], about)] or passages
    needed = cue_needs(hop.cue)
    scored = []
    for number, passage in passages:
        for span in candidate_spans(passage["text"], hop.cue.kind, hop.cue.words):
            if not overlaps_value(span, run.values):
                scored.append((cue_score(span, hop.cue, run.values), number, span))
    if not scored:
        return None
    best = max(score for score, _, _ in scored)
    if best[0] < needed:
        return None
    tied = [(number, span) for score, number, span in scored if score == best]
    by_text = {span.text: (number, span) for number, span in reversed(tied)}  # first occurrence wins
    if len(by_text) == 1:
        return next(iter(by_text.values()))
    options = list(by_text)[:MAX_TIED]
    facts = list(dict.fromkeys(by_text[o][1].sentence for o in options))
    chosen, how = choose(llm, task, facts, options, max_tokens=config.answer_max_tokens, temperature=config.temperature)
    run.llm_picks += how == "llm"
    return by_text[chosen] if chosen else None
