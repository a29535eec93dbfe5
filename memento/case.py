"""A case: one finished task, remembered.

The memory-augmented MDP of AgentFly/Memento stores each episode as a case
(task, plan, trajectory, answer, reward). Successes and failures are both kept:
a failed case tells the planner what not to do. A case may also hold a procedure, the
reusable part of its trajectory with the task's values as variables (`memento.procedure`).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from memento.errors import ValidationError
from memento.procedure import Procedure

DEFAULT_NAMESPACE: tuple[str, ...] = ("default",)


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
            raise ValueError(f"case id {value!r} must be 1 to 200 characters, not blank")
        return value

    @field_validator("namespace", mode="before")
    @classmethod
    def _namespace_is_tuple(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(value.split("/")) if value else ()
        if isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, tuple) or not value:
            raise ValueError(f"namespace {value!r} must be a non-empty tuple of strings, e.g. ('tenant', 'agent')")
        for label in value:
            if not isinstance(label, str) or not label or "/" in label:
                raise ValueError(f"namespace label {label!r} must be a non-empty string without '/'")
        return value

    @field_validator("task")
    @classmethod
    def _task_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("task text is empty; a case needs the task it solved")
        return value

    @field_validator("reward")
    @classmethod
    def _reward_finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"reward {value!r} is not a finite number; use e.g. 0.0 for a failure, 1.0 for a success")
        return float(value)

    @field_validator("created_at", "updated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def namespace_key(namespace: tuple[str, ...] | list[str] | str) -> str:
    """The namespace as stored in SQLite: labels joined by '/', which labels may not contain."""
    if isinstance(namespace, str):
        return namespace
    return "/".join(namespace)


def validate_case(data: Case | dict[str, Any], *, where: str = "") -> Case:
    """Turn a dict (or a Case) into a validated Case, raising memento's ValidationError."""
    if isinstance(data, Case):
        return data
    if not isinstance(data, dict):
        raise ValidationError(f"{where}expected a case as a JSON object, got {type(data).__name__}: {data!r:.80}")
    try:
        return Case.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"{where}invalid case: {_explain(exc)}") from None


def _explain(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "case"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def case_field_error(exc: pydantic.ValidationError) -> ValidationError:
    """A pydantic error from an assignment, as memento's ValidationError."""
    return ValidationError(f"invalid case: {_explain(exc)}")
