"""Humanity's Last Exam, text-only: exact match here, judged accuracy with `envs.metrics.judge_answer`.

Rows have `id`, `Question` (or `question`), `answer`, `answer_type` ("exactMatch" or
"multipleChoice", whose answer is a letter), `rationale`, `raw_subject`, `category`; as JSONL or
parquet. Rows with an image are skipped unless `text_only=False`, since the agent reads text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from memento.envs.metrics import exact_match
from memento.envs.task import Task, field, read_jsonl, require_file, select
from memento.errors import DataError

ANSWER_TYPES = ("exactMatch", "multipleChoice")


def load_hle(
    path: str | Path,
    *,
    categories: Iterable[str] | None = None,
    answer_types: Iterable[str] | None = None,
    text_only: bool = True,
    limit: int | None = None,
    seed: int | None = None,
) -> list[Task]:
    """Tasks from an HLE JSONL or parquet file, filtered by `categories` and `answer_types`."""
    path = require_file(path, "HLE")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = [(f"{path} row {number}", row) for number, row in enumerate(pq.read_table(path).to_pylist())]
    else:
        rows = [(f"{path}:{line}", row) for line, row in read_jsonl(path)]
    tasks = [_task(row, where) for where, row in rows if not (text_only and row.get("image"))]
    if categories is not None:
        tasks = [task for task in tasks if task.metadata["category"] in set(categories)]
    if answer_types is not None:
        tasks = [task for task in tasks if task.metadata["answer_type"] in set(answer_types)]
    return select(tasks, limit, seed)


def _task(row: dict, where: str) -> Task:
    answer_type = field(row, "answer_type", where)
    if answer_type not in ANSWER_TYPES:
        raise DataError(f"{where}: answer_type {answer_type!r} is not one of {ANSWER_TYPES}")
    return Task(
        id=str(field(row, "id", where)),
        question=str(field(row, "question", where)).strip(),
        gold=[str(field(row, "answer", where)).strip()],
        benchmark="hle",
        source="hle",
        split="test",
        metadata={
            "answer_type": answer_type,
            "rationale": field(row, "rationale", where, default=""),
            "raw_subject": field(row, "raw_subject", where, default=""),
            "category": field(row, "category", where, default=""),
        },
    )


_CHOICE_PATTERNS = (
    re.compile(r"(?i:answer)\s*(?:is|:)?\s*[\(\[]?([A-Z])\b(?![\w'])"),
    re.compile(r"^\s*[\(\[]?([A-Z])(?:[\)\].:]|\s*$)"),
)


def extract_choice(prediction: str | None) -> str | None:
    """The option letter a prediction picks ("B", "(B) ...", "The answer is B"), or None."""
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(prediction or "")
        if match:
            return match.group(1).upper()
    return None


def score(task: Task, prediction: str | None) -> dict[str, float]:
    """{"em"}: the chosen letter for multiple choice, normalised exact match otherwise."""
    if task.metadata["answer_type"] == "multipleChoice":
        return {"em": float(extract_choice(prediction) == task.gold[0].strip().upper())}
    return {"em": exact_match(prediction, task.gold)}
