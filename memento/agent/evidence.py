"""Evidence: every tool call a procedure or an exploration made, with the passages it returned.

One list per episode, in the state as plain JSON (`state["evidence"]`). Each entry records where
its query came from (`parent`: a span of an earlier result), so that after the episode the path
from the task to any passage can be walked back. That is what induction reads: from the passage
that held the answer, back to the task, one hop per search.

    {"n": 2, "tool": "search", "query": "Lia Marrow", "depth": 1,
     "parent": {"search": 0, "passage": 1, "start": 57, "end": 67, "text": "Lia Marrow"},
     "passages": [{"id": "fw0-0040", "title": "Lia Marrow", "text": "..."}]}
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from memento.agent.executor import clip_observation

_call_ids = itertools.count()


def call_for_passages(tool: Any, query: str, k: int) -> tuple[list[dict[str, str]], str, float]:
    """(passages, text, seconds) of one tool call; passages come from the tool's artifact, else [].

    A tool made with `response_format="content_and_artifact"` (memento's search tool) answers a tool
    call with its passages; any other tool gives text only, which a procedure cannot take spans from.
    """
    started = time.perf_counter()
    args: dict[str, Any] = {"query": query}
    if "k" in (getattr(tool, "args", {}) or {}):
        args["k"] = k
    try:
        message = tool.invoke({"type": "tool_call", "name": tool.name, "args": args, "id": f"memento-{next(_call_ids)}"})
    except Exception as error:  # a tool is user code: its failure is a result, not the end of the episode
        return [], f"error: {type(error).__name__}: {error}", time.perf_counter() - started
    text = getattr(message, "content", message)
    artifact = getattr(message, "artifact", None)
    passages = [p for p in artifact if isinstance(p, dict) and isinstance(p.get("text"), str)] if isinstance(artifact, list) else []
    return passages, text if isinstance(text, str) else str(text), time.perf_counter() - started


def record_search(evidence: list[dict[str, Any]], tool: str, query: str, passages: list[dict[str, str]], *,
                  parent: dict[str, Any] | None, depth: int) -> dict[str, Any]:
    """Append one search to `evidence` and return it."""
    entry = {"n": len(evidence), "tool": tool, "query": query, "depth": depth, "parent": parent,
             "passages": [{"id": str(p.get("id", "")), "title": str(p.get("title", "")), "text": p["text"]} for p in passages]}
    evidence.append(entry)
    return entry


def as_step(entry: dict[str, Any], thought: str, seconds: float, limit: int) -> dict[str, Any]:
    """The trajectory step of a search: its query and its passages, as the executor's steps read."""
    observation = " | ".join(f"{p['title']}: {p['text']}" for p in entry["passages"]) or "no passages"
    return {"subtask": 0, "thought": thought, "tool": entry["tool"], "tool_input": entry["query"],
            "observation": clip_observation(observation, limit), "seconds": round(seconds, 4), "ok": bool(entry["passages"])}


def path_to(evidence: list[dict[str, Any]], search: int) -> list[dict[str, Any]]:
    """The searches from the first one to `search`, following parents: [root, ..., search]."""
    chain = [evidence[search]]
    while chain[0]["parent"] is not None:
        chain.insert(0, evidence[chain[0]["parent"]["search"]])
    return chain
