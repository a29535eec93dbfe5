"""Induction: turn an episode's evidence into a procedure, from its answer or (training only) the gold.

    procedure, found = induce(task, evidence, "Tamora", learned_from="hindsight")

Find the first passage (fewest hops from the task) that states the target as whole words, walk
its search back to the task through the spans each query came from, and write one hop per search:
the query as a template over the variables bound so far, the cue around the span it took, and
the entity its passage is about. The task's names and numbers that the path uses become the
slots of the template; every other value of the source task is left out or folded into a
variable, so the procedure applies to any task that reads the same around its slots.

With the gold answer (hindsight) this finds which of the agent's own steps had the answer within
reach even when the agent did not pick it, so a procedure can be learned before the agent first
succeeds. It never runs at test time: the agent calls it only when it writes memory.
"""

from __future__ import annotations

import re
from typing import Any

import pydantic

from memento.agent.evidence import path_to
from memento.agent.spans import find_answer, mentions, name_spans, task_values, cue_at
from memento.procedure import TASK_VARIABLE, Hop, Procedure, looks_like_value, normalize_space

MAX_PATHS = 8
"""Places of the answer tried, fewest hops first, before induction gives up."""


def locate(evidence: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    """Every place where `target` stands in a result, fewest hops from the task first: {search, passage, start, end, text}."""
    hits = []
    for entry in sorted(evidence, key=lambda e: (e["depth"], e["n"])):
        for number, passage in enumerate(entry["passages"]):
            where = find_answer(passage["text"], target)
            if where:
                hits.append({"search": entry["n"], "passage": number, "start": where[0], "end": where[1],
                             "text": passage["text"][where[0]:where[1]]})
    return hits


def induce(task: str, evidence: list[dict[str, Any]], targets: list[str], *, learned_from: str,
           avoid: list[Procedure] = ()) -> tuple[Procedure | None, dict[str, Any]]:
    """(procedure or None, what was found): a procedure whose run reproduces the first target reached.

    `avoid` holds procedures known to have failed on this task: a path that would give one of them
    again is passed over for the next place the target stands.
    """
    task_own = task_values(task)
    for target in targets:
        if any(target.strip().lower() == value.lower() for value in task_own.values()):
            return None, {"reached": False, "why": "the answer is one of the task's own values; no hop takes it"}
    hits = [hit for target in targets for hit in locate(evidence, target)]
    if not hits:
        return None, {"reached": False, "why": "no result of the episode held the answer"}
    why = "every path to the answer repeats a procedure that failed on this task"
    for hit in hits[:MAX_PATHS]:
        procedure, why_not = _from_path(task, task_own, evidence, hit, learned_from)
        if procedure is not None and not any(same_path(procedure, failed) for failed in avoid):
            return procedure, {"reached": True, **_where(hit, evidence)}
        why = why_not or why
    return None, {"reached": True, "why": why, **_where(hits[0], evidence)}


def same_path(one: Procedure, other: Procedure) -> bool:
    """Whether two procedures make the same hops (tools, queries and cues)."""
    def key(p: Procedure) -> list:
        return [(h.tool, h.query, h.cue.before, h.cue.after, h.cue.kind) for h in p.hops]
    return key(one) == key(other)


def _from_path(task: str, task_own: dict[str, str], evidence: list[dict[str, Any]], hit: dict[str, Any],
               learned_from: str) -> tuple[Procedure | None, str]:
    chain = path_to(evidence, hit["search"])
    links = [entry["parent"] for entry in chain[1:]] + [hit]
    # What the path read: its passages and the queries after the first (which is the task itself).
    used = " ".join(p["text"] for entry in chain for p in entry["passages"]) + " " + " ".join(e["query"] for e in chain[1:])
    parts = dict.fromkeys(part for value in task_own.values() if (part := _mentioned_part(value, used)))
    template, slots = _template(task, list(parts))
    values = dict(slots)
    hops = []
    for number, (entry, link) in enumerate(zip(chain, links), 1):
        query = _query_template(entry["query"], task, values)
        if query is None:
            return None, f"search {entry['n']}'s query {entry['query']!r} holds values no variable stands for"
        passage = entry["passages"][link["passage"]]
        about = next((name for name, value in reversed(values.items()) if mentions(passage["text"], value)), None)
        cue = cue_at(passage["text"], link["start"], link["end"], values)
        binds = f"v{number}"
        hops.append(Hop(tool=entry["tool"], query=query, cue=cue, binds=binds, about=about))
        values[binds] = link["text"]
    try:
        return Procedure(template=template, slots=list(slots), hops=hops, answer=hops[-1].binds,
                         learned_from=learned_from, note=_note(hops, learned_from)), ""
    except pydantic.ValidationError as error:  # e.g. one slot's value inside another's: no clean template
        return None, f"the path gives no valid procedure ({error.errors()[0]['msg']})"


def _mentioned_part(value: str, text: str) -> str | None:
    """`value` if the text mentions it, else its longest part between joining words that it does
    ("CEO of Kala Works" -> "Kala Works"), else None; only what a slot accepts back (`looks_like_value`)."""
    parts = [value] + [p.strip() for p in re.split(r"\b(?:of|de|von|van|the)\b", value, flags=re.IGNORECASE)]
    found = [p for p in parts if p and looks_like_value(p) and mentions(text, p)]
    return value if value in found else max(found, key=len, default=None)


def _where(hit: dict[str, Any], evidence: list[dict[str, Any]]) -> dict[str, Any]:
    entry = evidence[hit["search"]]
    return {"search": hit["search"], "depth": entry["depth"], "query": entry["query"],
            "passage_id": entry["passages"][hit["passage"]]["id"]}


def _template(task: str, values: list[str]) -> tuple[str, dict[str, str]]:
    """(the task with each value as a slot, {slot: value}), slots numbered t0, t1, ... in reading order.

    Longer values are placed first, so a name inside a longer one ("Washington" in "Washington
    Dulles International Airport") takes its own later occurrence or none.
    """
    template, marks = normalize_space(task), {}
    for number, value in enumerate(sorted(values, key=len, reverse=True)):
        mark = "\x02" + "\x01" * (number + 1) + "\x02"  # no word character, so no value can match inside it
        placed = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", mark, template, count=1, flags=re.IGNORECASE)
        if placed != template:
            template, marks[mark] = placed, value
    slots = {}
    for number, mark in enumerate(sorted(marks, key=template.index)):
        template = template.replace(mark, "{t" + str(number) + "}")
        slots[f"t{number}"] = marks[mark]
    return template, slots


def _query_template(query: str, task: str, values: dict[str, str]) -> str | None:
    """The query with variables for its values; None when a name in it is no variable's value."""
    if normalize_space(query).lower() == normalize_space(task).lower():
        return "{" + TASK_VARIABLE + "}"
    template = query
    for name, value in sorted(values.items(), key=lambda item: -len(item[1])):
        template = template.replace(value, "{" + name + "}")
    leftover = [template[s:e] for s, e in name_spans(template)]
    return None if leftover else template


def _note(hops: list[Hop], learned_from: str) -> str:
    steps = "; ".join(f"search {hop.query}, take the {hop.cue.kind} after '{' '.join(hop.cue.before)}'" for hop in hops)
    origin = {"answer": "the agent's own correct answer", "hindsight": "the gold answer, found in the agent's results",
              "reuse": "a reused procedure that worked again"}.get(learned_from, learned_from)
    return f"Use for tasks that read like the template. Learned from {origin}: {steps}."
