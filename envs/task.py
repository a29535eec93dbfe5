"""The record every task source produces, and the helpers the loaders share.

A `Task` is one question with its gold answers. `benchmark` names the loader and scorer it came
from ("gaia", "deepresearcher", ...); `source` is the finer origin used for per-source
breakdowns ("nq", "hotpotqa", "fictional"...). `metadata` holds everything else a source knows,
gold reasoning included, so it is for scoring and analysis only and never shown to the agent.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from memento.errors import DataError, ValidationError

SHARED_DATA_ENV = "MEMENTO_SHARED_DATA"


class Task(BaseModel):
    """One question to answer, with its gold answers and where it came from."""

    model_config = ConfigDict(extra="forbid")

    id: str
    question: str
    gold: list[str] = Field(default_factory=list)
    """Accepted answers; empty where the split hides them (GAIA test)."""
    benchmark: str
    """The loader and scorer this task belongs to, a key of `envs.SOURCES`."""
    source: str
    """Finer origin for per-source reports, e.g. 'nq' or 'hotpotqa'."""
    split: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    attachments: list[Path] = Field(default_factory=list)

    @property
    def scorable(self) -> bool:
        """Whether the task has a gold answer to score against."""
        return bool(self.gold)


Scorer = Callable[[Task, str | None], dict[str, float]]


@dataclass(frozen=True)
class TaskSource:
    """A named benchmark: how to load its tasks and how to score a prediction."""

    name: str
    load: Callable[..., list[Task]]
    """`load(path, *, limit=None, seed=None, **filters) -> list[Task]`."""
    score: Scorer
    """`score(task, prediction) -> {metric: value}`, rule-based (the LLM judge is separate)."""
    default_path: Callable[[], Path] | None = None
    """Where the data lives under the shared data folder, if it is there at all."""


def shared_data_dir() -> Path:
    """The shared eval data folder: $MEMENTO_SHARED_DATA, else ../shared/data next to the repo."""
    if os.environ.get(SHARED_DATA_ENV):
        return Path(os.environ[SHARED_DATA_ENV])
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_file(path: str | Path, what: str) -> Path:
    """`path` as a Path, or a DataError naming it and how to get the data."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{what} file {str(path)!r} does not exist; pass the right path, "
            f"or set ${SHARED_DATA_ENV} to the folder that holds the shared eval data"
        )
    return path


def select(tasks: list[Task], limit: int | None = None, seed: int | None = None) -> list[Task]:
    """Shuffle with `seed` (file order when None), then keep the first `limit` tasks."""
    if limit is not None and limit < 0:
        raise ValidationError(f"limit={limit} must be >= 0 or None (all tasks)")
    tasks = list(tasks)
    if seed is not None:
        random.Random(seed).shuffle(tasks)
    return tasks if limit is None else tasks[:limit]


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; blank lines are skipped, not errors."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{line_number} is not valid JSON ({error}); fix or remove that line") from error
            if not isinstance(row, dict):
                raise DataError(f"{path}:{line_number} is a JSON {type(row).__name__}, expected an object")
            yield line_number, row


def field(row: dict[str, Any], name: str, where: str, default: Any = ...) -> Any:
    """`row[name]`, matched case-insensitively (datasets disagree on 'Question' vs 'question')."""
    if name in row:
        return row[name]
    for key, value in row.items():
        if key.lower() == name.lower():
            return value
    if default is not ...:
        return default
    raise DataError(f"{where} has no field {name!r} (fields: {sorted(row)}); is this the right file format?")


def gold_list(value: Any, separator: str | None = None) -> list[str]:
    """Gold answers as a list of non-empty strings, from a string (split on `separator`) or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        parts = value.split(separator) if separator else [value]
    else:
        parts = [str(part) for part in value]
    return [part.strip() for part in parts if part.strip()]
