"""A procedure: the reusable part of a case, a recipe of tool calls with the task's values as variables.

An episode that found its answer (or, on a training task, one whose results held the gold answer:
hindsight) is turned into a procedure by `memento.agent.induction`. Task-specific values are
replaced by variables: `t0, t1, ...` stand for spans of the task text, `v1, v2, ...` for spans a
hop took from a tool result. Nothing of the source task stays in it, so it applies to any task
whose text fits its template:

    Procedure(template="In which city was the founder of {t0} born?", slots=["t0"], hops=[
        Hop(tool="search", query="{task}", cue=Cue(before=["founded", "in", "#", "by"]), binds="v1", about="t0"),
        Hop(tool="search", query="{v1}", cue=Cue(before=["who", "was", "born", "in"]), binds="v2", about="v1"),
    ], answer="v2", outcome="success")

A look-alike task ("... the CEO of {t0} born?") does not fit this template, so the agent never runs a
founder's procedure on a CEO question, however similar the two read. This module holds the data and
the template matching; running a procedure is `memento.agent.recall`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

VARIABLE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
TASK_VARIABLE = "task"
"""`{task}` in a query stands for the whole task text."""


class Cue(BaseModel):
    """Where the wanted span stands in a tool result: the words just before and after it.

    Words are lowercased, digits become '#', and a variable's value appears as `{name}`, so the cue
    carries no value of the task it was learned from.
    """

    model_config = ConfigDict(extra="forbid")

    before: list[str] = Field(default_factory=list)
    """Up to four words right before the span, nearest last."""
    after: list[str] = Field(default_factory=list)
    """Up to two words right after the span, nearest first."""
    kind: Literal["name", "number", "phrase"] = "name"
    """What the span is: a capitalised name, a number, or `words` plain words."""
    words: int = Field(default=1, ge=1, le=8)
    """Length in words of a 'phrase' span."""


class Hop(BaseModel):
    """One step: call a tool with `query`, then take the span that `cue` points at as variable `binds`."""

    model_config = ConfigDict(extra="forbid")

    tool: str = "search"
    query: str
    """The tool input, a template over variables: '{task}', '{v1}', '{t0} {v1}'."""
    cue: Cue
    binds: str
    """The variable the span becomes."""
    about: str | None = None
    """A variable whose value the result passage must mention (the entity this hop asks about)."""


class Procedure(BaseModel):
    """A recipe of hops over variables, the template of tasks it fits, and what came of it."""

    model_config = ConfigDict(extra="forbid")

    template: str
    """The task with its variable spans as `{t0}`, `{t1}`...: a task fits when it reads the same around them."""
    slots: list[str] = Field(default_factory=list)
    """The task variables in the template, in order."""
    hops: list[Hop] = Field(default_factory=list)
    answer: str
    """The variable whose value is the answer (a hop's `binds`, or a slot)."""
    outcome: Literal["success", "failure"] = "success"
    """'failure': kept as a warning; the agent does not run failed procedures."""
    learned_from: Literal["answer", "hindsight", "reuse", "edit"] = "answer"
    """How it was made: from a correct answer, from the gold answer after the episode, by reusing another case's."""
    note: str = ""
    """When to use it, or what went wrong."""

    @field_validator("template")
    @classmethod
    def _template_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("procedure template is empty; it is the task text with variables as {t0}, {t1}, ...")
        return value

    @model_validator(mode="after")
    def _variables_are_bound(self) -> Procedure:
        in_template = VARIABLE.findall(self.template)
        if in_template != self.slots:
            raise ValueError(f"procedure template variables {in_template} must be its slots {self.slots}, in order")
        known = {TASK_VARIABLE, *self.slots}
        for number, hop in enumerate(self.hops, 1):
            used = set(VARIABLE.findall(hop.query)) | ({hop.about} if hop.about else set())
            unknown = used - known
            if unknown:
                raise ValueError(f"hop {number} uses {sorted(unknown)} before any hop binds them; "
                                 f"known then: {sorted(known)}")
            known.add(hop.binds)
        if self.answer not in known - {TASK_VARIABLE}:
            raise ValueError(f"procedure answer {self.answer!r} is not bound by a slot or hop ({sorted(known)})")
        return self

    def fit(self, task: str) -> dict[str, str] | None:
        """The slot values that make `task` read as the template, or None when the task does not fit.

        Every way of splitting the task along the template's literal text is tried, in order, and
        the first whose slots all look like values is taken: "{t0} {t1}" reads "Kala of Kala 1"
        as ("Kala of Kala", "1"), though the shortest first slot ("Kala") would leave "of Kala 1".
        """
        text = normalize_space(task)
        if template_pattern(self.template).fullmatch(text) is None:
            return None
        literals = VARIABLE.split(normalize_space(self.template))[::2]
        values = _split(text, literals, 0, 0)
        return None if values is None else dict(zip(self.slots, values))

    def describe(self) -> str:
        """One line a person (or a planner) can read: the template, the hops, the outcome."""
        hops = " -> ".join(f"{hop.tool}({hop.query}) takes {hop.binds} after '{' '.join(hop.cue.before)}'"
                           for hop in self.hops)
        return f"[{self.outcome}, from {self.learned_from}] {self.template}: {hops or 'no hops'}; answer {{{self.answer}}}"


_JOINING = frozenset("of de del der von van la le du the and".split())


def looks_like_value(text: str) -> bool:
    """Whether a slot's text is a name or a number, as slots always are ('Kala Works', 'University of Tamora', '1950').

    This is what keeps "the founder of Kala Works" out of a slot that held a name: a template
    "In which country was the {t0} born?" must not fit a question about someone else's birthplace.
    """
    words = text.split()
    if not words or words[0].lower() in _JOINING or words[-1].lower() in _JOINING:
        return False
    return all(word[:1].isupper() or word[:1].isdigit() or word.lower() in _JOINING for word in words)


def _split(text: str, literals: list[str], index: int, at: int) -> list[str] | None:
    """Slot values for `text[at:]` given the template's literal parts from `literals[index]` on (first fit found)."""
    literal = literals[index]
    if not _reads(text, literal, at):
        return None
    at += len(literal)
    if index == len(literals) - 1:
        return [] if at == len(text) else None
    following = literals[index + 1]
    if index + 1 == len(literals) - 1:  # the last slot runs to the closing literal
        ends = [len(text) - len(following)]
    else:
        ends = [end for end in range(at + 1, len(text)) if _reads(text, following, end)]
    for end in ends:
        value = text[at:end]
        if end <= at or not looks_like_value(value):
            continue
        rest = _split(text, literals, index + 1, end)
        if rest is not None:
            return [value, *rest]
    return None


def _reads(text: str, literal: str, at: int) -> bool:
    """Whether `text` has `literal` at `at`, case folded."""
    return text[at:at + len(literal)].lower() == literal.lower()


def normalize_space(text: str) -> str:
    return " ".join(text.split())


@lru_cache(maxsize=4096)
def template_pattern(template: str) -> re.Pattern[str]:
    """The regular expression of a template: its text literal (case and spacing folded), each slot a group."""
    parts = VARIABLE.split(normalize_space(template))
    # split() alternates literal text and slot names: even indexes are literal.
    regex = "".join(re.escape(part) if number % 2 == 0 else "(.+?)" for number, part in enumerate(parts))
    return re.compile(regex, re.IGNORECASE)


def fill(template: str, values: dict[str, str]) -> str:
    """A query template with its variables replaced by their values."""
    return VARIABLE.sub(lambda match: values.get(match.group(1), match.group(0)), template)
