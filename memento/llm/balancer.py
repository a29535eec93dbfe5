"""One LLM over several servers: round-robin or least-busy, with failover when a server is down.

A fleet of vLLM servers (or any OpenAI-compatible ones) serves many agent workers. Each worker
holds one `BalancedLLM`; every call goes to the server with the fewest calls in flight from this
worker (`least_busy`, ties broken in turn) or simply to the next one (`round_robin`). A server that
refuses the connection is skipped for `cooldown_s` and the call goes to the next; only when every
server has failed does the call raise, with the last error.

    llm = load_llm("balanced", base_urls=["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"])
    llm = BalancedLLM([load_llm("openai", base_url=a), load_llm("openai", base_url=b)], strategy="round_robin")
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Literal, Sequence

from memento.errors import LLMConnectionError, ValidationError
from memento.llm.base import LLM, Completion, Request

Strategy = Literal["least_busy", "round_robin"]
STRATEGIES = ("least_busy", "round_robin")


class BalancedLLM(LLM):
    """Spreads calls over `backends` (built from `base_urls` with `backend` when not given)."""

    backend = "balanced"

    def __init__(self, backends: Sequence[LLM] | None = None, *, base_urls: Sequence[str] = (), backend: str = "openai",
                 strategy: Strategy = "least_busy", cooldown_s: float = 5.0, temperature: float = 0.0,
                 max_tokens: int = 256, **options: Any):
        if strategy not in STRATEGIES:
            raise ValidationError(f"strategy {strategy!r} is not one of {list(STRATEGIES)}; "
                                  f"use 'least_busy' (fewest calls in flight) or 'round_robin'")
        if backends is None:
            if isinstance(base_urls, str):
                base_urls = [url for url in base_urls.split(",") if url.strip()]
            if not base_urls:
                raise ValidationError("BalancedLLM needs backends or base_urls (one URL per server, e.g. "
                                      "['http://127.0.0.1:8000/v1', 'http://127.0.0.1:8001/v1'])")
            from memento.llm.loading import load_llm

            backends = [load_llm(backend, base_url=url, temperature=temperature, max_tokens=max_tokens, **options)
                        for url in base_urls]
        if not backends:
            raise ValidationError("BalancedLLM needs at least one backend")
        super().__init__(temperature=temperature, max_tokens=max_tokens)
        self.backends = list(backends)
        self.strategy = strategy
        self.cooldown_s = cooldown_s
        self.model = self.backends[0].model
        self.constrains_json = all(b.constrains_json for b in self.backends)
        self.in_flight = [0] * len(self.backends)
        self.calls = [0] * len(self.backends)
        """Calls each backend answered, in the order of `backends`."""
        self._down_until = [0.0] * len(self.backends)
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def _order(self) -> list[int]:
        """Backends to try for the next call, best first: up ones before those cooling down."""
        with self._lock:
            start = next(self._turn) % len(self.backends)
            rotated = [(start + i) % len(self.backends) for i in range(len(self.backends))]
            now = time.monotonic()
            if self.strategy == "least_busy":
                rotated.sort(key=lambda i: self.in_flight[i])  # stable: ties keep the turn order
            return sorted(rotated, key=lambda i: self._down_until[i] > now)

    def _start(self, index: int) -> None:
        with self._lock:
            self.in_flight[index] += 1

    def _finish(self, index: int, *, failed: bool) -> None:
        with self._lock:
            self.in_flight[index] -= 1
            if failed:
                self._down_until[index] = time.monotonic() + self.cooldown_s
            else:
                self.calls[index] += 1

    def _complete(self, request: Request) -> Completion:
        failure: LLMConnectionError | None = None
        for index in self._order():
            self._start(index)
            try:
                completion = self.backends[index]._complete(request)
            except LLMConnectionError as error:  # down or unreachable: the next server takes the call
                self._finish(index, failed=True)
                failure = error
                continue
            except BaseException:
                self._finish(index, failed=False)
                raise
            self._finish(index, failed=False)
            return completion
        raise failure

    async def _acomplete(self, request: Request) -> Completion:
        failure: LLMConnectionError | None = None
        for index in self._order():
            self._start(index)
            try:
                completion = await self.backends[index]._acomplete(request)
            except LLMConnectionError as error:
                self._finish(index, failed=True)
                failure = error
                continue
            except BaseException:
                self._finish(index, failed=False)
                raise
            self._finish(index, failed=False)
            return completion
        raise failure

    def close(self) -> None:
        for backend in self.backends:
            close = getattr(backend, "close", None)
            if close is not None:
                close()
