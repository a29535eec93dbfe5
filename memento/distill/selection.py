"""Which cases are distilled, and the chat examples made from them.

    data = select_examples(bank, SelectionConfig(min_reward=1.0))
    data.train, data.heldout, data.provenance["data_hash"]

A case is chosen when its reward reaches `min_reward` and, given a policy's `usefulness`, when the
policy rates it at least `min_usefulness`. Near-duplicates (task embeddings with cosine similarity
of `dedup_similarity` or more to a case kept before) are dropped, so that a task solved twenty
times is not learned twenty times over. A seeded shuffle then sets `heldout_fraction` of the
chosen cases aside for the gate. Only the bank's public API is used; the stored embeddings are
read, never recomputed.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from memento.case import Case
from memento.errors import ValidationError

SYSTEM_PROMPT = ("You answer questions. If it helps, first write a short plan, then give the final answer "
                 "on a line that starts with 'Answer:'.")
ANSWER_PREFIX = "Answer:"

Usefulness = Callable[[Sequence[Case]], np.ndarray]
"""A policy's `usefulness(cases)` (memento.policy.CaseSelectionPolicy): one score per case, higher is better."""


@dataclass
class SelectionConfig:
    """Which cases of a bank become training examples, and how they are shown to the model."""

    min_reward: float = 1.0
    """Only cases whose reward is at least this (1.0: the successes)."""
    min_usefulness: float | None = None
    """With a policy given, only cases it rates at least this; None keeps all."""
    dedup_similarity: float = 0.95
    """Drop a case whose task embedding has this cosine similarity or more to one already kept."""
    heldout_fraction: float = 0.2
    """Share of the chosen cases kept out of training, for the gate."""
    min_heldout: int = 1
    """At least this many held-out cases (when there are cases enough)."""
    context: Literal["none", "procedure", "cases"] = "procedure"
    """What the prompt shows besides the task: nothing, the case's procedure, or similar successful cases."""
    context_cases: int = 2
    """How many similar cases `context="cases"` shows."""
    namespace: str | None = None
    """Only cases of this namespace ('a/b'); None takes all."""
    max_cases: int | None = None
    """At most this many chosen cases (the newest win); None takes all."""
    seed: int = 0
    """Seed of the held-out split."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ValidationError(f"heldout_fraction={self.heldout_fraction!r} must be in [0, 1); e.g. 0.2")
        if not 0.0 < self.dedup_similarity <= 1.0:
            raise ValidationError(f"dedup_similarity={self.dedup_similarity!r} must be in (0, 1]; 1.0 drops only identical tasks")
        if self.context not in ("none", "procedure", "cases"):
            raise ValidationError(f"context={self.context!r}; choose 'none', 'procedure' or 'cases'")


@dataclass(frozen=True)
class Example:
    """One chat example: the prompt messages, the assistant's target text, and the gold answer."""

    case_id: str
    messages: tuple[tuple[str, str], ...]
    completion: str
    answer: str

    def chat(self) -> list[dict[str, str]]:
        """The prompt as chat messages."""
        return [{"role": role, "content": content} for role, content in self.messages]

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "messages": self.chat(), "completion": self.completion, "answer": self.answer}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Example:
        return cls(case_id=data["case_id"], messages=tuple((m["role"], m["content"]) for m in data["messages"]),
                   completion=data["completion"], answer=data["answer"])


@dataclass
class DistillData:
    """The training and held-out examples, and where they came from."""

    train: list[Example]
    heldout: list[Example]
    provenance: dict[str, Any] = field(default_factory=dict)


def select_examples(bank: Any, config: SelectionConfig | None = None, *,
                    usefulness: Usefulness | None = None) -> DistillData:
    """Choose cases from `bank` (a CaseBank), drop near-duplicates, split, and make chat examples."""
    config = config or SelectionConfig()
    filters: dict[str, Any] = {"min_reward": config.min_reward}
    if config.namespace:
        filters["namespace"] = config.namespace
    cases = list(bank.iter_cases(order_by="created_at", descending=True, **filters))
    considered = len(cases)
    if usefulness is not None and config.min_usefulness is not None and cases:
        scores = np.asarray(usefulness(cases), dtype=float)
        cases = [c for c, s in zip(cases, scores) if s >= config.min_usefulness]
    after_usefulness = len(cases)
    cases, duplicates = _drop_near_duplicates(bank, cases, config.dedup_similarity)
    if config.max_cases is not None:
        cases = cases[:config.max_cases]
    cases.sort(key=lambda c: c.id)  # the split must not depend on the order SQLite returned rows in
    random.Random(config.seed).shuffle(cases)
    n_heldout = _heldout_size(len(cases), config)
    heldout_cases, train_cases = cases[:n_heldout], cases[n_heldout:]
    make = _example_maker(bank, config)
    train, heldout = [make(c) for c in train_cases], [make(c) for c in heldout_cases]
    stats = bank.stats()
    provenance = {
        "bank": str(bank.path),
        "bank_generation": stats["index"]["bank_generation"],
        "bank_cases": stats["cases"],
        "considered": considered,
        "after_usefulness": after_usefulness,
        "near_duplicates_dropped": duplicates,
        "train_case_ids": [e.case_id for e in train],
        "heldout_case_ids": [e.case_id for e in heldout],
        "selection": asdict(config),
        "data_hash": data_hash(train, heldout),
    }
    return DistillData(train=train, heldout=heldout, provenance=provenance)


def data_hash(train: Sequence[Example], heldout: Sequence[Example]) -> str:
    """sha256 of the examples as canonical JSON: the same cases shown the same way give the same hash."""
    payload = json.dumps({"train": [e.to_dict() for e in train], "heldout": [e.to_dict() for e in heldout]},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def case_example(case: Case, context: str = "") -> Example:
    """The chat example of one case: the task (after any context) in, its plan and answer out."""
    user = f"{context}\n\nQuestion: {case.task}" if context else f"Question: {case.task}"
    plan = "\n".join(f"{i}. {step}" for i, step in enumerate(case.plan, start=1))
    completion = (f"Plan:\n{plan}\n" if plan else "") + f"{ANSWER_PREFIX} {case.answer}"
    return Example(case_id=case.id, messages=(("system", SYSTEM_PROMPT), ("user", user)),
                   completion=completion, answer=case.answer)


def answer_of(reply: str) -> str:
    """The final answer in a reply: the text after the last 'Answer:' up to the line's end, else the first line."""
    if ANSWER_PREFIX in reply:
        reply = reply.rsplit(ANSWER_PREFIX, 1)[1]
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _drop_near_duplicates(bank: Any, cases: list[Case], threshold: float) -> tuple[list[Case], int]:
    """Keep a case unless its task embedding is within `threshold` cosine of one kept before (newest first)."""
    if not cases:
        return cases, 0
    vectors = np.asarray(bank.vectors([c.id for c in cases]), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    kept: list[int] = []
    for i in range(len(cases)):
        if kept and float(np.max(vectors[kept] @ vectors[i])) >= threshold:
            continue
        kept.append(i)
    return [cases[i] for i in kept], len(cases) - len(kept)


def _heldout_size(n: int, config: SelectionConfig) -> int:
    if n < 2 or config.heldout_fraction == 0:
        return 0
    return min(n - 1, max(config.min_heldout, round(n * config.heldout_fraction)))


def _example_maker(bank: Any, config: SelectionConfig) -> Callable[[Case], Example]:
    if config.context == "none":
        return case_example
    if config.context == "procedure":
        return lambda case: case_example(case, f"A procedure that solved this kind of task:\n{case.procedure.describe()}"
                                         if case.procedure is not None else "")

    def with_similar_cases(case: Case) -> Example:
        hits = bank.search(case.task, k=config.context_cases + 1, min_reward=config.min_reward)
        shown = [h.case for h in hits if h.case.id != case.id][:config.context_cases]
        context = "\n".join(f"Similar solved task: {c.task}\nIts answer: {c.answer}" for c in shown)
        return case_example(case, context)

    return with_similar_cases
