"""A scripted LLM backend for tests of `memento ask` and `memento eval` (about the CLI, not the model).

Registered under the backend name "cli-scripted" by the tests; it is never a default at run time.
"""

import json

from memento.llm import ScriptedLLM

ANSWER = "Ada Vell"

REPLY = json.dumps({"subtasks": ["Find who founded Acme"], "decision": "answer", "answer": ANSWER,
                    "tool": "final", "input": ANSWER})
"""One reply that every step of the agent can read: a plan, a decision to answer, a final action, the answer."""


class CliScriptedLLM(ScriptedLLM):
    """Answers every call with REPLY."""

    def __init__(self, **defaults):
        super().__init__(lambda messages: REPLY, model="cli-scripted", **defaults)
