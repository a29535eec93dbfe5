"""`MeteredLLM`: a view of a shared LLM that counts one node's calls and tokens.

A node wraps the agent's LLM in a fresh `MeteredLLM`, so concurrent episodes on one backend
each get exact counts (the backend's own `usage_total` adds up everybody's). Calls go through
the backend's public `complete`/`acomplete`, so its totals stay right too.
"""

from __future__ import annotations

from typing import Any

from memento.llm import LLM, Completion
from memento.llm.base import Request


class MeteredLLM(LLM):
    """Delegates to `inner`; `calls` lists each call's tokens and seconds, labelled by `node`."""

    def __init__(self, inner: LLM, node: str):
        super().__init__(temperature=inner.default_temperature, max_tokens=inner.default_max_tokens)
        self.inner = inner
        self.node = node
        self.backend = inner.backend
        self.model = inner.model
        self.constrains_json = inner.constrains_json
        self.calls: list[dict[str, Any]] = []

    def _complete(self, request: Request) -> Completion:
        return self._log(self.inner.complete(request.messages, **_options(request)))

    async def _acomplete(self, request: Request) -> Completion:
        return self._log(await self.inner.acomplete(request.messages, **_options(request)))

    def _log(self, completion: Completion) -> Completion:
        self.calls.append({"node": self.node, "prompt_tokens": completion.usage.prompt_tokens,
                           "completion_tokens": completion.usage.completion_tokens,
                           "seconds": round(completion.latency_s, 4), "finish_reason": completion.finish_reason})
        return completion

    def usage(self) -> dict[str, int]:
        """Tokens of every call so far, as the state's `tokens` counter."""
        used = self.usage_total
        return {"prompt_tokens": used.prompt_tokens, "completion_tokens": used.completion_tokens}


def _options(request: Request) -> dict[str, Any]:
    return {"temperature": request.temperature, "max_tokens": request.max_tokens, "stop": request.stop,
            "json_schema": request.json_schema, "lora": request.lora}

