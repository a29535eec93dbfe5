"""The one kind of LLM step a small model does reliably: pick one of a few options, given a few facts.

The reply is constrained to the options (a JSON schema with an enum, which llama.cpp turns into a
grammar), and the options are shuffled with a seed fixed by the question, so the model cannot
lean on their order and a rerun asks the same thing.
"""

from __future__ import annotations

import random
from typing import Any

from memento.errors import StructuredOutputError, ValidationError

SYSTEM = ("You answer a question by choosing one of the options. Use only the facts given. "
          "Reply with JSON: {\"answer\": <one option>}.")


def choice_messages(question: str, facts: list[str], options: list[str]) -> list[dict[str, str]]:
    lines = "\n".join(f"{n}. {fact}" for n, fact in enumerate(facts, 1))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Facts:\n{lines}\n\nQuestion: {question}\nOptions: {'; '.join(options)}"}]


def choose(llm: Any, question: str, facts: list[str], options: list[str], *, max_tokens: int = 32,
           temperature: float = 0.0) -> tuple[str | None, str]:
    """(the chosen option or None, how it was chosen: 'only', 'llm', 'unusable' or 'none')."""
    options = list(dict.fromkeys(o for o in options if o.strip()))
    if not options:
        return None, "none"
    if len(options) == 1:
        return options[0], "only"
    shuffled = random.Random(question).sample(options, len(options))
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": shuffled}},
              "required": ["answer"], "additionalProperties": False}
    try:
        reply = llm.structured(choice_messages(question, facts, shuffled), schema, max_tokens=max_tokens,
                               temperature=temperature)
    except (StructuredOutputError, ValidationError):
        return None, "unusable"
    answer = reply.get("answer") if isinstance(reply, dict) else None
    return (answer, "llm") if answer in options else (None, "unusable")
