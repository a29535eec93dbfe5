"""Any OpenAI-compatible chat endpoint: `vllm serve` first of all, or `python -m llama_cpp.server`.

Structured output goes as `response_format={"type": "json_schema", ...}`, which vLLM turns into
constrained decoding; a LoRA adapter served by `vllm serve --lora-modules NAME=PATH` is addressed
by putting its NAME in the request's `model` field. With `distilled_from`, calls that name no
adapter use the bank's promoted distilled adapter under its served name (`cases-v0002`), loaded into
the server through vLLM's `/v1/load_lora_adapter` when the server does not list it yet.

Failures are typed (memento.errors): the endpoint down or gone mid-request is LLMConnectionError,
no answer within `timeout_s` is LLMTimeoutError, an error status or a body that is not a completion
is LLMResponseError. Connection errors, 429 and 5xx are retried with exponential backoff; other
4xx are not (the same request would fail the same way), nor are timeouts (the server may still be
working on the first one, and a retry would only add load).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from memento.errors import LLMConnectionError, LLMResponseError, LLMTimeoutError, ValidationError
from memento.llm.base import LLM, Completion, Request, Usage, configured

RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))


@dataclass
class OpenAIConfig:
    """Where the endpoint is and how patiently to talk to it."""

    base_url: str | None = None
    """Endpoint root ending in /v1; None reads OPENAI_BASE_URL."""
    api_key: str | None = None
    """Bearer token; None reads OPENAI_API_KEY (local servers accept any)."""
    model: str | None = None
    """Served model name; None reads MEMENTO_MODEL, else takes the first model the server lists."""
    temperature: float = 0.0
    """Default temperature; 0 is greedy."""
    max_tokens: int = 256
    """Default cap on completion tokens."""
    timeout_s: float = 60.0
    """Seconds to wait for a whole answer (connect, send, first byte and body)."""
    connect_timeout_s: float = 5.0
    """Seconds to wait for a connection."""
    max_retries: int = 3
    """Tries after the first one, for connection errors, 429 and 5xx."""
    backoff_s: float = 0.5
    """Wait before the first retry; doubles each retry."""
    max_backoff_s: float = 8.0
    """Longest wait between tries, also the cap on a server's Retry-After."""
    json_format: Literal["json_schema", "json_object"] = "json_schema"
    """How to ask for schema-constrained output: OpenAI/vLLM's `json_schema`, or llama.cpp's `json_object` + schema."""
    extra_body: dict[str, Any] = field(default_factory=dict)
    """More fields for every request body, e.g. {"repeat_penalty": 1.0} for llama_cpp.server."""
    distilled_from: str | None = None
    """A bank file: calls that name no adapter ask for its promoted distilled adapter by served name, re-read
    before each call; the server must list it (`--lora-modules`) or allow runtime loading
    (VLLM_ALLOW_RUNTIME_LORA_UPDATING=True). None uses the served model."""


class OpenAILLM(LLM):
    """A chat model behind an OpenAI-compatible HTTP API, with retries and typed errors."""

    backend = "openai"
    constrains_json = True

    def __init__(self, config: OpenAIConfig | None = None, **overrides: Any):
        config = configured(config, OpenAIConfig, overrides)
        super().__init__(temperature=config.temperature, max_tokens=config.max_tokens)
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ValidationError(
                "no endpoint for the openai backend; pass base_url='http://HOST:PORT/v1' or set OPENAI_BASE_URL"
            )
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.model = config.model or os.environ.get("MEMENTO_MODEL") or ""
        api_key = config.api_key or os.environ.get("OPENAI_API_KEY") or "none"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self._client = httpx.Client(headers=self._headers, timeout=self._timeout)
        self._model_lock = threading.Lock()
        self._served_adapters: set[str] = set()
        self.distilled: str | None = None
        """The promoted distilled adapter's version in use now (with `distilled_from`), or None."""
        # An httpx.AsyncClient belongs to the event loop it was first used on; keep one per loop.
        self._async_client: httpx.AsyncClient | None = None
        self._async_client_loop: asyncio.AbstractEventLoop | None = None

    def close(self) -> None:
        """Close the HTTP connections (the object still works; it reconnects when used)."""
        self._client.close()

    # ---- one request, sync and async ---------------------------------------------------------
    def _complete(self, request: Request) -> Completion:
        body = self._body(request)
        for attempt in range(self.config.max_retries + 1):
            try:
                response = self._post(body)
            except httpx.HTTPError as error:
                failure = self._transport_failure(error)
            else:
                failure = self._status_failure(response)
                if failure is None:
                    return self._completion(response, body["model"])
            time.sleep(self._retry_delay(failure, attempt))
        raise AssertionError("unreachable: the last try raises")

    async def _acomplete(self, request: Request) -> Completion:
        body = self._body(request)
        client = self._async_http()
        for attempt in range(self.config.max_retries + 1):
            try:
                response = await self._apost(client, body)
            except httpx.HTTPError as error:
                failure = self._transport_failure(error)
            else:
                failure = self._status_failure(response)
                if failure is None:
                    return self._completion(response, body["model"])
            await asyncio.sleep(self._retry_delay(failure, attempt))
        raise AssertionError("unreachable: the last try raises")

    # httpx's timeouts bound each phase and each read, not the whole answer: a server trickling a
    # byte at a time never trips them (a 1 s timeout_s took 74 s). The body is read here in chunks
    # against one deadline, so an answer ends within timeout_s plus at most one read's timeout.
    def _post(self, body: dict[str, Any]) -> httpx.Response:
        deadline = time.monotonic() + self.config.timeout_s
        with self._client.stream("POST", f"{self.base_url}/chat/completions", json=body) as streamed:
            chunks = []
            for chunk in streamed.iter_bytes():
                chunks.append(chunk)
                _check_deadline(deadline, streamed)
            return _whole(streamed, chunks)

    async def _apost(self, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        deadline = time.monotonic() + self.config.timeout_s
        async with client.stream("POST", f"{self.base_url}/chat/completions", json=body) as streamed:
            chunks = []
            async for chunk in streamed.aiter_bytes():
                chunks.append(chunk)
                _check_deadline(deadline, streamed)
            return _whole(streamed, chunks)

    # ---- request and response ----------------------------------------------------------------
    def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.lora or (self.config.distilled_from and self._follow_promotion()) or self._served_model(),
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            **self.config.extra_body,
        }
        if request.stop:
            body["stop"] = request.stop
        if request.json_schema is not None:
            body["response_format"] = self._response_format(request.json_schema)
        return body

    def _response_format(self, schema: dict) -> dict[str, Any]:
        if self.config.json_format == "json_object":
            return {"type": "json_object", "schema": schema}
        name = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(schema.get("title", "output")))[:64]
        return {"type": "json_schema", "json_schema": {"name": name or "output", "schema": schema, "strict": True}}

    def _completion(self, response: httpx.Response, model: str) -> Completion:
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"message content is {type(text).__name__}, not a string")
        except (json.JSONDecodeError, KeyError, IndexError, TypeError) as error:
            raise LLMResponseError(
                f"{self.base_url} answered {response.status_code} with a body that is not a chat completion "
                f"({type(error).__name__}: {error}): {response.text[:200]!r}; check that base_url points at an "
                "OpenAI-compatible /v1 root",
                status_code=response.status_code,
            ) from error
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens") or 0, completion_tokens=usage.get("completion_tokens") or 0
            ),
            model=data.get("model") or model,
            finish_reason=choice.get("finish_reason"),
        )

    def _follow_promotion(self) -> str | None:
        """The served name of the adapter promoted for `distilled_from`, loaded into the server once; or None."""
        from memento.distill.registry import AdapterRegistry

        promoted = AdapterRegistry(self.config.distilled_from).promoted()
        self.distilled = promoted.name if promoted else None
        if promoted is None:
            return None
        with self._model_lock:
            if promoted.served_name not in self._served_adapters:
                if promoted.served_name not in self._listed_models():
                    self._load_adapter(promoted.served_name, str(promoted.adapter_dir))
                self._served_adapters.add(promoted.served_name)
        return promoted.served_name

    def _listed_models(self) -> list[str]:
        try:
            response = self._client.get(f"{self.base_url}/models")
        except httpx.HTTPError as error:
            raise self._transport_failure(error) from error
        failure = self._status_failure(response)
        if failure is not None:
            raise failure
        try:
            return [entry["id"] for entry in response.json()["data"]]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise LLMResponseError(f"{self.base_url}/models answered {response.text[:200]!r}, not a model list",
                                   status_code=response.status_code) from error

    def _load_adapter(self, name: str, path: str) -> None:
        try:
            response = self._client.post(f"{self.base_url}/load_lora_adapter", json={"lora_name": name, "lora_path": path})
        except httpx.HTTPError as error:
            raise self._transport_failure(error) from error
        if response.status_code >= 400:
            raise LLMResponseError(
                f"{self.base_url} does not serve the promoted adapter {name!r} and did not load it (HTTP "
                f"{response.status_code}: {response.text[:200]!r}); start vllm serve with --enable-lora and "
                f"--lora-modules {name}={path}, or with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True",
                status_code=response.status_code,
            )

    def _served_model(self) -> str:
        """The configured model, or the first one the server lists (asked once)."""
        with self._model_lock:
            if not self.model:
                self.model = self._first_listed_model()
            return self.model

    def _first_listed_model(self) -> str:
        listed = self._listed_models()
        if not listed:
            raise LLMResponseError(f"{self.base_url}/models lists no model; pass model= or set MEMENTO_MODEL")
        return listed[0]

    # ---- failures and retries ----------------------------------------------------------------
    def _transport_failure(self, error: httpx.HTTPError) -> Exception:
        if isinstance(error, httpx.TimeoutException) and not isinstance(error, httpx.ConnectTimeout):
            return LLMTimeoutError(
                f"{self.base_url} gave no answer within {self.config.timeout_s} s ({type(error).__name__}); "
                "raise timeout_s, lower max_tokens, or check the server's load"
            )
        return LLMConnectionError(
            f"cannot talk to {self.base_url} ({type(error).__name__}: {error or 'connection failed'}); "
            "check that the server is running and base_url is right"
        )

    def _status_failure(self, response: httpx.Response) -> LLMResponseError | None:
        if response.status_code < 400:
            return None
        failure = LLMResponseError(
            f"{self.base_url} answered HTTP {response.status_code}: {response.text[:300]!r}",
            status_code=response.status_code,
        )
        failure.retry_after_s = _seconds(response.headers.get("retry-after"))
        return failure

    def _retry_delay(self, failure: Exception, attempt: int) -> float:
        """Seconds to wait before the next try; raises `failure` when it is not worth retrying."""
        status = getattr(failure, "status_code", None)
        retryable = isinstance(failure, LLMConnectionError) or status in RETRY_STATUSES
        if not retryable or attempt >= self.config.max_retries:
            raise failure
        delay = self.config.backoff_s * 2**attempt
        return min(max(delay, getattr(failure, "retry_after_s", 0.0)), self.config.max_backoff_s)

    def _async_http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_client_loop is not loop:
            self._async_client = httpx.AsyncClient(headers=self._headers, timeout=self._timeout)
            self._async_client_loop = loop
        return self._async_client


def _check_deadline(deadline: float, streamed: httpx.Response) -> None:
    if time.monotonic() > deadline:
        raise httpx.ReadTimeout("the whole answer took longer than timeout_s", request=streamed.request)


def _whole(streamed: httpx.Response, chunks: list[bytes]) -> httpx.Response:
    """A streamed response as an ordinary one holding its (already decoded) body."""
    headers = [(k, v) for k, v in streamed.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(streamed.status_code, headers=headers, content=b"".join(chunks), request=streamed.request)


def _seconds(retry_after: str | None) -> float:
    """A Retry-After header in seconds; 0 when absent or given as a date."""
    try:
        return max(0.0, float(retry_after)) if retry_after else 0.0
    except ValueError:
        return 0.0
