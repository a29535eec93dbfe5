"""ScriptedLLM: a real LLM object whose replies come from a function, for tests about something else.

Like httpx's MockTransport, it is a whole object, not a patch: it goes through the same
validation, structured-output repair, concurrency and usage counting as every backend.
It is never a default at run time.
"""

from __future__ import annotations

from typing import Callable

from memento.llm.base import LLM, Completion, Message, Request, Usage

Handler = Callable[[list[Message]], str]


class ScriptedLLM(LLM):
    """Replies with `handler(messages)`; counts tokens as whitespace-separated words.

    `calls` keeps every request it received, in order, so a test can check what was asked.
    `stop` cuts the reply at the first stop string and `max_tokens` at that many words.
    """

    backend = "scripted"

    def __init__(self, handler: Handler, *, model: str = "scripted", **defaults: float | int):
        super().__init__(**defaults)
        self.handler = handler
        self.model = model
        self.calls: list[Request] = []

    def _complete(self, request: Request) -> Completion:
        self.calls.append(request)
        text = self.handler(request.messages)
        finish_reason = "stop"
        for stop in request.stop or []:
            if stop in text:
                text = text[: text.index(stop)]
        words = text.split()
        if len(words) > request.max_tokens:
            text, finish_reason = " ".join(words[: request.max_tokens]), "length"
        usage = Usage(
            prompt_tokens=sum(len(m["content"].split()) for m in request.messages),
            completion_tokens=min(len(words), request.max_tokens),
        )
        return Completion(text=text, usage=usage, model=request.lora or self.model, finish_reason=finish_reason)
