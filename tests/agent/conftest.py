"""Fixtures for the agent tests: a scripted model, a small fact tool, banks, and the real SmolLM2.

`Script` drives a real `ScriptedLLM`: it tells which stage of the agent is calling (planner,
executor, replanner, answer, judge) from the prompt and replies with that stage's next scripted
reply. Tests about the nodes' logic use it; tests about the model's behaviour use SmolLM2.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from langchain_core.tools import tool

from memento import CaseBank
from memento.llm import ScriptedLLM
from tests.fakes import FakeHashEmbedder

STAGE_MARKERS = [
    ("judge", "Gold answer(s)"),
    ("plan", "Split the question"),
    ("replan", "Read the findings"),
    ("execute", "You are the executor"),
    ("answer", "You answer questions"),
]

FACTS = {
    "acme": "Acme Corp was founded in 1901 by Ada Brill.",
    "ada brill": "Ada Brill (born 1870) is an engineer who was born in Velmora.",
    "velmora": "Velmora is a city in Zandia.",
}


def stage_of(messages: list[dict[str, str]]) -> str:
    text = "\n".join(m["content"] for m in messages)
    for stage, marker in STAGE_MARKERS:
        if marker in text:
            return stage
    raise AssertionError(f"no agent stage recognised in prompt: {text[:200]!r}")


class Script:
    """Replies per stage, in order; the last reply of a stage repeats. Values that are not str are sent as JSON."""

    def __init__(self, **replies: list[Any] | Callable[[list[dict[str, str]]], Any]):
        self.replies = replies
        self.seen: dict[str, int] = {}

    def __call__(self, messages: list[dict[str, str]]) -> str:
        stage = stage_of(messages)
        self.seen[stage] = self.seen.get(stage, 0) + 1
        replies = self.replies.get(stage)
        if replies is None:
            raise AssertionError(f"the script has no reply for stage {stage!r}")
        reply = replies(messages) if callable(replies) else replies[min(self.seen[stage], len(replies)) - 1]
        return reply if isinstance(reply, str) else json.dumps(reply)


def scripted(**replies) -> ScriptedLLM:
    """A ScriptedLLM following a `Script`; `llm.handler.seen` counts calls per stage."""
    return ScriptedLLM(Script(**replies))


HAPPY = dict(
    plan=[{"subtasks": ["find the founder of Acme", "find where the founder was born"]}],
    execute=lambda messages: (
        {"tool": "final", "input": messages[-1]["content"].split("Observation: ")[1].split("\n")[0]}
        if messages[-1]["content"].startswith("Observation:") else {"tool": "lookup", "input": "Acme"}),
    replan=[{"decision": "answer", "subtasks": []}],
    answer=[{"answer": "Velmora"}],
    judge=[{"rationale": "same city", "grade": "correct"}],
)
"""A script for a smooth episode: two subtasks, each one lookup then a final result."""


@tool
def lookup(query: str) -> str:
    """Look up a fact about a name in a tiny fact table."""
    hits = [fact for key, fact in FACTS.items() if key in query.lower()]
    return "\n".join(hits) or f"nothing about {query!r}"


@pytest.fixture
def bank(tmp_path):
    with CaseBank(tmp_path / "agent.db", embedder=FakeHashEmbedder()) as bank:
        yield bank


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2 backend, loaded once. One thread: on a shared, busy CPU llama.cpp's
    spinning worker threads made two threads up to 20x slower than one."""
    from memento.llm import load_llm

    return load_llm(n_threads=1)
