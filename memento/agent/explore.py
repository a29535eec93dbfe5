"""Exploration: what the agent does when no remembered procedure fits the task.

A bounded breadth-first search over the corpus, then one constrained LLM choice:

    search(task)                          the passages about the task's names
      search(name) for names found there  one hop further (at most `explore_breadth`)
        search(name) for names found there  and one more (2 per search), up to `explore_depth` levels
    choose the answer among the spans whose sentences share most words with the question

Tool calls are cheap (a BM25 query takes milliseconds); model calls are not, so exploration makes
many of the first and one of the second. Every search is recorded as evidence with the span it
came from, so that induction can later walk back from the passage that held the answer.
"""

from __future__ import annotations

from typing import Any

from memento.agent.choice import choose
from memento.agent.evidence import as_step, call_for_passages, record_search
from memento.agent.spans import candidate_spans, content_stems, overlaps_value, task_values


def explore(task: str, tool: Any, llm: Any, config: Any, evidence: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Search outward from the task, then let the model pick the answer; returns a state update.

    `evidence` is what the episode recorded before (new searches are numbered after it); the
    update holds only the new searches.
    """
    evidence = list(evidence or [])
    first_new = len(evidence)
    steps = search_outward(task, tool, config, evidence)
    options, facts = _answer_options(task, evidence[first_new:], task_values(task), config.answer_options)
    answer, how = choose(llm, task, facts, options, max_tokens=config.answer_max_tokens, temperature=config.temperature)
    notes = [] if answer else [f"explore: no answer chosen ({how}, {len(options)} options)"]
    return {"answer": answer or "", "evidence": evidence[first_new:], "trajectory": steps, "notes": notes,
            "answered_by": "explore"}


def search_outward(task: str, tool: Any, config: Any, evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The breadth-first searches alone (no model call), appended to `evidence`; returns their trajectory steps."""
    steps: list[dict[str, Any]] = []
    known = task_values(task)
    queried = {task.lower()}

    def search(query: str, k: int, parent: dict[str, Any] | None, depth: int) -> dict[str, Any]:
        passages, _, seconds = call_for_passages(tool, query, k)
        entry = record_search(evidence, tool.name, query, passages, parent=parent, depth=depth)
        steps.append(as_step(entry, f"explore: search at depth {depth}", seconds, config.max_observation_chars))
        queried.add(query.lower())
        return entry

    level = [search(task, config.explore_k, None, 0)]
    for depth in range(1, config.explore_depth):
        breadth = config.explore_breadth if depth == 1 else 2
        next_level = []
        for entry in level:
            for link in _new_names(entry, known, queried)[:breadth]:
                next_level.append(search(link["text"], 2, link, depth))
        level = next_level
    return steps


def _new_names(entry: dict[str, Any], known: dict[str, str], queried: set[str]) -> list[dict[str, Any]]:
    """Names in a search's passages not searched yet and not the task's own, as parent links, best passage first."""
    links, seen = [], set()
    for number, passage in enumerate(entry["passages"]):
        for span in candidate_spans(passage["text"], "name"):
            key = span.text.lower()
            if key in seen or key in queried or overlaps_value(span, known):
                continue
            seen.add(key)
            links.append({"search": entry["n"], "passage": number, "start": span.start, "end": span.end, "text": span.text})
    return links


def _answer_options(task: str, evidence: list[dict[str, Any]], known: dict[str, str],
                    limit: int) -> tuple[list[str], list[str]]:
    """The `limit` spans whose sentences share most content words with the task, and those sentences."""
    question = content_stems(task)
    best: dict[str, tuple[int, int, str]] = {}
    order = 0
    for entry in evidence:
        for passage in entry["passages"]:
            for kind in ("name", "number"):
                for span in candidate_spans(passage["text"], kind):
                    if overlaps_value(span, known):
                        continue
                    overlap = len(question & content_stems(span.sentence))
                    order += 1
                    if span.text not in best or overlap > best[span.text][0]:
                        best[span.text] = (overlap, -order, span.sentence)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], -item[1][1]))[:limit]
    options = [text for text, _ in ranked]
    facts = list(dict.fromkeys(sentence for _, (_, _, sentence) in ranked))
    return options, facts
