"""Reading the executor's reply as an action, forgivingly.

The model is asked for `{"tool": name, "input": "..."}` or `{"tool": "final", "input": "..."}`.
Small models drift, so this also accepts `{"final": ...}`, `{"name"/"action": ..., "args"/"query": ...}`,
JSON wrapped in prose or a code fence, JSON cut off by max_tokens, and an input given as an object. What it cannot read
becomes a `malformed` action whose reason is shown to the model on its next turn.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Sequence

FINAL_NAMES = ("final", "answer", "finish", "final_answer")
_NAME_KEYS = ("tool", "name", "action", "tool_name")
_INPUT_KEYS = ("input", "args", "arguments", "tool_input", "query", "parameters")


@dataclass(frozen=True)
class Action:
    """One executor decision: call `tool` with `input`, finish with `final`, or a `malformed` reply."""

    tool: str | None = None
    input: Any = None
    final: str | None = None
    malformed: str | None = None
    """Why the reply could not be read, in words the model can act on."""


def parse_action(text: str, tool_names: Sequence[str]) -> Action:
    """The action in a model reply; never raises."""
    obj = _first_json_object(text)
    if obj is None:
        return Action(malformed="the reply was not a JSON object")
    if "final" in obj and not any(key in obj for key in _NAME_KEYS):
        return Action(final=_as_text(obj["final"]))
    name = next((obj[key] for key in _NAME_KEYS if isinstance(obj.get(key), str)), None)
    given = next((obj[key] for key in _INPUT_KEYS if key in obj), "")
    if name is None:
        return Action(malformed='the JSON has no "tool" field')
    if name.strip().lower() in FINAL_NAMES:
        return Action(final=_as_text(given))
    if name not in tool_names:
        match = [t for t in tool_names if t.lower() == name.strip().lower()]
        if not match:
            return Action(malformed=f"there is no tool {name!r}; the tools are {', '.join(tool_names)} (or final)")
        name = match[0]
    return Action(tool=name, input=_as_input(given))


def _first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text`: the whole reply, else the first balanced {...} inside it."""
    stripped = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        value = json.loads(stripped)
        return value if isinstance(value, dict) else None
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", stripped)):
        try:
            value, _ = decoder.raw_decode(stripped, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return _closed(stripped)


def _closed(text: str) -> dict[str, Any] | None:
    """A reply cut off by max_tokens inside its JSON, closed: '{"tool": "search", "input": "abc' -> {...}."""
    start = text.find("{")
    if start < 0:
        return None
    for ending in ('"}', "}", '""}'):
        try:
            value = json.loads(text[start:] + ending)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _as_input(value: Any) -> Any:
    """A tool input: an object stays an object, a string that holds one becomes it, anything else text."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        parsed = _first_json_object(value)
        if parsed is not None:
            return parsed
    return _as_text(value)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)
