"""A case: one finished task, remembered.

The memory-augmented MDP of AgentFly/Memento stores each episode as a case
(task, plan, trajectory, answer, reward). Successes and failures are both kept:
a failed case tells the planner what not to do. A case may also hold a procedure, the
reusable part of its trajectory with the task's values as variables (`memento.procedure`).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticSerializationError, to_jsonable_python

from memento.errors import ValidationError
from memento.procedure import Procedure

DEFAULT_NAMESPACE: tuple[str, ...] = ("default",)

REWARD_RANGE: tuple[float, float] = (0.0, 1.0)
"""Every reward in memento (a case's, a policy's outcome) lies here: 0 a failure, 1 a success."""


@dataclass(frozen=True)
class CaseLimits:
    """Size limits on what a case may hold; change them with `set_case_limits`."""

    max_text_chars: int = 200_000
    """Characters of the task and of the answer."""
    max_label_chars: int = 200
    """Characters of one namespace label."""
    max_namespace_depth: int = 16
    """Labels in a namespace."""


_limits = CaseLimits()


def case_limits() -> CaseLimits:
    return _limits


def set_case_limits(**changes: int) -> CaseLimits:
    """Change the limits for this process (e.g. `set_case_limits(max_text_chars=1_000_000)`); returns the new ones."""
    global _limits
    unknown = set(changes) - {f.name for f in fields(CaseLimits)}
    if unknown:
        raise ValidationError(f"unknown case limit(s) {sorted(unknown)}; they are {[f.name for f in fields(CaseLimits)]}")
    for name, value in changes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"case limit {name}={value!r} must be a positive whole number")
    _limits = replace(_limits, **changes)
    return _limits


def check_reward(reward: Any, *, what: str = "reward") -> float:
    """A reward as a float in REWARD_RANGE, or memento's ValidationError naming the value and the fix."""
    low, high = REWARD_RANGE
    if isinstance(reward, bool) or not isinstance(reward, (int, float)) and not hasattr(reward, "__float__"):
        raise ValidationError(f"{what} {reward!r:.80} is not a number; use a number from {low:g} (failure) to {high:g} (success)")
    value = float(reward)
    if not math.isfinite(value):
        raise ValidationError(f"{what} {reward!r:.80} is not a finite number; use {low:g} for a failure, {high:g} for a success")
    if not low <= value <= high:
        raise ValidationError(f"{what} {reward!r:.80} is outside [{low:g}, {high:g}]; use {low:g} for a failure, {high:g} "
                              f"for a success, or a score in between (scale other rewards into that range)")
    return value


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_case_id() -> str:
    return uuid.uuid4().hex


class Step(BaseModel):
    """One step of a trajectory: what the agent thought, which tool it called, what came back."""

    model_config = ConfigDict(extra="forbid")

    thought: str = ""
    tool: str | None = None
    tool_input: Any = None
    observation: str = ""

    @field_validator("tool_input")
    @classmethod
    def _as_stored(cls, value: Any) -> Any:
        # Kept as the JSON the bank stores: b"" was kept in memory but stored as "", so a case read
        # back differed from the one written (hypothesis found it).
        try:
            return to_jsonable_python(value)
        except PydanticSerializationError as error:
            raise ValueError(f"tool_input {value!r:.80} cannot be stored as JSON ({error}); pass strings, numbers, "
                             "booleans, None, lists and dicts") from None


class Case(BaseModel):
    """One finished task with its plan, trajectory, answer and reward."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: str = Field(default_factory=new_case_id)
    namespace: tuple[str, ...] = DEFAULT_NAMESPACE
    task: str
    plan: list[str] = Field(default_factory=list)
    trajectory: list[Step] = Field(default_factory=list)
    answer: str = ""
    reward: float = 0.0
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    metadata: dict[str, Any] = Field(default_factory=dict)
    procedure: Procedure | None = None
    """The reusable recipe derived from the trajectory (see `memento.procedure`), or None."""

    @field_validator("id")
    @classmethod
    def _id_is_usable(cls, value: str) -> str:
        if not value or not value.strip() or len(value) > 200:
            raise ValueError(f"case id {value!r:.80} ({len(value)} characters) must be 1 to 200 characters, not blank; "
                             "leave it out for a generated one")
        return value

    def __init__(self, **data: Any):
        # Case(...) is the README's first object: a bad field is memento's error, not pydantic's.
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise ValidationError(f"invalid case: {_explain(exc)}") from None

    @field_validator("namespace", mode="before")
    @classmethod
    def _namespace_is_tuple(cls, value: Any) -> Any:
        return check_namespace(value)

    @field_validator("task")
    @classmethod
    def _task_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("task text is empty; a case needs the task it solved")
        return _within_limit(value, "task")

    @field_validator("answer")
    @classmethod
    def _answer_within_limit(cls, value: str) -> str:
        return _within_limit(value, "answer")

    @field_validator("id", "task", "answer")
    @classmethod
    def _valid_unicode(cls, value: str, info: ValidationInfo) -> str:
        # SQLite stores UTF-8: a lone surrogate passed validation and then failed the insert itself.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"{info.field_name} is not valid Unicode text (a lone surrogate at position "
                             f"{error.start}); decode the input with errors='replace'") from None
        return value

    @field_validator("plan", "metadata", "trajectory")
    @classmethod
    def _storable_as_json(cls, value: Any, info: ValidationInfo) -> Any:
        # Stored as JSON text: NaN became 'NaN', which SQLite's json_extract calls malformed, so one such
        # case broke every metadata filter on the bank; a lone surrogate failed the insert.
        data = [step.model_dump(mode="json") for step in value] if info.field_name == "trajectory" else value
        try:
            json.dumps(data, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
        except ValueError as error:  # NaN or infinity, a circular reference, a lone surrogate
            raise ValueError(f"{info.field_name} cannot be stored as JSON ({error}); use finite numbers "
                             "(no NaN or infinity), no circular references and valid Unicode text") from None
        return value

    @field_validator("reward", mode="before")
    @classmethod
    def _reward_in_range(cls, value: Any) -> float:
        try:
            return check_reward(value)
        except ValidationError as error:
            raise ValueError(str(error)) from None

    @field_validator("created_at", "updated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def check_namespace(value: Any) -> tuple[str, ...]:
    """A namespace as a tuple of labels: non-empty, no '/', not '.' or '..', within the size limits."""
    if isinstance(value, str):
        value = tuple(value.split("/")) if value else ()
    if isinstance(value, list):
        value = tuple(value)
    limits = case_limits()
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"namespace {value!r:.80} must be a non-empty tuple of strings, e.g. ('tenant', 'agent')")
    if len(value) > limits.max_namespace_depth:
        raise ValueError(f"namespace has {len(value)} labels, more than {limits.max_namespace_depth}; "
                         f"use fewer levels (or raise max_namespace_depth with set_case_limits)")
    for label in value:
        if not isinstance(label, str) or not label or "/" in label:
            raise ValueError(f"namespace label {label!r:.80} must be a non-empty string without '/'")
        if label in (".", "..") or not label.isprintable():
            raise ValueError(f"namespace label {label!r:.80} is not allowed ('.', '..' and control characters read "
                             f"as paths or break listings); name the tenant or agent, e.g. 'acme'")
        if len(label) > limits.max_label_chars:
            raise ValueError(f"namespace label of {len(label)} characters is longer than {limits.max_label_chars}; "
                             f"shorten it (or raise max_label_chars with set_case_limits)")
    return value


def _within_limit(text: str, field: str) -> str:
    limit = case_limits().max_text_chars
    if len(text) > limit:
        raise ValueError(f"{field} has {len(text):,} characters, more than {limit:,}; keep the gist in the case and "
                         f"the full text in a file (or raise max_text_chars with set_case_limits)")
    return text


def namespace_key(namespace: tuple[str, ...] | list[str] | str) -> str:
    """The namespace as stored in SQLite: labels joined by '/', which labels may not contain.

    Filters pass what the caller gave, so it is checked like a case's namespace: a wrong type or
    label is a ValidationError, never a TypeError or a filter that silently matches nothing.
    """
    if isinstance(namespace, (str, tuple, list)) and not namespace:
        return ""  # filter_sql refuses an empty prefix itself, with the words for a prefix
    try:
        return "/".join(check_namespace(namespace))
    except ValueError as error:
        raise ValidationError(f"{error}") from None


def validate_case(data: Case | dict[str, Any], *, where: str = "") -> Case:
    """Turn a dict (or a Case) into a validated Case, raising memento's ValidationError."""
    if isinstance(data, Case):
        return data
    if not isinstance(data, dict):
        raise ValidationError(f"{where}expected a case as a JSON object, got {type(data).__name__}: {data!r:.80}")
    if not all(isinstance(key, str) for key in data):
        raise ValidationError(f"{where}a case's fields are named by strings, got keys {list(data)!r:.80}")
    try:
        return Case(**data)
    except ValidationError as error:
        raise ValidationError(f"{where}{error}") from None


def _explain(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "case"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "; ".join(parts)
