"""The one LLM interface every backend implements, and the logic they share.

A backend implements `_complete` (one request) and may override `_acomplete` (native async)
and `_complete_batch` (native batching, as vLLM does). Everything else lives here:
sync and async calls, many requests at once under a concurrency limit, structured output
(validated, one repair retry), and token usage counted per call and over the object's life.

A batch never loses work to one bad request: `complete_many` returns, in input order, each
request's `Completion` or the typed `MementoError` it failed with (`strict=True` raises instead).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
import time
import types
import typing
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from memento.errors import MementoError, StructuredOutputError, ValidationError
from memento.llm.json_schema import parse_json_reply, schema_problems

Message = dict[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": str}."""

ROLES = ("system", "user", "assistant")


class Usage(BaseModel):
    """Tokens read and written by one call, or by many calls added up."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Completion(BaseModel):
    """What one call returned: the text, its token usage and how long it took."""

    text: str
    usage: Usage
    model: str
    finish_reason: str | None = None
    latency_s: float = 0.0


@dataclass(frozen=True)
class Request:
    """One call's settings after defaults are filled in; what a backend's `_complete` receives."""

    messages: list[Message]
    temperature: float
    max_tokens: int
    stop: list[str] | None = None
    json_schema: dict | None = None
    lora: str | None = None


class LLM(ABC):
    """A chat model: messages in, text out, sync or async, one request or many.

    Subclasses set `backend` and `model` and implement `_complete`.
    """

    backend: str = "base"
    model: str = ""
    constrains_json: bool = False
    """True when the backend forces the output to match a JSON schema while decoding."""

    def __init__(self, *, temperature: float = 0.0, max_tokens: int = 256):
        self.default_temperature = temperature
        self.default_max_tokens = max_tokens
        self._usage_total = Usage()
        self._usage_lock = threading.Lock()

    # ---- what a backend implements -------------------------------------------------------
    @abstractmethod
    def _complete(self, request: Request) -> Completion:
        """Run one request and return its completion (latency is filled in by the caller)."""

    async def _acomplete(self, request: Request) -> Completion:
        """Async twin of `_complete`; by default runs the sync call in a worker thread."""
        return await asyncio.to_thread(self._complete, request)

    def _complete_batch(self, requests: list[Request], concurrency: int) -> list[Completion | MementoError]:
        """Run many requests, each to its completion or its typed error; by default in `concurrency` threads."""
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(requests)))) as pool:
            return list(pool.map(self._settled_complete, requests))

    # ---- the public interface ------------------------------------------------------------
    @property
    def usage_total(self) -> Usage:
        """Tokens used by every call this object has made."""
        with self._usage_lock:
            return self._usage_total.model_copy()

    def complete(
        self,
        messages: list[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: list[str] | None = None,
        json_schema: dict | None = None,
        lora: str | None = None,
    ) -> Completion:
        """Answer one conversation; `json_schema` asks for JSON matching it, `lora` names an adapter."""
        request = self._request(messages, temperature, max_tokens, stop, json_schema, lora)
        return self._record(self._timed_complete(request))

    async def acomplete(
        self,
        messages: list[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: list[str] | None = None,
        json_schema: dict | None = None,
        lora: str | None = None,
    ) -> Completion:
        """Async twin of `complete`."""
        request = self._request(messages, temperature, max_tokens, stop, json_schema, lora)
        return self._record(await self._timed_acomplete(request))

    def complete_many(
        self, batch: list[list[Message]], *, concurrency: int = 8, strict: bool = False, **kwargs: Any
    ) -> list[Completion | MementoError]:
        """Answer many conversations with up to `concurrency` in flight; results keep the input order.

        A request that fails costs only itself: its place holds the typed error it failed with
        (an `LLMError`, or the `ValidationError` of a request the backend refused) and every other
        request still runs and returns its `Completion`. With `strict=True` the first failure is
        raised instead, once every request has finished (their tokens are still counted).
        """
        _check_concurrency(concurrency)
        requests = [self._request(messages, **kwargs) for messages in batch]
        if not requests:
            return []
        outcomes = self._complete_batch(requests, concurrency)
        return _settle([self._record(o) if isinstance(o, Completion) else o for o in outcomes], strict=strict)

    async def acomplete_many(
        self, batch: list[list[Message]], *, concurrency: int = 8, strict: bool = False, **kwargs: Any
    ) -> list[Completion | MementoError]:
        """Async twin of `complete_many`: at most `concurrency` calls in flight at once."""
        _check_concurrency(concurrency)
        requests = [self._request(messages, **kwargs) for messages in batch]
        gate = asyncio.Semaphore(concurrency)

        async def one(request: Request) -> Completion | MementoError:
            async with gate:
                try:
                    return self._record(await self._timed_acomplete(request))
                except MementoError as error:
                    return error

        return _settle(list(await asyncio.gather(*(one(request) for request in requests))), strict=strict)

    def structured(self, messages: list[Message], schema: type[BaseModel] | dict, **kwargs: Any) -> BaseModel | dict:
        """Answer with JSON matching `schema`, validated; a pydantic model in, an instance out.

        Decoding is constrained to the schema where the backend can. Output that still fails
        validation (for instance cut off by `max_tokens`) gets one repair try, in which the model
        sees its reply and the problem; if that fails too, StructuredOutputError.
        """
        schema_dict, conversation = self._structured_start(messages, schema)
        first = self.complete(conversation, json_schema=schema_dict, **kwargs)
        result, problem = _validate(first.text, schema, schema_dict)
        if problem is None:
            return result
        second = self.complete(_repair(conversation, first.text, problem), json_schema=schema_dict, **kwargs)
        return _validated_or_raise(second.text, schema, schema_dict, first_problem=problem)

    async def astructured(
        self, messages: list[Message], schema: type[BaseModel] | dict, **kwargs: Any
    ) -> BaseModel | dict:
        """Async twin of `structured`."""
        schema_dict, conversation = self._structured_start(messages, schema)
        first = await self.acomplete(conversation, json_schema=schema_dict, **kwargs)
        result, problem = _validate(first.text, schema, schema_dict)
        if problem is None:
            return result
        second = await self.acomplete(_repair(conversation, first.text, problem), json_schema=schema_dict, **kwargs)
        return _validated_or_raise(second.text, schema, schema_dict, first_problem=problem)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r}, model={self.model!r})"

    # ---- shared plumbing -----------------------------------------------------------------
    def _request(
        self,
        messages: list[Message],
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: list[str] | None = None,
        json_schema: dict | None = None,
        lora: str | None = None,
    ) -> Request:
        _check_messages(messages)
        temperature = self.default_temperature if temperature is None else temperature
        max_tokens = self.default_max_tokens if max_tokens is None else max_tokens
        if temperature < 0:
            raise ValidationError(f"temperature {temperature} is negative; pass 0 (greedy) or more")
        if max_tokens < 1:
            raise ValidationError(f"max_tokens {max_tokens} is below 1; pass a positive number of tokens")
        if isinstance(stop, str):
            stop = [stop]
        return Request([dict(m) for m in messages], temperature, max_tokens, stop or None, json_schema, lora)

    def _timed_complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        completion = self._complete(request)
        completion.latency_s = time.perf_counter() - started
        return completion

    async def _timed_acomplete(self, request: Request) -> Completion:
        started = time.perf_counter()
        completion = await self._acomplete(request)
        completion.latency_s = time.perf_counter() - started
        return completion

    def _settled_complete(self, request: Request) -> Completion | MementoError:
        """One request of a batch: its completion, or the typed error it failed with (bugs still raise)."""
        try:
            return self._timed_complete(request)
        except MementoError as error:
            return error

    def _record(self, completion: Completion) -> Completion:
        with self._usage_lock:
            self._usage_total = self._usage_total + completion.usage
        return completion

    def _structured_start(
        self, messages: list[Message], schema: type[BaseModel] | dict
    ) -> tuple[dict, list[Message]]:
        schema_dict = _schema_dict(schema)
        if self.constrains_json:
            return schema_dict, list(messages)
        # Without constrained decoding the model only knows the schema if the prompt says it.
        hint = {"role": "system", "content": "Reply with only a JSON value matching this JSON schema:\n"
                + json.dumps(schema_dict)}
        return schema_dict, [hint, *messages]


# ---- helpers ------------------------------------------------------------------------------
Config = TypeVar("Config")


def configured(config: Config | None, default: type[Config], overrides: dict[str, Any]) -> Config:
    """A backend's config: `config` (or the defaults) with `overrides`, each checked by name and type.

    `load_llm("openai", timeout=5)` or `--llm-option timout_s=5` gets a ValidationError that
    lists the settings there are, instead of a TypeError from deep inside the backend.
    """
    fields = {f.name for f in dataclasses.fields(default)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValidationError(f"{default.__name__} has no setting {', '.join(map(repr, unknown))}; "
                              f"the settings are {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(default)
    for name, value in overrides.items():
        if not _has_type(value, hints[name]):
            raise ValidationError(f"{default.__name__}.{name}={value!r} is a {type(value).__name__}, not "
                                  f"{_type_name(hints[name])}; pass a value of that type")
    return dataclasses.replace(config or default(), **overrides)


def _has_type(value: Any, hint: Any) -> bool:
    """True when `value` fits the simple hint (scalars, Optional, Literal, dict, list); other hints pass."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, (str, os.PathLike))  # a path where a file name is asked for
    if hint is bool or origin in (dict, list):
        return isinstance(value, origin or hint)
    return True


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _check_concurrency(concurrency: int) -> None:
    if concurrency < 1:
        raise ValidationError(f"concurrency {concurrency} is below 1; pass how many requests may be in flight")


def _settle(outcomes: list[Completion | MementoError], *, strict: bool) -> list[Completion | MementoError]:
    """A batch's outcomes as they are, or (strict) the first failure raised, saying what else it held."""
    failed = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, MementoError)]
    if strict and failed:
        first = outcomes[failed[0]]
        first.add_note(
            f"request {failed[0]} of a batch of {len(outcomes)} failed ({len(failed)} failed in all); "
            f"the {len(outcomes) - len(failed)} completions that succeeded were dropped by strict=True: "
            "call without strict to get each completion and each error in its place"
        )
        raise first
    return outcomes


def _check_messages(messages: list[Message]) -> None:
    if not messages:
        raise ValidationError("messages is empty; pass at least one {'role': 'user', 'content': ...} message")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValidationError(
                f"message {index} ({message!r}) has no valid role; each message is a dict with "
                f"'role' in {ROLES} and a string 'content'"
            )
        if not isinstance(message.get("content"), str):
            raise ValidationError(f"message {index} has content {message.get('content')!r}; content must be a string")


def _schema_dict(schema: type[BaseModel] | dict) -> dict:
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    raise ValidationError(f"schema {schema!r} is neither a pydantic model class nor a JSON schema dict; pass one")


def _validate(text: str, schema: type[BaseModel] | dict, schema_dict: dict) -> tuple[Any, str | None]:
    """The parsed value and None, or None and what is wrong with the text."""
    try:
        value = parse_json_reply(text)
    except json.JSONDecodeError as error:
        return None, f"it is not valid JSON ({error})"
    if isinstance(schema, dict):
        problems = schema_problems(value, schema_dict)
        return (value, None) if not problems else (None, "; ".join(problems[:5]))
    try:
        return schema.model_validate(value), None
    except pydantic.ValidationError as error:
        return None, " ; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in error.errors()[:5])


def _validated_or_raise(text: str, schema: type[BaseModel] | dict, schema_dict: dict, *, first_problem: str) -> Any:
    result, problem = _validate(text, schema, schema_dict)
    if problem is None:
        return result
    name = schema.__name__ if isinstance(schema, type) else schema_dict.get("title", "the JSON schema")
    raise StructuredOutputError(
        f"the model's reply does not match {name} after one repair try: {problem} "
        f"(first try: {first_problem}); reply was {text[:200]!r}. Raise max_tokens if the JSON was cut off, "
        f"simplify the schema, or use a backend with constrained decoding"
    )


def _repair(conversation: list[Message], reply: str, problem: str) -> list[Message]:
    return [
        *conversation,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": f"That reply is not valid: {problem}. Reply again with only the corrected JSON."},
    ]
